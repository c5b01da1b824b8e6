"""Run untrusted generated Python (a HumanEval solution and its tests) in a contained process.

`run_python(program)` writes the program into a fresh temporary directory and runs it there in a
new Python process, in its own session, under a wall-clock timeout and these containments:

- resource limits: CPU seconds (RLIMIT_CPU), address space (RLIMIT_AS), size of any file it
  writes (RLIMIT_FSIZE), process count (RLIMIT_NPROC), no core files;
- processes: the whole session is SIGKILLed when the program ends or times out. A fork bomb is
  capped by a pids cgroup (pids.max) when one can be created; RLIMIT_NPROC alone does not bind
  root, whom Linux exempts from it;
- with "namespaces" isolation (root, and util-linux `unshare` present): new network, PID,
  mount, IPC and UTS namespaces. The network namespace has no interface but a downed loopback,
  so nothing can be reached; every mount is made read-only, nosuid and nodev except the
  temporary directory; all capabilities are dropped (bounding set too, no_new_privs) before the
  program runs, so it cannot undo the mounts; when the namespace's first process dies the
  kernel kills every process in it, so nothing outlives the run.
- without namespaces ("rlimits" isolation, e.g. not root), network access is refused by
  replacing the socket constructors in the child before the program runs. That is weaker: code
  that loads a C library (ctypes) can still open sockets, and writes outside the temporary
  directory are stopped only by the file permissions of the user running llmbench.

The program passes when it exits 0 on its own within the limits. SystemExit raised by it counts
as a failure (the tests did not run to the end); a program that calls os._exit(0) on purpose can
still fake a pass: the sandbox contains harm, it does not police cheating.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from llmbench.errors import LLMBenchError

PROGRAM_FILE = "program.py"
OUTPUT_TAIL_BYTES = 8192
# new network, PID (with its own /proc), mount, IPC and UTS namespaces; the launcher's death
# kills the namespace's first process, and with it every process in the namespace
UNSHARE = (
    "unshare",
    "--net",
    "--pid",
    "--mount-proc",
    "--ipc",
    "--uts",
    "--kill-child",
    "--propagation",
    "private",
)
PIDS_CGROUP_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may use. Each limit applies to every process the program starts."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    processes: int = 64


@dataclass(frozen=True)
class SandboxResult:
    passed: bool
    returncode: int | None
    timed_out: bool
    output: str  # the tail of the program's stdout and stderr together
    isolation: str  # "namespaces" or "rlimits", with "+pids-cgroup" when a cgroup capped forks


# The child's first code, run by `python -I -S -c`: put the containment in place, then run
# program.py. It must not import llmbench (the child sees only the standard library).
_BOOTSTRAP = r"""
import ctypes, json, os, resource, sys
config = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096

def fail(message):
    sys.stderr.write("sandbox setup failed: " + message + "\n")
    sys.stderr.flush()
    os._exit(1)

def mount(source, target, flags):
    if libc.mount(source.encode(), target.encode(), None, flags, None) != 0:
        return os.strerror(ctypes.get_errno())

def mount_points():
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")
            yield point, fields[5].split(",")

def read_only_except(work):
    error = mount(work, work, MS_BIND)
    if error:
        fail("bind " + work + ": " + error)
    error = mount("", work, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV)
    if error:
        fail("remount " + work + " nosuid, nodev: " + error)
    for point, options in list(mount_points()):
        if point == work:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
        flags |= MS_NOEXEC if "noexec" in options else 0
        error = mount("", point, flags)
        if error and point == "/":
            fail("remount / read-only: " + error)
    os.chdir(work)

def drop_capabilities():
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        last = int(handle.read())
    for cap in range(last + 1):
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()
    if libc.capset(header, data) != 0:
        fail("capset: " + os.strerror(ctypes.get_errno()))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        fail("no_new_privs: " + os.strerror(ctypes.get_errno()))

def block_sockets():
    import _socket, socket
    def refuse(*args, **kwargs):
        raise PermissionError("network access is disabled in the sandbox")
    class NoSocket(_socket.socket):
        def __init__(self, *args, **kwargs):
            refuse()
    for module in (socket, _socket):
        module.socket = NoSocket
        for name in ("socketpair", "fromfd", "create_connection", "create_server"):
            if hasattr(module, name):
                setattr(module, name, refuse)

def set_limits(limits):
    for name, value in (("RLIMIT_CPU", limits["cpu_s"]), ("RLIMIT_AS", limits["memory_bytes"]),
                        ("RLIMIT_FSIZE", limits["file_bytes"]),
                        ("RLIMIT_NPROC", limits["processes"]), ("RLIMIT_CORE", 0)):
        hard = value + 1 if name == "RLIMIT_CPU" else value
        resource.setrlimit(getattr(resource, name), (value, hard))

def wait_as_init():
    # The namespace's first process ignores signals it has no handler for, SIGXCPU included,
    # so the program runs in a child and this process only reports the child's status.
    child = os.fork()
    if child:
        status = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
        os._exit(status if status >= 0 else 128 - status)

if config["namespaces"]:
    read_only_except(config["work"])
    drop_capabilities()
else:
    block_sockets()
set_limits(config["limits"])
os.write(config["ready_fd"], b"ready")
os.close(config["ready_fd"])
if config["namespaces"]:
    wait_as_init()
with open("program.py") as handle:
    code = compile(handle.read(), "program.py", "exec")
try:
    exec(code, {"__name__": "__main__", "__file__": "program.py"})
except SystemExit:
    sys.stderr.write("the program called exit before its tests finished\n")
    status = 3
except BaseException:
    import traceback
    traceback.print_exc()
    status = 1
else:
    status = 0
sys.stdout.flush()
sys.stderr.flush()
os._exit(status)
"""


def run_python(
    program: str, limits: SandboxLimits | None = None, isolation: str | None = None
) -> SandboxResult:
    """Run `program` (Python source) contained, in a fresh temporary directory as its cwd.

    `isolation` is "namespaces" or "rlimits"; None picks the strongest this machine allows
    (see `best_isolation`). Raises LLMBenchError when the containment itself could not be set
    up, so that a broken sandbox never reads as a model's failure.
    """
    limits = limits or SandboxLimits()
    isolation = isolation or best_isolation()
    if isolation not in ("namespaces", "rlimits"):
        raise LLMBenchError(
            f"sandbox isolation '{isolation}' is unknown; expected 'namespaces' or 'rlimits'"
        )
    with tempfile.TemporaryDirectory(
        prefix="llmbench-sandbox-", ignore_cleanup_errors=True
    ) as root:
        work = Path(root) / "work"
        work.mkdir()
        os.chmod(root, 0o711)  # the child may reach work/ but not list its parent
        (work / PROGRAM_FILE).write_text(program)
        cgroup = _make_pids_cgroup(limits.processes)
        try:
            returncode, timed_out, ready, output = _run_contained(
                work, Path(root) / "output", limits, isolation, cgroup
            )
        finally:
            _remove_cgroup(cgroup)
    if not ready:
        raise LLMBenchError(f"the sandbox could not set up its containment: {output.strip()}")
    return SandboxResult(
        passed=returncode == 0 and not timed_out,
        returncode=returncode,
        timed_out=timed_out,
        output=output,
        isolation=isolation + ("+pids-cgroup" if cgroup else ""),
    )


def _run_contained(
    work: Path, output_path: Path, limits: SandboxLimits, isolation: str, cgroup: Path | None
) -> tuple[int | None, bool, bool, str]:
    """Start the child, wait up to the wall limit, kill everything it started; return its exit
    status (None when it timed out), whether it timed out, whether its containment was in place
    (it says so on a pipe it closes before the program starts) and the tail of its output."""
    ready_read, ready_write = os.pipe()
    config = {
        "namespaces": isolation == "namespaces",
        "work": str(work),
        "limits": asdict(limits),
        "ready_fd": ready_write,
    }
    command = [sys.executable, "-I", "-S", "-c", _BOOTSTRAP, json.dumps(config)]
    if isolation == "namespaces":
        command = [*UNSHARE, *command]
    if cgroup is not None:
        # a shell joins the cgroup, then becomes the launcher: no preexec_fn, so thread-safe
        command = [
            "/bin/sh",
            "-c",
            'echo $$ > "$0" && exec "$@"',
            str(cgroup / "cgroup.procs"),
            *command,
        ]
    try:
        with open(output_path, "wb") as output:
            child = subprocess.Popen(
                command,
                cwd=work,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={"PATH": os.defpath, "HOME": str(work), "LANG": "C.UTF-8"},
                start_new_session=True,
                pass_fds=(ready_write,),
            )
            os.close(ready_write)
            ready_write = None
            try:
                returncode, timed_out = child.wait(timeout=limits.wall_s), False
            except subprocess.TimeoutExpired:
                returncode, timed_out = None, True
            finally:
                _kill_everything(child, cgroup)
        os.set_blocking(ready_read, False)
        ready = _read_pipe(ready_read) == b"ready"
    finally:
        os.close(ready_read)
        if ready_write is not None:
            os.close(ready_write)
    return returncode, timed_out, ready, _tail(output_path)


def _read_pipe(fd: int) -> bytes:
    try:
        return os.read(fd, 16)
    except BlockingIOError:
        return b""


def _kill_everything(child: subprocess.Popen, cgroup: Path | None) -> None:
    """SIGKILL every process the child started, then reap the child: its process group; in a
    PID namespace, the kernel kills whatever left the group once the namespace's first process
    dies; with a cgroup, every task still in it (this also catches processes that called
    setsid() where there is no PID namespace)."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()
    if cgroup is None:
        return
    deadline = time.monotonic() + 5
    while (tasks := _read(cgroup / "cgroup.procs").split()) and time.monotonic() < deadline:
        for task in tasks:
            try:
                os.kill(int(task), signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


def _tail(path: Path) -> str:
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - OUTPUT_TAIL_BYTES))
        return handle.read().decode("utf-8", errors="replace")


@cache
def best_isolation() -> str:
    """The strongest isolation here: "namespaces" when this process is root and `unshare` can
    make the namespaces the sandbox uses (checked once, by a trial run), else "rlimits"."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "rlimits"
    trial = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=30)
    return "namespaces" if trial.returncode == 0 else "rlimits"


def _make_pids_cgroup(processes: int) -> Path | None:
    """A new pids cgroup allowing `processes` tasks, or None where none can be made (not root,
    no pids controller mounted)."""
    if os.geteuid() != 0:
        return None
    for base in PIDS_CGROUP_ROOTS:
        v1 = base.name == "pids" and (base / "cgroup.procs").is_file()
        if not v1 and "pids" not in _read(base / "cgroup.subtree_control").split():
            continue
        group = base / f"llmbench-sandbox-{uuid.uuid4().hex}"
        try:
            group.mkdir()
            # one task more than the program's own limit: the `unshare` launcher
            (group / "pids.max").write_text(str(processes + 1))
            return group
        except OSError:
            _remove_cgroup(group if group.exists() else None)
    return None


def _remove_cgroup(cgroup: Path | None) -> None:
    """Remove the cgroup once the kernel has reaped its killed tasks (within about 2 s)."""
    if cgroup is None:
        return
    deadline = time.monotonic() + 2
    while True:
        try:
            cgroup.rmdir()
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
