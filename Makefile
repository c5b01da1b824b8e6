# The two commands of the README: `make demo` (set up, then run the main job on the embedded
# default) and `make test` (set up, then run the test suite).
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup setup-serve demo test lint
setup:
	@bash scripts/setup.sh

# The serving environment (.venv-serve: Python 3.11 with vLLM) that `llmbench serve` runs in.
setup-serve:
	@bash scripts/setup-serve.sh

demo: setup setup-serve
	.venv/bin/llmbench bakeoff

# Lint first: it takes a second and fails before minutes of tests.
test: setup setup-serve lint
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff format --check --quiet .
	.venv/bin/ruff check --quiet .
