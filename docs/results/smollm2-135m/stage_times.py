"""stage_times.csv of a LoRA Land run: per task, the training seconds (the sweep's manifest) and
the wall seconds of each evaluation made in one sitting (its settings line's start to the file's
last write; blank when it took more than one), its sittings, and how many examples it answered.

Usage: python stage_times.py RUNS OUT.csv [MODEL]
"""

import csv
import datetime
import json
import os
import sys


def started(settings_line: dict) -> float:
    stamp = datetime.datetime.strptime(settings_line["settings"]["started"], "%Y-%m-%dT%H:%M:%SZ")
    return stamp.replace(tzinfo=datetime.UTC).timestamp()


def main(runs: str, out: str, model: str = "smollm2-135m") -> None:
    jobs = json.load(open(f"{runs}/train/manifest.json"))["jobs"]
    rows = []
    for key, job in jobs.items():
        job_model, task = key.split("/")
        if job_model != model:
            continue
        row = {"task": task, "train_s": round(job["seconds"]) if job["seconds"] else ""}
        for kind, folder in (("base", "base"), ("adapter", f"{model}__{task}")):
            path = f"{runs}/eval/{model}/{task}/{folder}/responses.jsonl"
            lines = [json.loads(line) for line in open(path)] if os.path.exists(path) else []
            sittings = [line for line in lines if "settings" in line]
            answered = {line["id"] for line in lines if "id" in line and not line.get("error")}
            one = len(sittings) == 1
            row[f"{kind}_eval_s"] = (
                round(os.path.getmtime(path) - started(sittings[0])) if one else ""
            )
            row[f"{kind}_sittings"] = len(sittings)
            row[f"{kind}_answered"] = len(answered)
        rows.append(row)
    with open(out, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main(*sys.argv[1:])
