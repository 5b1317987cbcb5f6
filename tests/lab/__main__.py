"""The lab's command line.

    python -m tests.lab up [--nodes default|scale|tainted] [--scale-nodes N] [--scale-pods N]
                           [--extra-node NAME=PROFILE[@KUBELET]]... [--state-dir DIR] [--json]
    python -m tests.lab status [--state-dir DIR]
    python -m tests.lab reset  [--state-dir DIR]
    python -m tests.lab down   [--state-dir DIR]

`up` prints the kubeconfig, the API URL and each node's InternalIP and SSH settings, and writes
the same to <state-dir>/lab.json. State dir: --state-dir, else $LAB_STATE_DIR, else
/tmp/gpu-kata-lab.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from .answers import write_lab_answers
from .lab import Lab, LabInfo


def describe(info: LabInfo) -> str:
    lines = [
        f"kubeconfig:  {info.kubeconfig}",
        f"api:         {info.api_url} (Kubernetes {info.kubernetes_version})",
        f"lab.json:    {info.json_path}",
        f"helm/kubectl: export PATH={info.path}:$PATH KUBECONFIG={info.kubeconfig}",
        f"charts:      {info.charts['kata-deploy']}  {info.charts['gpu-operator']}",
        "nodes:",
    ]
    shown = [n for n in info.nodes if not n.name.startswith("scale-node-")]
    for n in shown:
        if n.ssh:
            ssh = (
                f"ssh -p {n.ssh_port} -i {n.identity_file} -o UserKnownHostsFile={n.known_hosts}"
                f" {n.ssh_user}@{n.internal_ip}"
            )
        else:
            ssh = "no sshd"
        lines.append(f"  {n.name:<12} {n.internal_ip:<12} {n.profile:<16} {ssh}")
    if len(shown) < len(info.nodes):
        lines.append(f"  ... and {len(info.nodes) - len(shown)} scale node(s) without sshd")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.lab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("command", choices=["up", "down", "status", "reset"])
    ap.add_argument("--state-dir")
    ap.add_argument("--nodes", choices=["default", "scale", "tainted"], default="default")
    ap.add_argument("--scale-nodes", type=int, default=1000)
    ap.add_argument("--scale-pods", type=int, default=10000)
    ap.add_argument("--json", action="store_true", help="print lab.json instead of a summary")
    ap.add_argument(
        "--extra-node",
        action="append",
        default=[],
        metavar="NAME=PROFILE[@KUBELET]",
        help="add a host from another fixture tree, e.g. gpu-node-4=kubelet-no-gate@v1.33.5",
    )
    args = ap.parse_args(argv)
    lab = Lab(args.state_dir)
    if args.command == "up":
        info = lab.up(args.nodes, args.scale_nodes, args.scale_pods, args.extra_node)
        answers = write_lab_answers(info)
        print(json.dumps(asdict(info), indent=2) if args.json else
              describe(info) + f"\nanswers:     {answers}")
    elif args.command == "down":
        lab.down()
        print(f"lab in {lab.state_dir} is down")
    elif args.command == "reset":
        lab.reset()
        print("lab reset to a bare cluster")
    else:
        st = lab.status()
        print(json.dumps(st, indent=2))
        return 0 if st.get("up") else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
