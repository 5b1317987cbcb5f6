"""The simulator process: watch the API server, read the host trees, write what real
components would write (node labels and extended resources, operand DaemonSets, ClusterPolicy
status, pod phases / crash loops, pod logs as KWOK `Logs` objects, host files).

Level-triggered: every watch event marks the world dirty; one reconcile pass recomputes the
desired state from the cached objects and the host trees (`logic`), and writes only differences.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import threading
import time
import traceback
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from .. import hostexec
from ..kube import Kube, KubeError
from . import hostwrite, logic
from .hoststate import HostState, read_host

MANAGED_BY = "app.kubernetes.io/managed-by"
KATA_DEPLOY = "kata-deploy"


def now_iso(t: float | None = None) -> str:
    return datetime.fromtimestamp(t if t is not None else time.time(), UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def parse_time(s: str | None) -> float | None:
    if not s:
        return None
    try:
        return datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def key(obj: dict) -> tuple[str, str]:
    m = obj.get("metadata") or {}
    return m.get("namespace", ""), m.get("name", "")


class Informer(threading.Thread):
    """List + watch one collection into `items`, calling `changed()` on every event."""

    def __init__(self, kube: Kube, path: str, changed, name: str) -> None:
        super().__init__(daemon=True, name=f"informer-{name}")
        self.kube, self.path, self.changed = kube, path, changed
        self.items: dict[tuple[str, str], dict] = {}
        self.lock = threading.Lock()
        self.synced = threading.Event()
        self.available = False

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.items.values())

    def run(self) -> None:
        while True:
            try:
                items, rv = self.kube.list(self.path)
                with self.lock:
                    self.items = {key(o): o for o in items}
                self.available = True
                self.synced.set()
                self.changed()
                while True:
                    for ev in self.kube.watch(self.path, rv):
                        obj = ev.get("object") or {}
                        rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                        t = ev.get("type")
                        if t == "BOOKMARK":
                            continue
                        if t == "ERROR":
                            raise KubeError(
                                obj.get("code", 500), json.dumps(obj), "WATCH", self.path
                            )
                        with self.lock:
                            if t == "DELETED":
                                self.items.pop(key(obj), None)
                            else:
                                self.items[key(obj)] = obj
                        self.changed()
            except KubeError as e:
                if e.status == 404:  # CRD not installed (yet)
                    with self.lock:
                        had = bool(self.items)
                        self.items = {}
                    self.available = False
                    self.synced.set()
                    if had:
                        self.changed()
                time.sleep(1.0)
            except Exception:
                traceback.print_exc()
                time.sleep(1.0)


class HostCache:
    """Host state per node: re-read every `ttl` seconds for hosts others may change over SSH,
    cached until the simulator itself writes for the rest. Trees of hosts without sshd are
    copied from their fixture on first write (copy on write)."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict] = {}
        self.cache: dict[str, tuple[float, HostState]] = {}

    def configure(self, lab_nodes: list[dict]) -> None:
        self.nodes = {n["name"]: n for n in lab_nodes}

    def root(self, node: str) -> Path | None:
        n = self.nodes.get(node)
        if not n:
            return None
        root = Path(n["host_root"])
        return root if root.exists() else Path(n["fixture"])

    def writable_root(self, node: str) -> Path | None:
        n = self.nodes.get(node)
        if not n:
            return None
        root = Path(n["host_root"])
        if not root.exists():
            root.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(n["fixture"], root, symlinks=True)
        self.cache.pop(node, None)
        return root

    def get(self, node: str) -> HostState:
        n = self.nodes.get(node)
        if not n:
            return HostState(exists=False)
        # Hosts others may change (over SSH, or tests writing the tree) are re-read every
        # second; the scale nodes only change through the simulator itself.
        ttl = 1e12 if n["name"].startswith("scale-node-") else 1.0
        hit = self.cache.get(node)
        if hit and time.monotonic() - hit[0] < ttl:
            return hit[1]
        st = read_host(self.root(node))  # type: ignore[arg-type]
        self.cache[node] = (time.monotonic(), st)
        return st

    def invalidate(self, node: str) -> None:
        self.cache.pop(node, None)


class LogWriter:
    """Pod logs as CRI-format files plus a KWOK `Logs` object pointing at them."""

    def __init__(self, kube: Kube, base: Path, pool: ThreadPoolExecutor) -> None:
        self.kube, self.base, self.pool = kube, base, pool
        self.done: dict[str, str] = {}
        self.lock = threading.Lock()

    def set(
        self, pod: dict, logs: dict[str, tuple[str, ...]], previous: dict | None = None
    ) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        digest = hashlib.sha1(json.dumps([logs, previous], sort_keys=True).encode()).hexdigest()
        with self.lock:
            if self.done.get(uid) == digest:
                return
            self.done[uid] = digest
        self.pool.submit(self._write, pod, logs, previous or {})

    def forget(self, live_uids: set[str]) -> None:
        with self.lock:
            for uid in [u for u in self.done if u not in live_uids]:
                del self.done[uid]
        # files of deleted pods
        if self.base.is_dir():
            for d in self.base.iterdir():
                if d.name.rsplit("_", 1)[-1] not in live_uids:
                    shutil.rmtree(d, ignore_errors=True)

    def _file(self, d: Path, name: str, lines: tuple[str, ...], start: float) -> str:
        d.mkdir(parents=True, exist_ok=True)
        path = d / name
        text = "".join(
            datetime.fromtimestamp(start + i * 0.013, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
            + f" stdout F {line}\n"
            for i, line in enumerate(lines)
        )
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        return str(path)

    def _write(self, pod: dict, logs: dict, previous: dict) -> None:
        try:
            meta = pod["metadata"]
            ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
            d = self.base / f"{ns}_{name}_{uid}"
            start = parse_time((pod.get("status") or {}).get("startTime")) or time.time()
            entries = []
            for container, lines in logs.items():
                e = {
                    "containers": [container],
                    "logsFile": self._file(d, f"{container}.log", lines, start),
                }
                if container in previous:
                    e["previousLogsFile"] = self._file(
                        d, f"{container}.previous.log", previous[container], start
                    )
                entries.append(e)
            obj = {
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "kind": "Logs",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}
                    ],
                },
                "spec": {"logs": entries},
            }
            path = f"/apis/kwok.x-k8s.io/v1alpha1/namespaces/{ns}/logs"
            try:
                self.kube.create(path, obj)
            except KubeError as e:
                if e.status != 409:
                    raise
                self.kube.patch(f"{path}/{name}", {"spec": obj["spec"]})
        except Exception:
            with self.lock:
                self.done.pop(pod["metadata"]["uid"], None)
            traceback.print_exc()


def _container(pod: dict, name: str | None) -> dict:
    """The pod's container of that name (the first when None); {} when there is none."""
    return next((c for c in (pod.get("spec") or {}).get("containers") or []
                 if name is None or c.get("name") == name), {})


def env_of(pod: dict, container: str | None = None) -> dict[str, str]:
    env = _container(pod, container).get("env") or []
    return {e["name"]: str(e.get("value", "")) for e in env if "name" in e}


def image_of(pod: dict, container: str | None = None) -> str:
    return str(_container(pod, container).get("image") or "")


def is_running(pod: dict) -> bool:
    st = pod.get("status") or {}
    return (
        st.get("phase") == "Running"
        and bool(st.get("podIP"))
        and not (pod.get("metadata") or {}).get("deletionTimestamp")
    )


def owner(pod: dict) -> tuple[str, str]:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        return ref.get("kind", ""), ref.get("name", "")
    return "", ""


def container_names(pod: dict) -> list[str]:
    return [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]


def _conditions(ready: bool, containers: list[str], t: str, started: bool = True) -> list[dict]:
    msg = f"containers with unready status: [{' '.join(containers)}]"
    conds = [
        {
            "type": "PodReadyToStartContainers",
            "status": "True" if started else "False",
            "lastTransitionTime": t,
        },
        {"type": "Initialized", "status": "True", "lastTransitionTime": t},
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": t},
        {
            "type": "ContainersReady",
            "status": "True" if ready else "False",
            "lastTransitionTime": t,
        },
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": t},
    ]
    if not ready:
        for c in conds[2:4]:
            c.update(reason="ContainersNotReady", message=msg)
    return conds


def crash_status(pod: dict, message: str, restarts: int, now: float) -> dict:
    meta = pod["metadata"]
    names = container_names(pod)
    backoff = logic.crashloop_backoff(restarts)
    t = now_iso(now)
    statuses = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        statuses.append(
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": "",
                "containerID": "containerd://"
                + hashlib.sha256(f"{meta['uid']}/{c['name']}/{restarts}".encode()).hexdigest(),
                "ready": False,
                "started": False,
                "restartCount": restarts,
                "state": {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off {backoff}s restarting failed container={c['name']} "
                        f"pod={meta['name']}_{meta['namespace']}({meta['uid']})",
                    }
                },
                "lastState": {
                    "terminated": {
                        "exitCode": 1,
                        "reason": "Error",
                        "message": message,
                        "startedAt": now_iso(now - 1),
                        "finishedAt": t,
                    }
                },
            }
        )
    return {
        "status": {
            "phase": "Running",
            "conditions": _conditions(False, names, t),
            "containerStatuses": statuses,
        }
    }


def _init_statuses(pod: dict, held: str = "", held_entry: dict | None = None) -> list[dict]:
    """initContainerStatuses as the kubelet writes them: those before `held` Completed, `held`
    with `held_entry` (its state, restart count, last state), those after it waiting
    PodInitializing."""
    out, before = [], True
    for c in (pod.get("spec") or {}).get("initContainers") or []:
        entry = {"name": c["name"], "image": c.get("image", ""), "ready": False,
                 "restartCount": 0}
        if c["name"] == held:
            before = False
            out.append({**entry, **(held_entry or {})})
        elif before:
            out.append({**entry, "state": {"terminated": {
                "exitCode": 0, "reason": "Completed"}}})
        else:
            out.append({**entry, "state": {"waiting": {"reason": "PodInitializing"}}})
    return out


def init_status(pod: dict, out: logic.Outcome, restarts: int, now: float) -> dict:
    """A pod held in init container `out.init`: crash-looping, or running a wait loop. The
    phase stays as KWOK's pod-ready stage set it (Running) - the lab lets KWOK own phases;
    the kubelet would report Pending - while conditions and container statuses are the
    kubelet's (Initialized False, main containers PodInitializing)."""
    t = now_iso(now)
    if out.init_waiting:
        held = {"state": {"running": {"startedAt": now_iso(parse_time(
            (pod.get("status") or {}).get("startTime")) or now)}}}
    else:
        held = {"restartCount": restarts,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": (
                    f"back-off {logic.crashloop_backoff(restarts)}s restarting failed "
                    f"container={out.init} pod={pod['metadata']['name']}")}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                             "message": out.message}}}
    names = container_names(pod)
    conds = _conditions(False, names, t)
    for c in conds:
        if c["type"] == "Initialized":
            c.update(status="False", reason="ContainersNotInitialized",
                     message=f"containers with incomplete status: [{out.init}]")
    status = {"phase": "Running", "conditions": conds,
              "initContainerStatuses": _init_statuses(pod, out.init, held),
              "containerStatuses": [
                  {"name": n, "ready": False, "restartCount": 0, "started": False,
                   "state": {"waiting": {"reason": "PodInitializing"}}} for n in names]}
    return {"status": status}


def _init_changed(pod: dict, want: dict) -> bool:
    """Whether the pod's init statuses differ from `want`'s (timestamps aside)."""
    def shape(statuses: list[dict]) -> list[tuple]:
        return [(s.get("name"), s.get("restartCount"), next(iter(s.get("state") or {}), ""))
                for s in statuses]
    have = (pod.get("status") or {}).get("initContainerStatuses") or []
    return shape(have) != shape(want["status"]["initContainerStatuses"])


def running_status(pod: dict, now: float, restarts: int = 0) -> dict:
    t = now_iso(now)
    statuses = [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": "",
            "containerID": "containerd://"
            + hashlib.sha256(f"{pod['metadata']['uid']}/{c['name']}".encode()).hexdigest(),
            "ready": True,
            "started": True,
            "restartCount": restarts,
            "state": {"running": {"startedAt": t}},
        }
        for c in (pod.get("spec") or {}).get("containers") or []
    ]
    status = {
        "phase": "Running",
        "conditions": _conditions(True, container_names(pod), t),
        "containerStatuses": statuses,
        "startTime": pod["status"].get("startTime", t),
    }
    if (pod.get("spec") or {}).get("initContainers"):
        status["initContainerStatuses"] = _init_statuses(pod)
    return {"status": status}


def waiting_status(pod: dict, reason: str, message: str, now: float) -> dict:
    t = now_iso(now)
    statuses = [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "ready": False,
            "started": False,
            "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": message}},
        }
        for c in (pod.get("spec") or {}).get("containers") or []
    ]
    return {
        "status": {
            "phase": "Pending",
            "conditions": _conditions(False, container_names(pod), t, started=False),
            "containerStatuses": statuses,
        }
    }


def succeeded_status(pod: dict, started: float, now: float) -> dict:
    t = now_iso(now)
    statuses = [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": "",
            "containerID": "containerd://"
            + hashlib.sha256(f"{pod['metadata']['uid']}/{c['name']}".encode()).hexdigest(),
            "ready": False,
            "started": False,
            "restartCount": 0,
            "state": {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": now_iso(started),
                    "finishedAt": t,
                }
            },
        }
        for c in (pod.get("spec") or {}).get("containers") or []
    ]
    conds = _conditions(False, container_names(pod), t)
    for c in conds:
        if c["type"] in ("Ready", "ContainersReady"):
            c.update(reason="PodCompleted", message="")
    return {"status": {"phase": "Succeeded", "conditions": conds, "containerStatuses": statuses}}


def waiting_reason(pod: dict) -> tuple[str, str]:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        w = (cs.get("state") or {}).get("waiting")
        if w:
            return w.get("reason", ""), w.get("message", "")
    return "", ""


def crashloop_restarts_now(pod: dict, now: float) -> int:
    """Restarts a container failing since the pod started has had by `now` (at least one)."""
    started = parse_time(pod["status"].get("startTime")) or now
    return max(1, logic.crashloop_restarts(now - started))


def restart_count(pod: dict) -> int:
    return max(
        [
            cs.get("restartCount", 0)
            for cs in (pod.get("status") or {}).get("containerStatuses") or []
        ]
        or [0]
    )


class Simulator:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.lab_json = self.state_dir / "lab.json"
        self.lab_mtime = 0.0
        info = json.loads(self.lab_json.read_text())
        self.kube = Kube(info["kubeconfig"], pool_size=48)
        self.kubeconfig, self.kubectl = info["kubeconfig"], info["binaries"]["kubectl"]
        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="write")
        self.log_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="logs")
        self.logs = LogWriter(self.kube, self.state_dir / "podlogs", self.log_pool)
        self.hosts = HostCache()
        self.dirty = threading.Event()
        self.wake_at = float("inf")
        self.events_sent: set[tuple[str, str]] = set()
        self.host_execs_done: set[str] = set()  # pod uids whose host Exec exists
        # running vfio-manager pods: uid -> (node, preStop command)
        self.vfio_pods: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.crd_paths = {
            "clusterpolicies": "/apis/nvidia.com/v1/clusterpolicies",
        }
        self.inf = {
            "nodes": Informer(self.kube, "/api/v1/nodes", self.dirty.set, "nodes"),
            "pods": Informer(self.kube, "/api/v1/pods", self.dirty.set, "pods"),
            "daemonsets": Informer(self.kube, "/apis/apps/v1/daemonsets", self.dirty.set, "ds"),
            "runtimeclasses": Informer(
                self.kube, "/apis/node.k8s.io/v1/runtimeclasses", self.dirty.set, "rc"
            ),
            "clusterpolicies": Informer(
                self.kube, self.crd_paths["clusterpolicies"], self.dirty.set, "cp"
            ),
        }
        self.load_lab()

    def load_lab(self) -> None:
        try:
            m = self.lab_json.stat().st_mtime
        except OSError:
            return
        if m != self.lab_mtime:
            self.lab_mtime = m
            self.hosts.configure(json.loads(self.lab_json.read_text()).get("nodes", []))

    # --- main loop -----------------------------------------------------------------------

    def run(self) -> None:
        for i in self.inf.values():
            i.start()
        for i in self.inf.values():
            i.synced.wait(30)
        print(f"{now_iso()} simulator running", flush=True)
        last = 0.0
        while True:
            periodic = max(1.0, 3 * last)
            self.dirty.wait(timeout=max(0.05, min(periodic, self.wake_at - time.time())))
            self.dirty.clear()
            self.wake_at = float("inf")
            time.sleep(0.05)
            t0 = time.monotonic()
            try:
                self.load_lab()
                self.reconcile()
            except Exception:
                traceback.print_exc()
            last = time.monotonic() - t0

    def wake(self, at: float) -> None:
        """Run a pass at `at` (epoch seconds) even if nothing changes before."""
        self.wake_at = min(self.wake_at, at + 0.05)

    def _writes(self, fns: list) -> None:
        for f in self.pool.map(lambda fn: self._try(fn), fns):
            del f

    @staticmethod
    def _try(fn) -> None:
        try:
            fn()
        except KubeError as e:
            if e.status not in (404, 409):
                print(f"{now_iso()} write failed: {e}", flush=True)
        except Exception:
            traceback.print_exc()

    # --- one pass ----------------------------------------------------------------------------

    def reconcile(self) -> None:
        now = time.time()
        nodes = {n["metadata"]["name"]: n for n in self.inf["nodes"].snapshot()}
        pods = self.inf["pods"].snapshot()
        dss = self.inf["daemonsets"].snapshot()
        rcs = {r["metadata"]["name"]: r for r in self.inf["runtimeclasses"].snapshot()}
        cps = self.inf["clusterpolicies"].snapshot()

        labels: dict[str, dict[str, str | None]] = defaultdict(dict)
        writes: list = []

        self.kata_deploy(nodes, pods, dss, labels, now)
        self.vfio_prestop(pods)
        cp = next(
            (c for c in cps if c["metadata"]["name"] == "cluster-policy"), cps[0] if cps else None
        )
        operator = next(
            (
                p
                for p in pods
                if (p["metadata"].get("labels") or {}).get("app") == "gpu-operator"
                and is_running(p)
            ),
            None,
        )
        resources: dict[str, dict[str, int]] = defaultdict(dict)
        if cp is not None and operator is not None:
            self.operator(cp, operator, nodes, pods, dss, labels, resources, writes, now)
        self.device_resources(nodes, resources, writes)
        self.workloads(nodes, pods, rcs, writes, now)
        self.misc_logs(pods)
        self.boot_ids(nodes, writes)
        self.host_execs(pods, writes)

        for name, want in labels.items():
            node = nodes.get(name)
            if node is None:
                continue
            patch = logic.label_patch(node["metadata"].get("labels") or {}, want)
            if patch:
                writes.append(
                    lambda n=name, p=patch: self.kube.patch(
                        f"/api/v1/nodes/{n}", {"metadata": {"labels": p}}
                    )
                )
        self._writes(writes)
        self.logs.forget({p["metadata"]["uid"] for p in pods})

    # --- the kubelet's boot id ----------------------------------------------------------------

    def boot_ids(self, nodes, writes) -> None:
        """The kubelet reports its host's boot id as the node's `status.nodeInfo.bootID`
        (kubernetes pkg/kubelet/nodestatus/setters.go, MachineInfo: `BootID` from cadvisor's
        /proc/sys/kernel/random/boot_id), so a new one there is how the cluster sees a reboot.
        Here: each simulated host's boot_id file, copied onto its node when it changes."""
        for name in self.hosts.nodes:
            node = nodes.get(name)
            root = self.hosts.root(name)
            if node is None or root is None or name.startswith("scale-node-"):
                continue
            try:
                boot = (root / "proc/sys/kernel/random/boot_id").read_text().strip()
            except OSError:
                continue
            info = (node.get("status") or {}).get("nodeInfo") or {}
            if boot and info.get("bootID") != boot:
                writes.append(lambda n=name, b=boot: self.kube.patch(
                    f"/api/v1/nodes/{n}/status", {"status": {"nodeInfo": {"bootID": b}}}))

    # --- kata-deploy -------------------------------------------------------------------------

    def kata_deploy(self, nodes, pods, dss, labels, now) -> None:
        installed_nodes = set()
        for pod in pods:
            if (pod["metadata"].get("labels") or {}).get("name") != KATA_DEPLOY or not is_running(
                pod
            ):
                continue
            node = pod["spec"].get("nodeName")
            if node not in nodes:
                continue
            env = env_of(pod, "kube-kata")
            version = logic.image_version(image_of(pod, "kube-kata")) or (3, 29, 0)
            shims = logic.kata_shims_from_env(env)
            default = env.get("DEFAULT_SHIM_X86_64") or env.get("DEFAULT_SHIM") or "qemu"
            started = parse_time(pod["status"].get("startTime")) or now
            lines = logic.kata_install_logs(node, shims, default, version)
            current = nodes[node]["metadata"].get("labels") or {}
            installed_nodes.add(node)
            if now - started < logic.KATA_INSTALL_SECONDS:
                labels[node].update(logic.kata_node_labels(version, False, current))
                self.logs.set(pod, {"kube-kata": lines[:7]})
                self.wake(started + logic.KATA_INSTALL_SECONDS)  # come back when it is done
                continue
            host = self.hosts.get(node)
            if not host.kata or not host.kata_shims >= set(shims):
                root = self.hosts.writable_root(node)
                if root is not None:
                    hostwrite.install_kata(root, shims)
                    setup = tuple(x for x in env.get("EXPERIMENTAL_SETUP_SNAPSHOTTER", "")
                                  .split(",") if x)
                    hostwrite.install_snapshotters(root, setup)
                    self.hosts.invalidate(node)
            labels[node].update(logic.kata_node_labels(version, True, current))
            self.logs.set(pod, {"kube-kata": lines})
        if not any(d["metadata"]["name"] == KATA_DEPLOY for d in dss):
            # Uninstalled: kata-deploy's cleanup removes the artifacts and the labels. A node
            # whose kata-deploy pod still runs is skipped: when the DaemonSet informer lags
            # the pod informer, the DaemonSet only looks absent, and removing the label set
            # above in this same pass would make it flap.
            for name, node in nodes.items():
                if name in installed_nodes:
                    continue
                nl = node["metadata"].get("labels") or {}
                if logic.KATA_INSTANCE in nl:
                    labels[name][logic.KATA_INSTANCE] = None
                if logic.KATA_RUNTIME in nl:
                    labels[name][logic.KATA_RUNTIME] = None
                    n = self.hosts.nodes.get(name)
                    if n and Path(n["host_root"]).exists():
                        hostwrite.uninstall_kata(Path(n["host_root"]))
                        self.hosts.invalidate(name)

    # --- GPU operator --------------------------------------------------------------------------

    def operator(self, cp, operator_pod, nodes, pods, dss, labels, resources, writes, now) -> None:
        cfg = logic.PolicyConfig.from_spec(cp.get("spec"), image_of(operator_pod))
        ns = operator_pod["metadata"]["namespace"]
        errors: dict[str, str] = {}
        # Node labels.
        for name, node in nodes.items():
            nl = node["metadata"].get("labels") or {}
            if not logic.is_gpu_node(nl):
                continue
            _, err = logic.node_workload(nl, cfg)
            if err:
                errors[name] = err
            labels[name].update(logic.operator_node_labels(nl, cfg))
        # Operand DaemonSets.
        wanted = logic.enabled_operands(cfg)
        have = {
            d["metadata"]["name"]: d
            for d in dss
            if d["metadata"]["namespace"] == ns
            and (d["metadata"].get("labels") or {}).get(MANAGED_BY) == "gpu-operator"
        }
        for name in wanted:
            if name not in have:
                obj = operand_daemonset(logic.OPERANDS[name], ns, cp, cfg)
                writes.append(
                    lambda o=obj: self.kube.create(
                        f"/apis/apps/v1/namespaces/{ns}/daemonsets", o, exist_ok=True
                    )
                )
            else:
                update = operand_update(have[name], logic.OPERANDS[name], ns, cp, cfg)
                if update:
                    writes.append(lambda n=name, u=update: self.kube.patch(
                        f"/apis/apps/v1/namespaces/{ns}/daemonsets/{n}", u))
        for name in have:
            if name not in wanted:
                writes.append(
                    lambda n=name: self.kube.delete(f"/apis/apps/v1/namespaces/{ns}/daemonsets/{n}")
                )
        # Operand pods.
        unhealthy = 0
        pods_on: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for pod in pods:
            kind, ds = owner(pod)
            if (
                kind != "DaemonSet"
                or ds not in logic.OPERANDS
                or pod["metadata"]["namespace"] != ns
            ):
                continue
            node = pod["spec"].get("nodeName")
            if node not in nodes or not is_running(pod):
                if not (pod.get("metadata") or {}).get("deletionTimestamp"):
                    unhealthy += 1
                continue
            nl = dict(nodes[node]["metadata"].get("labels") or {})
            nl.update({k: v for k, v in labels[node].items() if v is not None})
            host = self.hosts.get(node)
            out = logic.operand_outcome(ds, host, cfg, nl)
            container = logic.OPERANDS[ds].container
            for k, v in out.labels:
                labels[node][k] = v
            if out.healthy:
                pods_on[node].add((ds, "ok"))
                if waiting_reason(pod)[0]:
                    st = running_status(pod, now, restart_count(pod))
                    writes.append(lambda p=pod, s=st: self._patch_pod(p, s))
                if out.bind_vfio or out.files:
                    self._host_writes(node, out)
                for r, n in out.resources:
                    resources[node][r] = resources[node].get(r, 0) + n
                self.logs.set(pod, {container: out.logs})
            elif out.init:
                # Held in an init container: the main container never starts, the init
                # container's status and log carry the failure (or the wait).
                unhealthy += 1
                if out.files:
                    self._host_writes(node, out)
                restarts = 0 if out.init_waiting else crashloop_restarts_now(pod, now)
                st = init_status(pod, out, restarts, now)
                if _init_changed(pod, st):
                    writes.append(lambda p=pod, s=st: self._patch_pod(p, s))
                self.logs.set(pod, {out.init: out.logs},
                              None if out.init_waiting else {out.init: out.logs})
            else:
                unhealthy += 1
                restarts = crashloop_restarts_now(pod, now)
                if waiting_reason(pod)[0] != "CrashLoopBackOff" or restart_count(pod) != restarts:
                    st = crash_status(pod, out.message, restarts, now)
                    writes.append(lambda p=pod, s=st: self._patch_pod(p, s))
                self.logs.set(pod, {container: out.logs}, {container: out.logs})
        # ClusterPolicy status.
        state = "ready"
        if unhealthy or set(wanted) - set(have):
            state = "notReady"
        for name, node in nodes.items():
            nl = node["metadata"].get("labels") or {}
            want = labels.get(name, {})
            if logic.label_patch(nl, want):
                state = "notReady"  # labels not applied yet
            merged = {**nl, **{k: v for k, v in want.items() if v is not None}}
            for ds in wanted:
                comp = logic.OPERANDS[ds].component
                if merged.get(logic.DEPLOY + comp) == "true" and (ds, "ok") not in pods_on[name]:
                    state = "notReady"
        self.cluster_policy_status(cp, ns, state, writes, now)
        self.logs.set(operator_pod, {"gpu-operator": logic.operator_logs(cfg, errors, state)})

    def vfio_prestop(self, pods) -> None:
        """A vfio-manager pod that went away ran its preStop hook, as its own spec has it: the
        kubelet execs the command without a shell, so v26.3.x's one-string command cannot
        start and the GPUs stay on vfio-pci; v26.7.0's `/bin/sh -c` form unbinds them
        (`logic.prestop_unbinds`)."""
        live: dict[str, tuple[str, tuple[str, ...]]] = {}
        for pod in pods:
            if owner(pod) == ("DaemonSet", "nvidia-vfio-manager") and is_running(pod):
                live[pod["metadata"]["uid"]] = (pod["spec"].get("nodeName") or "",
                                                logic.prestop_command(pod["spec"]))
        nodes_live = {node for node, _ in live.values()}
        for uid, (node, command) in self.vfio_pods.items():
            if uid in live or node in nodes_live or not logic.prestop_unbinds(command):
                continue
            root = self.hosts.writable_root(node)
            if root is not None:
                bound = logic.vfio_bound(self.hosts.get(node))
                hostwrite.unbind_vfio(root, tuple(g.bdf for g in bound))
                self.hosts.invalidate(node)
        self.vfio_pods = live

    def _host_writes(self, node: str, out: logic.Outcome) -> None:
        root = self.hosts.writable_root(node)
        if root is not None:
            hostwrite.bind_vfio(root, out.bind_vfio)
            for path, content in out.files:
                hostwrite.write_file(root, path, content)
            self.hosts.invalidate(node)
            self.dirty.set()

    def cluster_policy_status(self, cp, ns, state, writes, now) -> None:
        cur = cp.get("status") or {}
        if cur.get("state") == state and cur.get("namespace") == ns:
            return
        ready = state == "ready"
        t = now_iso(now)
        status = {
            "state": state,
            "namespace": ns,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "Reconciled" if ready else "OperandNotReady",
                    "message": "ClusterPolicy is ready as all resources have been successfully "
                    "reconciled"
                    if ready
                    else "ClusterPolicy is not ready, states not ready",
                    "lastTransitionTime": t,
                },
                {
                    "type": "Error",
                    "status": "False" if ready else "True",
                    "reason": "Ready" if ready else "OperandNotReady",
                    "message": "" if ready else "one or more operands are not ready",
                    "lastTransitionTime": t,
                },
            ],
        }
        name = cp["metadata"]["name"]
        writes.append(
            lambda: self.kube.patch(
                f"{self.crd_paths['clusterpolicies']}/{name}/status", {"status": status}
            )
        )

    def device_resources(self, nodes, resources, writes) -> None:
        """Extended resources from running device plugins; vanished ones drop to 0."""
        for name, node in nodes.items():
            st = node.get("status") or {}
            cap = st.get("capacity") or {}
            alloc = st.get("allocatable") or {}
            want = {k: str(v) for k, v in resources.get(name, {}).items()}
            for k in cap:
                if k.startswith("nvidia.com/") and k not in want:
                    want[k] = "0"
            patch = {k: v for k, v in want.items() if cap.get(k) != v or alloc.get(k) != v}
            if patch:
                writes.append(
                    lambda n=name, p=patch: self.kube.patch(
                        f"/api/v1/nodes/{n}/status", {"status": {"capacity": p, "allocatable": p}}
                    )
                )

    # --- pods of a Kata RuntimeClass -----------------------------------------------------------

    def workloads(self, nodes, pods, rcs, writes, now) -> None:
        for pod in pods:
            spec = pod.get("spec") or {}
            rc_name = spec.get("runtimeClassName")
            st = pod.get("status") or {}
            if not rc_name or not spec.get("nodeName") or not st.get("podIP"):
                continue
            if (pod.get("metadata") or {}).get("deletionTimestamp"):
                continue
            phase = st.get("phase")
            if phase not in ("Pending", "Running"):
                continue
            node = spec["nodeName"]
            handler = (rcs.get(rc_name) or {}).get("handler") or rc_name
            if node not in nodes:
                continue
            if not handler.startswith("kata"):
                if phase == "Pending":
                    writes.append(lambda p=pod: self._patch_pod(p, running_status(p, now)))
                continue
            host = self.hosts.get(node)
            version = ((nodes[node].get("status") or {}).get("nodeInfo") or {}).get(
                "kubeletVersion", ""
            )
            installed = (nodes[node]["metadata"].get("labels") or {}).get(
                logic.KATA_RUNTIME
            ) == "true"
            plan = logic.kata_pod_plan(pod, handler, host, version, installed)
            container = container_names(pod)[0] if container_names(pod) else ""
            if plan.phase == "Pending":
                if phase == "Pending" and waiting_reason(pod) != (plan.reason, plan.message):
                    s = waiting_status(pod, plan.reason, plan.message, now)
                    writes.append(lambda p=pod, s=s: self._patch_pod(p, s))
                self._event(pod, node, plan, writes, now)
                continue
            if phase == "Pending":
                writes.append(lambda p=pod: self._patch_pod(p, running_status(p, now)))
                self.dirty.set()
                continue
            started = self._started_at(pod) or now
            if plan.completes:
                if now - started >= logic.RUN_SECONDS:
                    self.logs.set(pod, {container: plan.logs})
                    s = succeeded_status(pod, started, now)
                    writes.append(lambda p=pod, s=s: self._patch_pod(p, s))
                else:
                    self.logs.set(pod, {container: plan.logs[:1]})
                    self.wake(started + logic.RUN_SECONDS)
            else:
                self.logs.set(pod, {container: plan.logs})

    @staticmethod
    def _started_at(pod: dict) -> float | None:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            r = (cs.get("state") or {}).get("running")
            if r:
                return parse_time(r.get("startedAt"))
        return None

    def _event(self, pod, node, plan: logic.PodPlan, writes, now) -> None:
        meta = pod["metadata"]
        k = (meta["uid"], plan.event_reason + plan.message)
        if not plan.event_reason or k in self.events_sent:
            return
        self.events_sent.add(k)
        t = now_iso(now)
        ev = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "reason": plan.event_reason,
            "message": plan.message,
            "type": "Warning",
            "source": {"component": "kubelet", "host": node},
            "reportingComponent": "kubelet",
            "reportingInstance": node,
            "firstTimestamp": t,
            "lastTimestamp": t,
            "count": 1,
        }
        writes.append(
            lambda: self.kube.create(f"/api/v1/namespaces/{meta['namespace']}/events", ev)
        )

    def _patch_pod(self, pod: dict, status: dict) -> None:
        m = pod["metadata"]
        self.kube.patch(f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}/status", status)

    # --- pod exec into the simulated hosts (tests/lab/hostexec.py) ----------------------------

    def host_execs(self, pods, writes) -> None:
        hosts = {n for n in self.hosts.nodes if not n.startswith("scale-node-")}
        for pod, node in hostexec.plan(pods, hosts, self.host_execs_done):
            writes.append(lambda p=pod, n=node: self._host_exec(p, n))
        self.host_execs_done &= {p["metadata"]["uid"] for p in pods}

    def _host_exec(self, pod: dict, node: str) -> None:
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if node:
            obj = hostexec.exec_object(pod, node, self.state_dir)
            path = f"{hostexec.EXEC_API}/namespaces/{ns}/execs"
            try:
                self.kube.create(path, obj)
            except KubeError as e:  # one left by an earlier pod of that name: take it over
                if e.status != 409:
                    raise
                self.kube.patch(f"{path}/{name}", {"metadata": {
                    k: obj["metadata"][k] for k in ("labels", "ownerReferences")},
                    "spec": obj["spec"]})
        self.host_execs_done.add(meta["uid"])
        if hostexec.held(pod):
            if node and not self._exec_reaches_host(ns, name):
                print(f"{now_iso()} {ns}/{name}: KWOK did not serve its Exec in time; "
                      "released anyway", flush=True)
            note = node or "no simulated host on this node"
            self.kube.patch(f"/api/v1/namespaces/{ns}/pods/{name}",
                            {"metadata": {"annotations": {hostexec.HOLD_ANNOTATION: note}}})

    def _exec_reaches_host(self, ns: str, name: str, seconds: float = 20.0) -> bool:
        """KWOK serves a pod's exec from its own cache of `Exec` objects, filled by a watch
        that can lag the create under load ("no exec found"). The hold is released only once
        an exec through the API server reaches the host (`chroot /host true`): a client that
        waits for Running never meets a pod KWOK cannot exec in yet. The API server passes an
        exec to a pod with a node even while it is Pending."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            r = subprocess.run([self.kubectl, "--kubeconfig", self.kubeconfig, "exec", "-n", ns,
                                name, "--", "chroot", "/host", "true"],
                               capture_output=True, timeout=seconds, stdin=subprocess.DEVNULL)
            if r.returncode == 0:
                return True
            time.sleep(0.2)
        return False

    # --- plausible logs for the remaining chart pods ---------------------------------------------

    def misc_logs(self, pods) -> None:
        for pod in pods:
            if not is_running(pod):
                continue
            lb = pod["metadata"].get("labels") or {}
            role = lb.get("role")
            if lb.get("app.kubernetes.io/name") == "node-feature-discovery" and role:
                c = container_names(pod)[0]
                lines = {
                    "master": (
                        "Node Feature Discovery Master v0.18.3",
                        "gRPC server disabled",
                        "starting NodeFeature controller",
                        "updated node labels",
                    ),
                    "worker": (
                        "Node Feature Discovery Worker v0.18.3",
                        "feature discovery completed",
                        "creating NodeFeature object",
                    ),
                    "gc": ("Node Feature Discovery Garbage Collector v0.18.3", "starting gc"),
                }.get(role, ("running",))
                self.logs.set(pod, {c: lines})


def _ds_shape(ds: dict) -> tuple:
    spec = ds["spec"]["template"]["spec"]
    return (sorted(c.get("image", "") for c in spec.get("containers", [])
                   + spec.get("initContainers", [])),
            (ds["spec"].get("updateStrategy") or {}).get("type"),
            (ds["spec"]["template"]["metadata"].get("labels") or {}).get("helm.sh/chart"))


def operand_update(have: dict, op: logic.Operand, ns: str, cp: dict,
                   cfg: logic.PolicyConfig) -> dict | None:
    """The patch that brings an operand DaemonSet to what the ClusterPolicy now asks for, as
    the operator's reconcile updates its DaemonSets in place (controllers/object_controls.go,
    v26.3.0 - v26.7.0); None when it already is."""
    want = operand_daemonset(op, ns, cp, cfg)
    if _ds_shape(have) == _ds_shape(want):
        return None
    return {"spec": {"updateStrategy": want["spec"]["updateStrategy"],
                     "template": want["spec"]["template"]}}


def update_strategy(cp: dict) -> dict:
    """`daemonsets.updateStrategy` of the ClusterPolicy as applyUpdateStrategyConfig reads it
    (controllers/object_controls.go, v26.3.0 - v26.7.0): OnDelete, else RollingUpdate."""
    daemonsets = (cp.get("spec") or {}).get("daemonsets") or {}
    if daemonsets.get("updateStrategy") == "OnDelete":
        return {"type": "OnDelete", "rollingUpdate": None}
    return {"type": "RollingUpdate"}


def operand_daemonset(op: logic.Operand, ns: str, cp: dict, cfg: logic.PolicyConfig) -> dict:
    pod_labels = {
        **dict(op.pod_labels),
        MANAGED_BY: "gpu-operator",
        # the operator's version as read from its image (a digest-pinned image has none)
        "helm.sh/chart": f"gpu-operator-v{'.'.join(map(str, cfg.version))}",
    }
    main_image, init_image = logic.operand_images(op.name, cp.get("spec"), op.image)
    container: dict = {
        "name": op.container,
        "image": main_image,
        "securityContext": {"privileged": True},
    }
    if op.name == "nvidia-vfio-manager":
        container["lifecycle"] = {"preStop": {"exec": {"command": list(
            logic.vfio_manager_prestop(cfg))}}}
    if op.name == "nvidia-kata-sandbox-device-plugin-daemonset" and cfg.kata_device_plugin_env:
        container["env"] = [{"name": k, "value": v} for k, v in cfg.kata_device_plugin_env]
    inits = [{"name": n, "image": init_image, "securityContext": {"privileged": True}}
             for n in logic.init_containers(op.name, cfg)]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": op.name,
            "namespace": ns,
            "labels": {
                MANAGED_BY: "gpu-operator",
                "app.kubernetes.io/part-of": "gpu-operator",
                **dict(op.pod_labels),
            },
            "ownerReferences": [
                {
                    "apiVersion": "nvidia.com/v1",
                    "kind": "ClusterPolicy",
                    "name": cp["metadata"]["name"],
                    "uid": cp["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "selector": {"matchLabels": dict(op.pod_labels)},
            "updateStrategy": update_strategy(cp),
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "nodeSelector": {f"{logic.DEPLOY}{op.component}": "true"},
                    "tolerations": [
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "serviceAccountName": "gpu-operator",
                    **({"initContainers": inits} if inits else {}),
                    "containers": [container],
                },
            },
        },
    }
