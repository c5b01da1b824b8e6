"""Run untrusted generated Python (a HumanEval solution and its tests) in a contained process.

`run_python(program)` writes the program into a fresh temporary directory and runs it in a new
Python process (`_sandbox_child.py` sets the containment up, then runs it) under a wall-clock
timeout. Its environment is an allow-list (PATH, HOME, LANG, TMPDIR): nothing of the parent's,
no API keys or tokens.

"namespaces" isolation, the default and the only one used unless weaker isolation is allowed:
- new PID, mount, network, IPC and UTS namespaces (as a normal user, inside a new user
  namespace too). When the namespace's first process dies the kernel kills every process in
  it, so nothing (setsid or start_new_session children included) outlives the run;
- no capabilities (bounding and ambient sets emptied, no_new_privs); as root, the program also
  runs as a uid of its own (SANDBOX_UIDS; no other process has it), so it owns no host file;
- every mount read-only, nosuid and nodev; /tmp (the working directory is inside it) is a new
  tmpfs capped at `tmp_bytes` and `tmp_files`, so nothing lands in the host's /tmp; /dev holds
  only null, zero, full, random and urandom; /proc shows the sandbox's own processes only;
- the network namespace has only a downed loopback, so nothing can be reached.

"rlimits" isolation (weak, refused unless allowed with `--unsafe-weak-sandbox` or
LLMBENCH_UNSAFE_WEAK_SANDBOX=1): a new session, rlimits, Python-level sockets refused; as root,
its own uid as above (so it cannot signal, read or write what root owns). Weaker: code that
loads a C library (ctypes) can open sockets; it sees the host's /proc (not other users'
environments) and can write wherever its uid may (the host's /tmp); as a normal user it runs as
that user and can touch that user's files and processes, and where no cgroup can be made a
child that calls setsid() can outlive the run.

Whole-sandbox memory and process limits: a cgroup holding every process of the run, with
memory.max (or v1 memory.limit_in_bytes, swap included) = `memory_bytes` and pids.max =
`processes` + 1 (the `unshare` launcher), created when this process may (root, or a delegated
cgroup v2 subtree). Without one the tightest limit that holds is: at most `processes` processes
(RLIMIT_NPROC counts the sandbox's own uid, or its own user namespace), each with at most
`memory_bytes` of address space (RLIMIT_AS), so at most processes x memory_bytes, plus
`tmp_bytes` of tmpfs. `SandboxResult.isolation` says which held ("+cgroup").

In every mode: CPU seconds (RLIMIT_CPU), address space (RLIMIT_AS), size of one written file
(RLIMIT_FSIZE), 256 open files, no core files; every process of the run is SIGKILLed when it
ends or times out.

The program passes when it exits 0 on its own within the limits. SystemExit raised by it counts
as a failure (the tests did not run to the end); a program that calls os._exit(0) on purpose can
still fake a pass: the sandbox contains harm, it does not police cheating.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from llmbench.errors import LLMBenchError

PROGRAM_FILE = "program.py"
CHILD = Path(__file__).with_name("_sandbox_child.py")
OUTPUT_TAIL_BYTES = 8192
ISOLATIONS = ("namespaces", "rlimits")
UNSAFE_ENV = "LLMBENCH_UNSAFE_WEAK_SANDBOX"
UNSAFE_FLAG = "--unsafe-weak-sandbox"
# uids no account uses (above the 16-bit range, below the 2^31 boundary some tools mishandle);
# each run as root takes one at random, so its processes are exactly the processes of that uid
SANDBOX_UIDS = range(0x5A000000, 0x5B000000)
# the launcher's death kills the namespace's first process, and with it every process in it
UNSHARE_ARGS = (
    "--net",
    "--pid",
    "--fork",
    "--mount",
    "--ipc",
    "--uts",
    "--kill-child",
    "--propagation",
    "private",
)
# as a normal user, a user namespace gives the rights to make the others (and nothing outside)
USER_NAMESPACE_ARGS = ("--user", "--map-root-user")
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
CGROUP_PREFIX = "llmbench-sandbox-"

_weak_allowed = False


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may use. `memory_bytes` and `processes` bind the whole run (see the module
    docstring for where no cgroup can be made); the others bind each process."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_bytes: int = 1 << 30
    file_bytes: int = 16 << 20
    tmp_bytes: int = 64 << 20
    tmp_files: int = 1000
    processes: int = 64


@dataclass(frozen=True)
class SandboxResult:
    passed: bool
    returncode: int | None
    timed_out: bool
    output: str  # the tail of the program's stdout and stderr together
    isolation: str  # "namespaces" or "rlimits", with "+cgroup" when a cgroup held the run


def allow_weak_isolation() -> None:
    """Let `run_python` fall back to "rlimits" isolation (what --unsafe-weak-sandbox does)."""
    global _weak_allowed
    _weak_allowed = True


def weak_isolation_allowed() -> bool:
    return _weak_allowed or os.environ.get(UNSAFE_ENV) == "1"


def choose_isolation(requested: str | None = None) -> str:
    """The isolation a run gets: "namespaces" where this machine can make them; "rlimits" only
    when asked for or when namespaces fail, and then only if weak isolation was allowed.
    Otherwise raises LLMBenchError saying why and how to allow it — never a silent fallback."""
    if requested not in (None, *ISOLATIONS):
        raise LLMBenchError(
            f"sandbox isolation '{requested}' is unknown; expected one of {', '.join(ISOLATIONS)}"
        )
    problem = None
    if requested != "rlimits":
        problem = namespace_problem()
        if problem is None:
            return "namespaces"
        if requested == "namespaces":
            raise LLMBenchError(f"the sandbox cannot make its namespaces here: {problem}")
    if weak_isolation_allowed():
        return "rlimits"
    why = f"the sandbox cannot make its namespaces here ({problem})" if problem else ""
    raise LLMBenchError(
        f"refusing to run generated code: {why or 'weak isolation was asked for'}, and weak "
        "isolation would let it reach the network and the host's files; run as root or where "
        f"user namespaces are enabled, or allow weak isolation with {UNSAFE_FLAG} "
        f"(or {UNSAFE_ENV}=1)"
    )


@cache
def namespace_problem() -> str | None:
    """None when `unshare` can make the sandbox's namespaces here (checked once, by a trial
    run), else why not, in a few words."""
    command = _unshare_command()
    if command is None:
        return "util-linux `unshare` is not on PATH"
    try:
        trial = subprocess.run([*command, "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"`unshare` did not run: {error}"
    if trial.returncode != 0:
        lines = trial.stderr.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"`unshare` exited {trial.returncode}"
    return None


def _unshare_command() -> list[str] | None:
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    user = () if os.geteuid() == 0 else USER_NAMESPACE_ARGS
    return [unshare, *user, *UNSHARE_ARGS]


def run_python(
    program: str, limits: SandboxLimits | None = None, isolation: str | None = None
) -> SandboxResult:
    """Run `program` (Python source) contained, in a fresh temporary directory as its cwd.

    `isolation` is "namespaces" or "rlimits"; None picks as `choose_isolation` does (which
    raises where only weak isolation is possible and it was not allowed). Raises LLMBenchError
    too when the containment could not be set up, so a broken sandbox never reads as a
    model's failure.
    """
    limits = limits or SandboxLimits()
    isolation = choose_isolation(isolation)
    uid = secrets.choice(SANDBOX_UIDS) if os.geteuid() == 0 else None
    with tempfile.TemporaryDirectory(
        prefix="llmbench-sandbox-", ignore_cleanup_errors=True
    ) as root:
        work = Path(root) / "work"
        work.mkdir()
        os.chmod(root, 0o711)  # the child may reach work/ but not list its parent
        (work / PROGRAM_FILE).write_text(program)
        if uid is not None:
            os.chown(work, uid, uid)  # weak isolation writes here as that uid
        config = {
            "namespaces": isolation == "namespaces",
            "work_name": Path(root).name,
            "uid": uid,
            "limits": asdict(limits),
        }
        with _cgroup(limits) as cgroup:
            returncode, timed_out, ready, output = _run_contained(
                work, Path(root) / "output", config, cgroup, limits.wall_s
            )
    if not ready:
        raise LLMBenchError(f"the sandbox could not set up its containment: {output.strip()}")
    return SandboxResult(
        passed=returncode == 0 and not timed_out,
        returncode=returncode,
        timed_out=timed_out,
        output=output,
        isolation=isolation + ("+cgroup" if cgroup else ""),
    )


def _launch_command(config: dict, cgroup: list[Path]) -> list[str]:
    command = [sys.executable, "-I", "-S", str(CHILD), json.dumps(config)]
    if config["namespaces"]:
        command = [*(_unshare_command() or ["unshare"]), *command]
    if cgroup:
        # a shell joins the cgroup(s), then becomes the launcher: no preexec_fn, so thread-safe
        joins = [str(group / "cgroup.procs") for group in cgroup]
        script = (
            'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
        )
        command = ["/bin/sh", "-c", script, "sh", *joins, "--", *command]
    return command


def _run_contained(
    work: Path, output_path: Path, config: dict, cgroup: list[Path], wall_s: float
) -> tuple[int | None, bool, bool, str]:
    """Start the child, wait up to the wall limit, kill everything it started; return its exit
    status (None when it timed out), whether it timed out, whether its containment was in place
    (it says so on a pipe it closes before the program starts) and the tail of its output."""
    ready_read, ready_write = os.pipe()
    config = {**config, "ready_fd": ready_write}
    try:
        with open(output_path, "wb") as output:
            child = subprocess.Popen(
                _launch_command(config, cgroup),
                cwd=work,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={"PATH": SANDBOX_PATH, "HOME": str(work), "LANG": "C.UTF-8", "TMPDIR": "/tmp"},
                start_new_session=True,
                pass_fds=(ready_write,),
            )
            os.close(ready_write)
            ready_write = None
            try:
                returncode, timed_out = child.wait(timeout=wall_s), False
            except subprocess.TimeoutExpired:
                returncode, timed_out = None, True
            finally:
                _kill_everything(child, cgroup, config["uid"])
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


def _kill_everything(child: subprocess.Popen, cgroup: list[Path], uid: int | None) -> None:
    """SIGKILL every process the child started, then reap the child: its process group; in a
    PID namespace, the kernel kills the rest once the namespace's first process dies; then,
    until none is left, every task in the cgroup and every process of the sandbox's own uid
    (these catch setsid() escapees where there is no PID namespace)."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()
    deadline = time.monotonic() + 5
    while (left := _leftovers(cgroup, uid)) and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


def _leftovers(cgroup: list[Path], uid: int | None) -> set[int]:
    pids = {int(task) for group in cgroup for task in _read(group / "cgroup.procs").split()}
    if uid is not None:
        pids |= {pid for pid in _all_pids() if _live_uid(pid) == uid}
    pids.discard(os.getpid())
    return pids


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _live_uid(pid: int) -> int | None:
    """The real uid of process `pid`, or None when it is gone or already dead (a zombie)."""
    fields = dict(line.split(":", 1) for line in _read(Path(f"/proc/{pid}/status")).splitlines())
    if "Uid" not in fields or fields.get("State", "").split()[:1] in (["Z"], ["X"]):
        return None
    return int(fields["Uid"].split()[0])


def _tail(path: Path) -> str:
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - OUTPUT_TAIL_BYTES))
        return handle.read().decode("utf-8", errors="replace")


@contextmanager
def _cgroup(limits: SandboxLimits):
    """The cgroup directories (one in v2; memory and pids in v1) that hold the run to
    `memory_bytes` and `processes` together, or [] where none can be made; removed after."""
    made: list[Path] = []
    try:
        made = _make_cgroup(limits, made)
    except OSError:
        _remove_cgroups(made)
        made = []
    try:
        yield made
    finally:
        _remove_cgroups(made)


def _make_cgroup(limits: SandboxLimits, made: list[Path]) -> list[Path]:
    name = f"{CGROUP_PREFIX}{uuid.uuid4().hex}"
    # one task more than the program's own limit: the `unshare` launcher
    settings = {
        "memory": {"memory.limit_in_bytes": limits.memory_bytes},
        "pids": {"pids.max": limits.processes + 1},
    }
    v2 = _cgroup_v2_parent()
    if v2 is not None:
        settings = {"": {"memory.max": limits.memory_bytes, "pids.max": limits.processes + 1}}
        parents = {"": v2}
    else:
        parents = {controller: _cgroup_v1_parent(controller) for controller in settings}
        if None in parents.values():
            return []
    for controller, values in settings.items():
        group = parents[controller] / name
        group.mkdir()
        made.append(group)
        for file, value in values.items():
            _write_limit(group / file, value)
    return made


def _write_limit(path: Path, value: int) -> None:
    path.write_text(str(value))
    # swap counts too, so the limit cannot be dodged by swapping (where swap is accounted)
    swap = {"memory.limit_in_bytes": "memory.memsw.limit_in_bytes", "memory.max": "memory.swap.max"}
    if path.name in swap and path.with_name(swap[path.name]).exists():
        path.with_name(swap[path.name]).write_text("0" if path.name == "memory.max" else str(value))


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under "" its v2 path."""
    paths = {}
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def _cgroup_v2_parent() -> Path | None:
    """The deepest cgroup v2 directory at or above this process's own that hands out both the
    memory and pids controllers to its children, or None."""
    mount = _cgroup2_mount()
    own = _own_cgroups().get("")
    if mount is None or own is None:
        return None
    here = mount / own.lstrip("/")
    for candidate in (here, *here.parents):
        if not candidate.is_relative_to(mount):
            break
        if {"memory", "pids"} <= set(_read(candidate / "cgroup.subtree_control").split()):
            return candidate
    return None


def _cgroup2_mount() -> Path | None:
    for line in _read(Path("/proc/self/mountinfo")).splitlines():
        fields = line.split()
        if fields[fields.index("-") + 1] == "cgroup2":
            return Path(fields[4])
    return None


def _cgroup_v1_parent(controller: str) -> Path | None:
    """Where to make a v1 `controller` cgroup: beside this process in its hierarchy."""
    base = Path("/sys/fs/cgroup") / controller
    own = _own_cgroups().get(controller)
    if os.geteuid() != 0 or own is None or not (base / "cgroup.procs").is_file():
        return None
    return base / own.lstrip("/")


def _remove_cgroups(groups: list[Path]) -> None:
    """Remove the cgroups once the kernel has reaped their killed tasks (within about 2 s)."""
    deadline = time.monotonic() + 2
    for group in groups:
        while True:
            try:
                group.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
