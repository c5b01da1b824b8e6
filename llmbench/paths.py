"""Where the project's own files live, and atomic writes for everything llmbench produces.

The task cards (datasets/), the templates and base-model registry (templates/) and the study's
rendered configs (ludwig_configs/) live at the repository's top level. Run from a checkout (the
editable install `make setup` makes, or the checkout on PYTHONPATH), llmbench reads them there;
an installed wheel carries a copy of them in llmbench/_bundled/ (setup.py puts it there).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_DIR = PACKAGE_DIR / "_bundled"


def _checkout_root() -> Path | None:
    """The repository this package runs from, or None when it is installed.

    An installed package's parent is site-packages, which may hold look-alikes (Hugging Face's
    `datasets` package, for one); only a checkout has setup.py beside the model registry.
    """
    root = PACKAGE_DIR.parent
    if (root / "setup.py").is_file() and (root / "templates" / "models.yaml").is_file():
        return root
    return None


def _serve_venv() -> Path:
    """LLMBENCH_SERVE_VENV, else .venv-serve beside the checkout, else in the current folder."""
    chosen = os.environ.get("LLMBENCH_SERVE_VENV")
    if chosen:
        return Path(chosen).expanduser().absolute()
    return (CHECKOUT_ROOT or Path.cwd()) / ".venv-serve"


CHECKOUT_ROOT = _checkout_root()
# The folder holding datasets/, templates/ and ludwig_configs/: the checkout, or in an installed
# package the bundled copy, laid out the same.
REPO_ROOT = CHECKOUT_ROOT or BUNDLED_DIR
DATASETS_DIR = REPO_ROOT / "datasets"
TEMPLATES_DIR = REPO_ROOT / "templates"
CONFIGS_DIR = REPO_ROOT / "ludwig_configs"
SCHEMAS_DIR = PACKAGE_DIR / "schemas"
PACKAGE_DATA_DIR = PACKAGE_DIR / "data"
DEFAULT_WORK_DIR = Path("runs")
# The serving environment, Python 3.11 with vLLM, that `llmbench serve` runs the server in.
SERVE_VENV = _serve_venv()


def serving_import_root() -> Path:
    """A folder that, on the serving environment's PYTHONPATH, makes this llmbench importable
    there and nothing else of the main environment's.

    From a checkout that is the checkout. An installed llmbench sits in site-packages among the
    main environment's torch, transformers and the rest, which would shadow the serving
    environment's own (built for another Python); there it is a folder under the user's cache
    (XDG_CACHE_HOME, else ~/.cache) holding one link, `llmbench`, to this package.
    """
    if CHECKOUT_ROOT is not None:
        return CHECKOUT_ROOT
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha1(str(PACKAGE_DIR).encode()).hexdigest()[:12]
    root = cache / "llmbench" / "serving-import" / digest
    link = root / "llmbench"
    if not (link.is_symlink() and link.resolve() == PACKAGE_DIR):
        root.mkdir(parents=True, exist_ok=True)
        fresh = root / f".llmbench.{os.getpid()}"
        fresh.unlink(missing_ok=True)
        fresh.symlink_to(PACKAGE_DIR, target_is_directory=True)
        os.replace(fresh, link)  # two servers starting at once both end with the same link
    return root


def _umask() -> int:
    """The process's umask (reading it means setting it; it is put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees the old file or the new one, never half.

    The file gets the permissions an ordinary write would give it (0666 less the umask), not the
    0600 of the temporary file it starts as.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically (see atomic_write_bytes)."""
    atomic_write_bytes(path, text.encode("utf-8"))
