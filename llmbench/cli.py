"""The `llmbench` command: a thin dispatcher over the stages' own `command.py` modules.

Each stage keeps its parser and handlers in `llmbench/<stage>/command.py`, beside the recipe they
call; only the module of the command being run is imported, so `llmbench --help` is instant.
An LLMBenchError is printed on one line per problem, without a traceback, and exits 2.
"""

from __future__ import annotations

import importlib
import sys

from llmbench.arguments import OneLineParser
from llmbench.errors import LLMBenchError

EXIT_USAGE = 2

# command: (the stage whose command.py configures and runs it, one line of help), in the order
# of the pipeline.
COMMANDS = {
    "tasks": ("prepare", "list, show, validate task cards, and their token lengths"),
    "models": ("train", "the base-model registry"),
    "prepare": ("prepare", "turn a task's upstream data into a prepared table"),
    "build-model": ("train", "build a local model of the registry offline (tiny, smollm2-135m)"),
    "render-configs": ("train", "render one Ludwig config per (model, task)"),
    "train": ("train", "fine-tune one config, or sweep models x tasks (resumable; locally or Ray)"),
    "serve": ("serving", "serve a base model and its LoRA adapters with LoRAX's REST API (vLLM)"),
    "eval": ("evaluate", "score an adapter or a base model on a task's eval split"),
    "eval-grid": ("evaluate", "evaluate base and adapter for many (model, task) pairs, resumable"),
    "loadtest": ("loadtest", "latency and throughput across concurrent users and adapter counts"),
    "complexity": ("analysis", "dataset-complexity heuristics of prepared tasks, as CSV"),
    "correlate": ("analysis", "correlate task quality with complexity heuristics (Figure 8)"),
    "predict": ("analysis", "should I fine-tune? predicted score and lift for a task or your data"),
    "report": (
        "report",
        "the study's Table 12 and Figure 5 from your evaluation runs (or --paper)",
    ),
    "app": ("app", "the LoRA Land web page: each adapter beside its base model, answers streamed"),
    "bakeoff": ("bakeoff", "the study end to end: prepare, train, serve, evaluate, report"),
}


def build_parser(command: str | None = None) -> OneLineParser:
    """The parser, with `command`'s options filled in (None: every command's, for docs and tests;
    a name not in COMMANDS, e.g. "" for `llmbench --help`: none)."""
    parser = OneLineParser(
        prog="llmbench",
        description="Fine-tune small open models with 4-bit LoRA, serve many adapters, "
        "and measure them against their base models and GPT-4.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (stage, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if command is None or command == name:
            importlib.import_module(f"llmbench.{stage}.command").configure(name, p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), "")
    args = build_parser(command if command in COMMANDS else "").parse_args(argv)
    try:
        args.handler(args)
    except LLMBenchError as exc:
        from llmbench.console import errors

        for problem in exc.problems:
            errors.print(f"error: {problem}", markup=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
