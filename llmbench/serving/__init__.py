"""`llmbench serve`: a LoRAX-compatible REST server backed by vLLM's engine.

`launch` (the main environment) starts `server` in the serving environment (.venv-serve,
Python 3.11, vLLM); `server`, `protocol` and `adapters` run there and import nothing from
llmbench beyond this subpackage, so they stay plain Python 3.11 without the main dependencies.
"""
