# The two commands of the README: `make demo` (set up, then run the main job on the embedded
# default) and `make test` (set up, then run the test suite).
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test lint
setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/llmbench bakeoff

test: setup
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check llmbench tests datasets bench
