"""Patch a copy of KWOK's source so the lab's pod exec behaves like a kubelet's and can never
run a pod's command on the real machine by path.

`build.sh` copies `sigs.k8s.io/kwok@v0.8.0` out of the Go module cache and runs
`python3 kwok_patch.py <copy>` before building kwok from it. Each edit names the upstream
file (paths are relative to the module root, tag v0.8.0) and must match its anchor exactly
once: when a KWOK bump moves the code, the build fails here instead of silently shipping an
unpatched controller. This file's hash is part of the build cache key, so changing an edit
rebuilds kwok.

The edits, as a kubelet behaves:
- pkg/kwok/server/debugging_exec.go, `ExecInContainer`: refuse an exec whose argv[0]
  contains '/'. KWOK runs the command on the machine running the controller, looked up on
  its PATH, which the lab sets to `tests/lab/hostexec/bin` only; a path (`/bin/sh`,
  `/usr/sbin/chroot /host sh`) would bypass that and run on the real root.
- same file: return the command's exit status as a `k8s.io/utils/exec` `CodeExitError`, so
  cri-streaming answers NonZeroExitCode with the ExitCode cause (kubectl exits with it)
  instead of an internal error whose text ends `exit status N`.
- pkg/utils/exec/exec.go, `Command`: close the command's stdin pipe when the client's stdin
  ends, so `sh -s < script` sees end of input.
"""

from __future__ import annotations

import sys
from pathlib import Path

EXEC_GO = "pkg/kwok/server/debugging_exec.go"
UTILS_EXEC_GO = "pkg/utils/exec/exec.go"

REFUSE = '''\
	podName, podNamespace := pod[0], pod[1]
	// Lab patch (tests/lab/kwok_patch.py): only a bare command name, looked up on this
	// controller's PATH, may run; a path would run on the real machine.
	if len(cmd) == 0 || strings.Contains(cmd[0], "/") {
		return fmt.Errorf("lab: exec %q refused in pod %s: only a bare command name "+
			"(looked up on the KWOK controller's PATH, tests/lab/hostexec/bin) runs here, "+
			"never a path such as /bin/sh or /usr/sbin/chroot",
			cmd, log.KRef(podNamespace, podName))
	}
'''

EXIT_STATUS_FUNC = '''\
// labExitStatus (lab patch, tests/lab/kwok_patch.py) unwraps the command's exit status into
// the k8s.io/utils/exec ExitError cri-streaming reports as NonZeroExitCode, as a kubelet
// does; a command killed by a signal reports 128 + the signal, as container runtimes do.
func labExitStatus(err error) error {
	var ee *osexec.ExitError
	if err == nil || !errors.As(err, &ee) {
		return err
	}
	code := ee.ExitCode()
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	if code < 0 {
		return err
	}
	return utilexec.CodeExitError{Err: ee, Code: code}
}

func getExecTarget('''

# (file, anchor, replacement): each anchor must occur exactly once in the upstream file.
EDITS: list[tuple[str, str, str]] = [
    (EXEC_GO, '\t"context"\n\t"fmt"\n',
     '\t"context"\n\t"errors"\n\t"fmt"\n\tosexec "os/exec"\n\t"syscall"\n'),
    (EXEC_GO, '\t"k8s.io/cri-streaming/pkg/streaming/remotecommand"\n',
     '\t"k8s.io/cri-streaming/pkg/streaming/remotecommand"\n\tutilexec "k8s.io/utils/exec"\n'),
    (EXEC_GO, "\tpodName, podNamespace := pod[0], pod[1]\n", REFUSE),
    (EXEC_GO,
     "\t\treturn s.execInContainerWithTTY(ctx, cmd, in, stdout, resize)\n",
     "\t\treturn labExitStatus(s.execInContainerWithTTY(ctx, cmd, in, stdout, resize))\n"),
    (EXEC_GO,
     "\treturn s.execInContainer(ctx, cmd, in, stdout, stderr)\n",
     "\treturn labExitStatus(s.execInContainer(ctx, cmd, in, stdout, stderr))\n"),
    (EXEC_GO, "func getExecTarget(", EXIT_STATUS_FUNC),
    (UTILS_EXEC_GO,
     "\t\t\t\t_, _ = io.Copy(inPipe, opt.In)\n\t\t\t}()\n",
     "\t\t\t\t_, _ = io.Copy(inPipe, opt.In)\n"
     "\t\t\t\t_ = inPipe.Close() // lab patch (tests/lab/kwok_patch.py): the client's EOF\n"
     "\t\t\t}()\n"),
]


class PatchError(Exception):
    """An edit's anchor is missing or ambiguous: this KWOK is not the one the patch knows."""


def apply(src: Path) -> list[str]:
    """Apply every edit to the module copy at `src`; return "file: n edits" lines.
    Nothing is written unless every anchor matches exactly once."""
    texts: dict[str, str] = {}
    counts: dict[str, int] = {}
    for rel, anchor, new in EDITS:
        text = texts.get(rel)
        if text is None:
            text = (src / rel).read_text()
        n = text.count(anchor)
        if n != 1:
            first = anchor.strip().splitlines()[0]
            raise PatchError(f"{rel}: anchor {first!r} found {n} times, expected once "
                             "(KWOK changed: update tests/lab/kwok_patch.py for this version)")
        texts[rel] = text.replace(anchor, new)
        counts[rel] = counts.get(rel, 0) + 1
    for rel, text in texts.items():
        path = src / rel
        path.chmod(0o644)
        path.write_text(text)
    return [f"{rel}: {n} edits" for rel, n in counts.items()]


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not Path(argv[1], "go.mod").is_file():
        print("usage: kwok_patch.py KWOK_MODULE_COPY (a directory with go.mod)", file=sys.stderr)
        return 2
    try:
        for line in apply(Path(argv[1])):
            print(f"kwok_patch: {line}", file=sys.stderr)
    except (PatchError, OSError) as e:
        print(f"kwok_patch: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
