"""The one build step setup.cfg cannot declare: the wheel carries the repository's own folders.

The task cards and fixtures (datasets/), the templates and base-model registry (templates/) and
the study's rendered configs (ludwig_configs/) stay at the repository's top level. A built
package gets a copy of them under llmbench/_bundled/, where llmbench.paths looks for them when
llmbench does not run from a checkout. An editable install copies nothing: it reads the
checkout's own folders. Everything else about the package is declared in setup.cfg.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# Copied whole (less caches) into the package; llmbench/paths.py names the same folders.
BUNDLED_FOLDERS = ("datasets", "templates", "ludwig_configs")
BUNDLE = Path("llmbench", "_bundled")
# Files copied beside the package, to the top level of site-packages (a startup `.pth` hook, say),
# as paths from the repository root.
TOP_LEVEL_FILES: tuple[str, ...] = ("llmbench_ludwig_fix.pth",)
SKIPPED_PARTS = ("__pycache__",)
SKIPPED_SUFFIXES = (".pyc", ".pyo")


def _bundled_files() -> list[tuple[Path, Path]]:
    """(file in the repository, its path in the built package) for every file the wheel adds."""
    files = []
    for folder in BUNDLED_FOLDERS:
        for source in sorted((ROOT / folder).rglob("*")):
            skipped = set(SKIPPED_PARTS) & set(source.parts) or source.suffix in SKIPPED_SUFFIXES
            if source.is_file() and not skipped:
                files.append((source, BUNDLE / source.relative_to(ROOT)))
    files += [(ROOT / name, Path(name)) for name in TOP_LEVEL_FILES]
    return files


class BuildWithBundle(build_py):
    """build_py, plus the repository's folders copied into the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        build_lib = Path(self.build_lib)
        # A folder left from an earlier build may hold files deleted since.
        shutil.rmtree(build_lib / BUNDLE, ignore_errors=True)
        for source, target in _bundled_files():
            self.mkpath(str((build_lib / target).parent))
            self.copy_file(str(source), str(build_lib / target))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        return outputs + [str(Path(self.build_lib) / target) for _, target in _bundled_files()]


setup(cmdclass={"build_py": BuildWithBundle})
