"""The sandbox: misbehaving generated code is contained, scored 0, and leaves the run unharmed."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from llmbench import sandbox
from llmbench.errors import LLMBenchError
from llmbench.metrics import humaneval_target
from llmbench.sandbox import SandboxLimits, best_isolation, run_python

# Tight limits keep each test to a few seconds.
LIMITS = SandboxLimits(wall_s=3, cpu_s=2, memory_bytes=512 << 20, file_bytes=1 << 20, processes=32)
ISOLATIONS = ["namespaces", "rlimits"] if best_isolation() == "namespaces" else ["rlimits"]
needs_namespaces = pytest.mark.skipif(
    best_isolation() != "namespaces",
    reason="namespace isolation needs root and util-linux unshare",
)

ADD = humaneval_target(
    prompt='def add(a: int, b: int) -> int:\n    """Return a + b."""\n',
    test="\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n",
    entry_point="add",
)


def sandbox_processes() -> list[str]:
    """Command lines of sandbox processes still alive (their config names the work directory)."""
    alive = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if entry.name.isdigit() and b"llmbench-sandbox-" in command:
            alive.append(command.decode(errors="replace"))
    return alive


def assert_run_unharmed() -> None:
    assert sandbox_processes() == []
    assert subprocess.run(["true"]).returncode == 0  # this process can still start processes


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_correct_program_passes(isolation):
    result = run_python("assert sum([1, 2]) == 3\nprint('ok')", LIMITS, isolation)
    assert result.passed and result.returncode == 0 and result.output == "ok\n"


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_failing_program_fails_with_its_traceback(isolation):
    result = run_python("assert 1 == 2, 'wrong'", LIMITS, isolation)
    assert not result.passed and "AssertionError: wrong" in result.output


def test_a_correct_solution_scores_1_and_a_wrong_one_0():
    from llmbench.metrics import humaneval_pass_at_1

    assert humaneval_pass_at_1("    return a + b\n", ADD) == 1.0
    assert humaneval_pass_at_1("    return a - b\n", ADD) == 0.0


def test_a_program_that_exits_early_does_not_pass():
    result = run_python("import sys\nsys.exit(0)\nassert False", LIMITS)
    assert not result.passed


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_an_infinite_loop_is_stopped(isolation):
    result = run_python("while True:\n    pass", LIMITS, isolation)
    assert not result.passed
    assert_run_unharmed()


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_sleeping_program_is_stopped_at_the_wall_clock_limit(isolation):
    result = run_python("import time\ntime.sleep(60)", LIMITS, isolation)
    assert result.timed_out and not result.passed
    assert_run_unharmed()


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_fork_bomb_is_contained(isolation):
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = run_python(bomb, LIMITS, isolation)
    assert not result.passed
    assert_run_unharmed()


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_processes_that_leave_the_session_are_killed_too(isolation):
    escape = (
        "import os, time\nfor _ in range(5):\n    if os.fork() == 0:\n        os.setsid()\n"
        "        time.sleep(60)\nprint('parent done')\n"
    )
    result = run_python(escape, LIMITS, isolation)
    assert result.passed  # the program itself finished; its escaped children must not live on
    assert_run_unharmed()


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_huge_allocation_fails_inside_the_sandbox(isolation):
    hog = "blocks = []\nwhile True:\n    blocks.append(bytearray(64 << 20))\n"
    result = run_python(hog, LIMITS, isolation)
    assert not result.passed and "MemoryError" in result.output
    assert_run_unharmed()


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_huge_file_is_cut_off(isolation):
    result = run_python("open('big', 'wb').write(b'x' * (8 << 20))", LIMITS, isolation)
    assert not result.passed and "File too large" in result.output


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_the_program_runs_in_a_fresh_writable_temporary_directory(isolation):
    program = (
        "import os\nassert os.listdir('.') == ['program.py'], os.listdir('.')\n"
        "open('notes.txt', 'w').write('kept')\nassert open('notes.txt').read() == 'kept'\n"
        "print(os.getcwd())\n"
    )
    result = run_python(program, LIMITS, isolation)
    assert result.passed, result.output
    assert "llmbench-sandbox-" in result.output
    assert not Path(result.output.strip()).exists()  # removed after the run


@needs_namespaces
@pytest.mark.parametrize("place", ["beside_the_tests", "/dev/shm", "/var/tmp"])
def test_writing_outside_the_temporary_directory_is_refused(tmp_path, place):
    folder = tmp_path if place == "beside_the_tests" else Path(place)
    target = folder / f"llmbench-sandbox-escape-{os.getpid()}"
    result = run_python(f"open({str(target)!r}, 'w').write('escaped')", LIMITS, "namespaces")
    assert not result.passed and "Read-only file system" in result.output
    assert not target.exists()


@needs_namespaces
def test_the_program_cannot_undo_the_read_only_mounts():
    remount = (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "assert libc.mount(b'', b'/', None, 32 | 4096, None) == 0, "
        "os.strerror(ctypes.get_errno())\n"
    )
    result = run_python(remount, LIMITS, "namespaces")
    assert not result.passed and "Operation not permitted" in result.output


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_opening_a_network_connection_fails(isolation):
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.2)
        port = server.getsockname()[1]
        program = (
            f"import socket\nconnection = socket.create_connection(('127.0.0.1', {port}), "
            "timeout=1)\nconnection.sendall(b'leak')\n"
        )
        result = run_python(program, LIMITS, isolation)
        with pytest.raises(TimeoutError):
            server.accept()
    assert not result.passed


def test_humaneval_scores_a_misbehaving_solution_0():
    from llmbench.metrics import humaneval_pass_at_1

    assert humaneval_pass_at_1("    import os\n    while True:\n        os.fork()\n", ADD) == 0.0
    assert_run_unharmed()


def test_a_sandbox_that_could_not_set_up_raises_instead_of_scoring(monkeypatch):
    # a child that exits 0 without confirming its containment must not read as a pass (or a 0)
    monkeypatch.setattr(sandbox, "_BOOTSTRAP", "print('no containment')")
    with pytest.raises(LLMBenchError, match="could not set up its containment: no containment"):
        run_python("pass", LIMITS)
