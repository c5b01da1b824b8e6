"""The sandbox: generated code is contained, scored 0 when it misbehaves, and harms nothing.

Every run of a hostile program, and every run in weak ("rlimits") isolation, happens inside the
sandbox under test *and* inside throwaway PID, mount, network, UTS and IPC namespaces made for
the test (`in_throwaway_namespaces`), with a fresh tmpfs on /tmp: should the sandbox fail, a
program that kills every process, remounts / or floods /tmp harms only that throwaway world.
The harness reports what it saw from outside the sandbox: whether the evaluator and a bystander
process survived, the hostname, leftover processes, connections, files left in /tmp.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from llmbench import sandbox
from llmbench.errors import LLMBenchError
from llmbench.sandbox import SandboxLimits, choose_isolation, run_python
from llmbench.tasks.metrics import humaneval_target

ROOT = Path(__file__).resolve().parents[1]
# Tight limits keep each run short; 256 MB is the whole sandbox's memory.
LIMITS = SandboxLimits(
    wall_s=2, cpu_s=1, memory_bytes=256 << 20, file_bytes=1 << 20, tmp_bytes=4 << 20,
    tmp_files=200, processes=32,
)  # fmt: skip
SECRET = "sk-llmbench-test-secret-do-not-leak"
MARKER = "llmbench-hostile-marker"
PORT = 8765  # inside the throwaway network namespace, so never taken
THROWAWAY = ("unshare", "--pid", "--fork", "--mount-proc", "--mount", "--net", "--uts", "--ipc",
             "--kill-child", "--propagation", "private")  # fmt: skip

needs_namespaces = pytest.mark.skipif(
    sandbox.namespace_problem() is not None, reason="the sandbox cannot make namespaces here"
)
needs_throwaway_namespaces = pytest.mark.skipif(
    os.geteuid() != 0 or sandbox.namespace_problem() is not None,
    reason="hostile programs run only inside throwaway namespaces, which need root and unshare",
)


def in_both_modes(test):
    """Run `test` once per isolation, each inside throwaway namespaces."""
    modes = pytest.mark.parametrize("isolation", sandbox.ISOLATIONS)
    return needs_throwaway_namespaces(modes(test))


# The evaluator inside the throwaway namespaces: set the scene, run the sandbox, report.
HARNESS = r"""
import fcntl, glob, json, os, socket, struct, subprocess, sys
from llmbench import _sandbox_child as child, sandbox
args = json.loads(sys.argv[1])
evaluator = os.fork()
if evaluator:  # the namespace's first process ignores kill(); so the evaluator is its child
    while (done := os.wait())[0] != evaluator:
        pass
    os._exit(os.waitstatus_to_exitcode(done[1]) & 0xFF)
child.mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777,size=64m")  # the host's /tmp is not touched
child.expose_python()  # weak isolation as root needs a Python every uid can read
with socket.socket() as s:  # loopback up, so a sandbox that leaks could really connect
    fcntl.ioctl(s, 0x8914, struct.pack("16sH14x", b"lo", 1 | 8 | 64))
server = socket.create_server(("127.0.0.1", args["port"]))
server.settimeout(0.3)
bystander = subprocess.Popen(["sleep", "60"])
hostname = socket.gethostname()
if args["isolation"] == "rlimits":
    sandbox.allow_weak_isolation()
limits = sandbox.SandboxLimits(**args["limits"])
try:
    result = sandbox.run_python(args["program"], limits, args["isolation"]).__dict__
except Exception as error:
    result = {"error": f"{type(error).__name__}: {error}"}
try:
    server.accept()
    connected = True
except OSError:
    connected = False
def cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return b""
survivors = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid())
             and any(m in cmdline(p) for m in (b"llmbench-hostile-marker", b"llmbench-sandbox-"))]
report = dict(result, connected=connected, survivors=survivors,
              bystander_alive=bystander.poll() is None,
              hostname_kept=socket.gethostname() == hostname,
              flood_left=len(glob.glob("/tmp/llmbench-flood-*")))
bystander.kill()
print("REPORT " + json.dumps(report))
"""


def sandboxed(program: str, isolation: str, limits: SandboxLimits = LIMITS) -> dict:
    """Run `program` in the sandbox inside throwaway namespaces; the harness's report."""
    arguments = {
        "program": program,
        "isolation": isolation,
        "limits": limits.__dict__,
        "port": PORT,
    }
    done = subprocess.run(
        [*THROWAWAY, sys.executable, "-c", HARNESS, json.dumps(arguments)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "OPENAI_API_KEY": SECRET, "LLMBENCH_API_TOKEN": SECRET},
    )
    reports = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert reports, f"the evaluator did not survive (exit {done.returncode}): {done.stderr[-2000:]}"
    report = json.loads(reports[-1].removeprefix("REPORT "))
    assert "error" not in report, report["error"]
    assert report["bystander_alive"] and report["survivors"] == [], report
    return report


def attempt(action: str) -> str:
    """A program that tries `action` and says whether it worked; either way it exits 0."""
    body = "\n".join("    " + line for line in action.strip().splitlines())
    return (
        "import ctypes, os, socket, sys\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"try:\n{body}\n    print('ESCAPED')\n"
        "except OSError as error:\n    print('blocked:', error)\n"
    )


ADD = humaneval_target(
    prompt='def add(a: int, b: int) -> int:\n    """Return a + b."""\n',
    test="\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n",
    entry_point="add",
)


# --- what a correct program may do ------------------------------------------------------------


@in_both_modes
def test_a_correct_program_passes(isolation):
    report = sandboxed("assert sum([1, 2]) == 3\nprint('ok')", isolation)
    assert report["passed"] and report["output"] == "ok\n"
    assert report["isolation"].startswith(isolation)


@in_both_modes
def test_dev_null_and_subprocesses_work(isolation):
    program = (
        "import subprocess, sys\n"
        "subprocess.run(['true'], stdin=subprocess.DEVNULL, check=True)\n"
        "out = subprocess.run([sys.executable, '-c', 'import json; print(2 + 3)'], "
        "stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True)\n"
        "print(out.stdout.strip(), open('/dev/null').read() == '', "
        "len(open('/dev/urandom', 'rb').read(4)))\n"
    )
    report = sandboxed(program, isolation)
    assert report["passed"] and report["output"] == "5 True 4\n", report["output"]


@in_both_modes
def test_the_program_runs_in_a_fresh_writable_temporary_directory(isolation):
    program = (
        "import os, tempfile\nassert os.listdir('.') == ['program.py'], os.listdir('.')\n"
        "open('notes.txt', 'w').write('kept')\nassert open('notes.txt').read() == 'kept'\n"
        "tempfile.NamedTemporaryFile().write(b'scratch')\nprint(os.getcwd())\n"
    )
    report = sandboxed(program, isolation)
    assert report["passed"], report["output"]
    assert "llmbench-sandbox-" in report["output"]


@in_both_modes
def test_the_environment_holds_only_the_allow_list(isolation):
    report = sandboxed("import os\nprint(sorted(set(os.environ) - {'PWD'}))", isolation)
    assert report["output"] == "['HOME', 'LANG', 'PATH', 'TMPDIR']\n"


@needs_namespaces
def test_a_correct_solution_scores_1_and_a_wrong_one_0():
    from llmbench.tasks.metrics import humaneval_pass_at_1

    assert humaneval_pass_at_1("    return a + b\n", ADD) == 1.0
    assert humaneval_pass_at_1("    return a - b\n", ADD) == 0.0


# --- the failures that must score 0 -----------------------------------------------------------


@needs_namespaces
def test_a_failing_program_fails_with_its_traceback():
    result = run_python("assert 1 == 2, 'wrong'", LIMITS)
    assert not result.passed and "AssertionError: wrong" in result.output


@needs_namespaces
def test_a_program_that_exits_early_does_not_pass():
    assert not run_python("import sys\nsys.exit(0)\nassert False", LIMITS).passed


@in_both_modes
def test_an_infinite_loop_is_stopped(isolation):
    assert not sandboxed("while True:\n    pass", isolation)["passed"]


@in_both_modes
def test_a_sleeping_program_is_stopped_at_the_wall_clock_limit(isolation):
    report = sandboxed("import time\ntime.sleep(60)", isolation)
    assert report["timed_out"] and not report["passed"]


# --- hostile programs: each attempt fails and leaves no trace ----------------------------------


@in_both_modes
def test_writing_to_the_root_directory_or_the_checkout_fails(isolation):
    token = uuid.uuid4().hex
    targets = [Path(f"/PWNED_root-{token}"), ROOT / f"PWNED-{token}"]
    try:
        writes = "".join(f"open({str(t)!r}, 'w').write('pwned')\n" for t in targets)
        report = sandboxed(attempt(writes), isolation)
        assert "blocked:" in report["output"], report["output"]
        assert not any(target.exists() for target in targets)
    finally:
        for target in targets:
            target.unlink(missing_ok=True)


@in_both_modes
def test_deleting_a_users_file_fails(isolation):
    folder = Path(tempfile.mkdtemp(dir="/var/tmp"))  # visible in every mode
    try:
        folder.chmod(0o755)
        (folder / "thesis.txt").write_text("years of work")
        report = sandboxed(attempt(f"os.remove({str(folder / 'thesis.txt')!r})"), isolation)
        assert "blocked:" in report["output"]
        assert (folder / "thesis.txt").read_text() == "years of work"
    finally:
        shutil.rmtree(folder)


@in_both_modes
def test_remounting_root_read_write_fails(isolation):
    remount = (
        # MS_REMOUNT | MS_BIND: undo a read-only bind (harmless to the host's superblock)
        "if libc.mount(b'', b'/', None, 32 | 4096, None):\n"
        "    raise OSError(ctypes.get_errno(), 'mount')"
    )
    report = sandboxed(attempt(remount), isolation)
    assert "blocked: [Errno 1]" in report["output"], report["output"]  # EPERM


@in_both_modes
def test_changing_the_hostname_fails(isolation):
    report = sandboxed(attempt("socket.sethostname('pwned')"), isolation)
    assert "blocked:" in report["output"] and report["hostname_kept"]


@in_both_modes
def test_leaving_the_sandboxs_cgroup_fails(isolation):
    escape = (
        "import glob\nroots = glob.glob('/sys/fs/cgroup/*/cgroup.procs') + "
        "glob.glob('/sys/fs/cgroup/cgroup.procs')\nassert roots\n"
        "for procs in roots:\n    open(procs, 'w').write(str(os.getpid()))"
    )
    report = sandboxed(attempt(escape), isolation)
    assert "blocked:" in report["output"], report["output"]


@needs_throwaway_namespaces
def test_a_ctypes_socket_cannot_reach_loopback():
    # weak isolation cannot stop this (documented): it runs in namespace isolation only
    connect = (
        "fd = libc.socket(2, 1, 0)\n"
        f"address = (2).to_bytes(2, 'little') + ({PORT}).to_bytes(2, 'big') + bytes([127, 0, 0, 1])"
        " + bytes(8)\nif fd < 0 or libc.connect(fd, address, 16):\n"
        "    raise OSError(ctypes.get_errno(), 'connect')"
    )
    report = sandboxed(attempt(connect), "namespaces")
    assert "blocked:" in report["output"] and not report["connected"]


@in_both_modes
def test_a_python_socket_cannot_reach_loopback(isolation):
    report = sandboxed(
        attempt(f"socket.create_connection(('127.0.0.1', {PORT}), timeout=1)"), isolation
    )
    assert "blocked:" in report["output"] and not report["connected"]


@in_both_modes
def test_killing_the_evaluator_fails(isolation):
    report = sandboxed(attempt("os.kill(os.getppid(), 9)\nimport time; time.sleep(0.2)"), isolation)
    assert report["bystander_alive"]  # and the evaluator lived to write its report


@in_both_modes
def test_killing_every_process_harms_only_the_sandbox(isolation):
    report = sandboxed(attempt("os.kill(-1, 9)\nimport time; time.sleep(0.2)"), isolation)
    assert report["bystander_alive"]  # and the evaluator lived to write its report


@in_both_modes
def test_no_secret_can_be_read_from_the_environment_or_proc(isolation):
    snoop = (
        "import glob\nseen = [os.environ.get('OPENAI_API_KEY', '')]\n"
        "for path in [f'/proc/{os.getppid()}/environ'] + glob.glob('/proc/*/environ'):\n"
        "    try:\n        seen.append(open(path, 'rb').read().decode(errors='replace'))\n"
        "    except OSError:\n        pass\nprint(seen)"
    )
    report = sandboxed(attempt(snoop), isolation)
    assert report["passed"] and SECRET not in report["output"]


@in_both_modes
def test_children_that_leave_the_session_do_not_outlive_scoring(isolation):
    escape = (
        f"import subprocess, time\nsubprocess.Popen([sys.executable, '-c', 'import time; "
        f"time.sleep(60)', '{MARKER}'], start_new_session=True)\n"
        "for _ in range(3):\n    if os.fork() == 0:\n        os.setsid()\n        time.sleep(60)\n"
    )
    report = sandboxed(attempt(escape), isolation)
    assert report["passed"] and "ESCAPED" in report["output"]  # the harness found no survivors


@in_both_modes
def test_a_fork_bomb_is_contained(isolation):
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    assert not sandboxed(bomb, isolation)["passed"]


@in_both_modes
def test_memory_is_capped_for_the_whole_sandbox_not_per_process(isolation):
    # eight children each hold 96 MB for the same second (they ask to be the OOM killer's
    # victims, not their parent); a child that lived through it exits 0
    hogs = (
        "import os, time\nfor _ in range(8):\n    if os.fork() == 0:\n"
        "        open('/proc/self/oom_score_adj', 'w').write('1000')\n"
        "        block = bytearray(96 << 20)\n        time.sleep(1)\n        os._exit(0)\n"
        "held = [os.wait()[1] for _ in range(8)].count(0)\nprint('held', held)\n"
    )
    report = sandboxed(hogs, isolation, replace(LIMITS, wall_s=10))
    if "+cgroup" not in report["isolation"]:
        pytest.skip("no cgroup could be made here: only the per-process limit applies")
    held = int(report["output"].split("held ")[1])
    assert held * 96 <= 256  # at most two of the eight fit in the sandbox's 256 MB


@in_both_modes
def test_a_huge_file_is_cut_off(isolation):
    report = sandboxed("open('big', 'wb').write(b'x' * (8 << 20))", isolation)
    assert not report["passed"] and "File too large" in report["output"]


@needs_throwaway_namespaces
def test_flooding_tmp_fills_the_sandboxs_own_capped_tmpfs_only():
    flood = (
        "import itertools\ntry:\n    for i in itertools.count():\n"
        "        open(f'/tmp/llmbench-flood-{i}', 'wb').write(b'x' * 4096)\n"
        "except OSError as error:\n    print(i, error)\n"
    )
    report = sandboxed(flood, "namespaces")
    count = int(report["output"].split()[0])
    assert "No space left on device" in report["output"] and count <= LIMITS.tmp_files
    assert report["flood_left"] == 0  # nothing landed in the /tmp outside the sandbox


@needs_throwaway_namespaces
def test_the_program_sees_only_its_own_processes():
    report = sandboxed(
        "import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))", "namespaces"
    )
    assert report["output"] == "[1, 2]\n"  # the sandbox's first process and the program


@needs_throwaway_namespaces
def test_the_program_has_no_capabilities_and_no_root_uid():
    program = (
        "import os\nstatus = dict(line.split(':\\t') for line in open('/proc/self/status'))\n"
        "print(os.getuid(), status['CapEff'].strip(), status['CapBnd'].strip())\n"
    )
    uid, effective, bounding = sandboxed(program, "namespaces")["output"].split()
    assert int(uid) in sandbox.SANDBOX_UIDS and int(effective, 16) == int(bounding, 16) == 0


AS_NOBODY = r"""
import subprocess, sys
from llmbench import _sandbox_child as child
child.mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777,size=64m")
child.expose_python()  # so that nobody can run this Python at all
check = ("import sys; from llmbench import sandbox; result = sandbox.run_python(sys.argv[1]); "
         "print(result.isolation, result.output)")
done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                       sys.executable, "-c", check, sys.argv[1]])
sys.exit(done.returncode)
"""


@needs_throwaway_namespaces
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv")
def test_a_normal_user_gets_the_same_isolation_through_a_user_namespace():
    program = attempt(
        "status = dict(line.split(':\\t') for line in open('/proc/self/status'))\n"
        "print(status['CapEff'].strip(), len([p for p in os.listdir('/proc') if p.isdigit()]))\n"
        "open('/etc/pwned', 'w')"
    )
    done = subprocess.run(
        [*THROWAWAY, sys.executable, "-c", AS_NOBODY, program],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.stdout.split("\n")[:2] == [
        "namespaces 0000000000000000 2",
        "blocked: [Errno 30] Read-only file system: '/etc/pwned'",
    ], done.stdout + done.stderr


# --- refusing weak isolation ------------------------------------------------------------------


@pytest.fixture
def no_namespaces(monkeypatch, tmp_path):
    """A machine where `unshare` cannot be found, and weak isolation was not allowed."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    monkeypatch.setattr(sandbox, "_weak_allowed", False)
    sandbox.namespace_problem.cache_clear()
    yield
    sandbox.namespace_problem.cache_clear()


@pytest.mark.usefixtures("no_namespaces")
def test_without_namespaces_generated_code_is_refused_in_one_line():
    with pytest.raises(LLMBenchError) as refused:
        run_python("print('never runs')", LIMITS)
    message = str(refused.value)
    assert "\n" not in message and "`unshare` is not on PATH" in message
    assert "--unsafe-weak-sandbox" in message and sandbox.UNSAFE_ENV in message


@pytest.mark.usefixtures("no_namespaces")
def test_without_namespaces_the_humaneval_metric_refuses_before_any_request():
    from llmbench.tasks.metrics import get_metric

    with pytest.raises(LLMBenchError, match="--unsafe-weak-sandbox"):
        get_metric("humaneval_pass_at_1").preflight()


@pytest.mark.usefixtures("no_namespaces")
def test_weak_isolation_is_chosen_only_once_allowed_by_the_unsafe_flag():
    with pytest.raises(LLMBenchError, match="--unsafe-weak-sandbox"):
        choose_isolation("rlimits")
    from llmbench.cli import build_parser

    args = build_parser().parse_args(
        ["eval", "--task", "t", "--endpoint", "http://x", "--model", "m", "--base",
         "--unsafe-weak-sandbox"]
    )  # fmt: skip
    assert args.unsafe_weak_sandbox is True
    sandbox.allow_weak_isolation()
    assert choose_isolation() == "rlimits" and choose_isolation("rlimits") == "rlimits"


@pytest.mark.usefixtures("no_namespaces")
def test_the_unsafe_environment_variable_also_allows_weak_isolation(monkeypatch):
    monkeypatch.setenv(sandbox.UNSAFE_ENV, "1")
    assert choose_isolation() == "rlimits"


@pytest.mark.usefixtures("no_namespaces")
def test_asking_for_namespaces_where_there_are_none_is_refused():
    sandbox.allow_weak_isolation()  # allowing weak isolation never downgrades an explicit ask
    with pytest.raises(LLMBenchError, match="cannot make its namespaces here"):
        choose_isolation("namespaces")


@needs_namespaces
def test_a_sandbox_that_could_not_set_up_raises_instead_of_scoring(monkeypatch, tmp_path):
    # a child that exits 0 without confirming its containment must not read as a pass (or a 0)
    fake = tmp_path / "child.py"
    fake.write_text("print('no containment')")
    monkeypatch.setattr(sandbox, "CHILD", fake)
    with pytest.raises(LLMBenchError, match="could not set up its containment: no containment"):
        run_python("pass", LIMITS)
