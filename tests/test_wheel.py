"""The wheel is enough: built from this checkout and installed where the checkout cannot be seen,
llmbench lists its tasks, renders configs, prepares a fixture and runs a tiny bake-off.

The environment under test is a venv of the interpreter running the tests, its site-packages
holding only the installed wheel, plus a `.pth` file that names this environment's
site-packages: the dependencies (torch, Ludwig, ...) are importable without reinstalling them,
while the checkout is not. A plain path in a `.pth` file adds that folder to sys.path without
running the `.pth` files inside it, so the editable install's finder, which maps `llmbench` to
this checkout, is never installed there. (A `--system-site-packages` venv would see the base
interpreter's packages, not this environment's; `pip install --target` plus PYTHONPATH would
leave the editable finder active behind it.) Each test checks it ran the installed copy.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from llmbench.paths import SERVE_VENV

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BUNDLED = ("datasets", "templates", "ludwig_configs")


def _project_files(*folders: str) -> list[str]:
    """The files git would commit (tracked, or new and not ignored) that still exist."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout: the wheel is built from the files git would commit")
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", *folders],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted({name for name in listing.split("\0") if name and (REPO / name).is_file()})


def _copy_project(dest: Path) -> Path:
    """A copy of the project's files, so that building writes nothing into the checkout."""
    for name in _project_files():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, dest / name)
    return dest


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True,
        capture_output=True,
        timeout=300,
    )


def _fresh_env(path: Path) -> Path:
    """A venv that sees this environment's installed packages through a `.pth` file."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "main-environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel `pip wheel` builds from a copy of this checkout, offline."""
    source = _copy_project(tmp_path_factory.mktemp("source"))
    dist = tmp_path_factory.mktemp("dist")
    _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist), str(source))
    (built,) = dist.glob("llmbench-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> dict:
    """The wheel installed into a fresh environment; how to run llmbench there."""
    root = tmp_path_factory.mktemp("installed")
    python = _fresh_env(root / "env")
    _pip("--python", str(python), "install", "--no-deps", "--no-index", str(wheel))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "LLMBENCH_SERVE_VENV": str(SERVE_VENV),
        # where an installed llmbench links itself for the serving environment
        "XDG_CACHE_HOME": str(root / "cache"),
    }
    installed = {"python": python, "llmbench": root / "env" / "bin" / "llmbench", "env": env}
    package = _run(installed, root, "-c", "import llmbench; print(llmbench.__path__[0])")
    return installed | {"package": Path(package.strip())}


def _run(installed: dict, cwd: Path, *args, timeout: float = 300) -> str:
    """Run the installed `llmbench` (or the installed python, for args starting with -c) in
    `cwd`; its output, or a failure showing it."""
    program = installed["python"] if args[0] == "-c" else installed["llmbench"]
    done = subprocess.run(
        [str(program), *map(str, args)],
        cwd=cwd,
        env=installed["env"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_wheel_carries_every_card_fixture_template_and_config(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    bundled = sorted(n.removeprefix("llmbench/_bundled/") for n in names if "/_bundled/" in n)
    assert bundled == _project_files(*BUNDLED)
    assert "templates/models.yaml" in bundled and "templates/ludwig_config.yaml.j2" in bundled
    assert sum(n.startswith("ludwig_configs/") for n in bundled) == 310
    tasks = {n.split("/")[1] for n in bundled if n.endswith("/metadata.yaml")}
    assert len(tasks) == 31
    assert all(f"datasets/{task}/prepare.py" in bundled for task in tasks)
    assert any(n.startswith("datasets/glue_sst2/fixture/") for n in bundled)
    assert any(n.startswith("datasets/glue_sst2/demo/") for n in bundled)
    assert not any("__pycache__" in n for n in names)


def test_the_installed_package_reads_its_bundled_folders_not_the_checkout(installed, tmp_path):
    package = installed["package"]
    assert package.is_relative_to(installed["python"].parents[1])
    shown = _run(
        installed, tmp_path, "-c", "import llmbench.paths as p; print(p.CHECKOUT_ROOT, p.REPO_ROOT)"
    )
    assert shown.split() == ["None", str(package / "_bundled")]


def test_tasks_list_names_every_task(installed, tmp_path):
    out = _run(installed, tmp_path, "tasks", "list")
    tasks = sorted(p.parent.name for p in (REPO / "datasets").glob("*/metadata.yaml"))
    assert f"{len(tasks)} tasks" in out and all(task in out for task in tasks)


def test_render_configs_writes_the_study_configs_where_asked(installed, tmp_path):
    models, tasks = ["mistral-7b", "phi-2"], ["glue_sst2", "gsm8k"]
    _run(
        installed,
        tmp_path,
        "render-configs",
        "--models",
        *models,
        "--tasks",
        *tasks,
        "--out",
        "configs",
    )
    written = sorted(p.relative_to(tmp_path / "configs") for p in tmp_path.rglob("*.yaml"))
    assert written == [Path(m, f"{t}.yaml") for m in models for t in tasks]
    for path in written:
        # Only the header's train command differs: it names the config where it was written.
        fresh = (tmp_path / "configs" / path).read_text()
        committed = (REPO / "ludwig_configs" / path).read_text()
        assert fresh == committed.replace("--config ludwig_configs/", "--config configs/")


def test_render_configs_without_out_writes_into_the_current_folder(installed, tmp_path):
    _run(installed, tmp_path, "render-configs", "--models", "phi-2", "--tasks", "gsm8k")
    assert (tmp_path / "ludwig_configs" / "phi-2" / "gsm8k.yaml").is_file()


def test_prepare_reads_a_shipped_fixture(installed, tmp_path):
    _run(installed, tmp_path, "prepare", "--task", "glue_sst2", "--fixture", "--runs", "runs")
    assert (tmp_path / "runs" / "prepared" / "glue_sst2.parquet").stat().st_size > 0


def test_a_tiny_bakeoff_runs_with_the_serving_environment_it_is_given(installed, tmp_path):
    from serving_fixtures import require_serving_environment

    require_serving_environment()
    config = tmp_path / "tiny.yaml"
    config.write_text("models: [tiny]\ntasks: [glue_sst2]\nsource: fixture\neval_limit: 4\n")
    out = _run(
        installed, tmp_path, "bakeoff", "--config", config.name, "--runs", "runs", timeout=900
    )
    assert "glue_sst2" in out
    assert "glue_sst2" in (tmp_path / "runs" / "report" / "table12.md").read_text()
    # The server imported llmbench through a folder that holds that one link, nothing else of
    # the main environment (whose torch would shadow the serving environment's).
    (import_root,) = (Path(installed["env"]["XDG_CACHE_HOME"]) / "llmbench").glob("*/*")
    assert [p.name for p in import_root.iterdir()] == ["llmbench"]
    assert (import_root / "llmbench").resolve() == installed["package"]


def test_an_editable_install_reads_the_checkout_folders(tmp_path):
    source = _copy_project(tmp_path / "checkout")
    python = _fresh_env(tmp_path / "env")
    _pip(
        "--python",
        str(python),
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-e",
        str(source),
    )
    shown = subprocess.run(
        [python, "-c", "import llmbench.paths as p; print(p.CHECKOUT_ROOT, p.DATASETS_DIR)"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert shown == [str(source), str(source / "datasets")]
    assert not (source / "llmbench" / "_bundled").exists()
