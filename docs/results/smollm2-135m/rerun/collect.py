"""Copy what the rerun has finished so far from its work directory into this folder, task by task,
so that each piece's results can be committed as they come (issue 27, item 5).

Per adapter (train/<task>[-seed<k>]/): the budget record, the sweep's manifest entry, the train
log, the learning curve (CSV and plot), Ludwig's training statistics and the adapter's own config;
not the weights (about 2 MB each; their sha256 is in each evaluation's settings line). Per
evaluation (eval/<task>/<run>/): its scores, the sampled rows' ids and answers. Then the report
over everything this folder holds (report/: table12.md and .csv, cells.csv, figure5.png), built by
`llmbench report`'s own code from the records here, not from RUNS: a work directory lasts one
sitting, so each piece's RUNS holds only its own tasks, and the report gathers every piece so far.

Usage, from the repository root: python docs/results/smollm2-135m/rerun/collect.py RUNS
"""

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
MODEL = "smollm2-135m"
TRAIN_FILES = ("run_budget.json", "train.log")
RUN_FILES = ("learning_curve.csv", "learning_curve.png", "training_statistics.json")
EVAL_FILES = ("scores.json", "examples.csv", "responses.jsonl")


def copy(source: Path, target: Path) -> bool:
    if not source.is_file():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    return True


def report_all() -> None:
    """The report over every piece collected here: a scratch work directory in the layout
    `llmbench report` reads (eval/<model>/ is this folder's eval/, each adapter's plot where a
    training run keeps it), reported into report/, its links and title as they read from here."""
    from llmbench.report.document import report

    with tempfile.TemporaryDirectory() as scratch:
        runs = Path(scratch)
        (runs / "eval").mkdir()
        (runs / "eval" / MODEL).symlink_to((HERE / "eval").resolve())
        for plot in sorted((HERE / "train").glob("*/learning_curve.png")):
            run = runs / "train" / MODEL / plot.parent.name / "run_run"
            run.mkdir(parents=True)
            (run / plot.name).symlink_to(plot.resolve())
        report(runs, HERE / "report")
        table = HERE / "report" / "table12.md"
        text = table.read_text(encoding="utf-8").replace(f"({runs})", "(the rerun, so far)")
        text = re.sub(
            r"(\.\./)+[^)]*?/train/" + MODEL + r"/([^/]+)/run_run/", r"../train/\2/", text
        )
        table.write_text(text, encoding="utf-8")


def main(runs: Path) -> None:
    jobs = json.loads((runs / "train" / "manifest.json").read_text())["jobs"]
    done = []
    for key, job in jobs.items():
        if not key.startswith(MODEL + "/") or job["state"] != "done":
            continue
        name = key.split("/", 1)[1]  # <task> or <task>-seed<k>
        output, target = Path(job["output"]), HERE / "train" / name
        if not output.is_absolute():  # recorded as given: relative to where the bake-off ran
            sys.exit(
                f"{key}: output {output} is relative; run the bake-off with an absolute --runs"
            )
        for file in TRAIN_FILES:
            copy(output / file, target / file)
        for file in RUN_FILES:
            copy(output / "run_run" / file, target / file)
        weights = output / "run_run/model/model_weights"
        copy(weights / "adapter_config.json", target / "adapter_config.json")
        (target / "manifest_entry.json").write_text(json.dumps(job, indent=2) + "\n")
        done.append(name)
    scored = []
    evals = runs / "eval" / MODEL
    for scores in sorted(evals.glob("*/*/scores.json")) + sorted(evals.glob("*/*/*/scores.json")):
        run = scores.parent  # <task>/<base or adapter>[/constrained]
        where = run.relative_to(evals)
        for file in EVAL_FILES:
            copy(run / file, HERE / "eval" / where / file)
        scored.append(str(where))
    report_all()
    print(f"adapters: {len(done)} ({', '.join(sorted(done))})")
    print(f"evaluations: {len(scored)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
