"""This run's scores beside the study's, per task: writes beside_study.csv next to this file.

    .venv/bin/python docs/results/smollm2-135m/beside_study.py <runs>/correlate/bakeoff/scores.csv \
        [docs/results/smollm2-135m/scores-200-steps.csv]

For each task: SmolLM2-135M's base and fine-tuned scores and lift (this run), the study's ten
base models' mean base and fine-tuned scores and mean lift, its best fine-tuned score, phi-2 (its
smallest model, 2.7B) and GPT-4, from the Table 12 scores llmbench ships. Prints the Spearman rank
correlation between this run's lift and the study's mean lift over the tasks. With an earlier
run's scores.csv (the same layout), its fine-tuned scores are a column `fine_tuned_earlier`.
"""

import sys
from importlib import resources
from pathlib import Path

import pandas as pd

MODEL = "smollm2-135m"


def main(own_scores: str, earlier_scores: str | None = None) -> None:
    ours = pd.read_csv(own_scores, index_col="task")
    study = pd.read_csv(
        str(resources.files("llmbench").joinpath("data/table12_scores.csv")), index_col="task"
    )
    study = study[~study.index.duplicated()]
    ft = [c for c in study.columns if c.endswith("_ft")]
    base = [c.removesuffix("_ft") + "_base" for c in ft]
    tasks = [t for t in ours.index if t in study.index]
    s = study.loc[tasks]
    table = pd.DataFrame(
        {
            "base": ours.loc[tasks, f"{MODEL}_base"],
            "fine_tuned": ours.loc[tasks, f"{MODEL}_ft"],
            "lift": ours.loc[tasks, f"{MODEL}_ft"] - ours.loc[tasks, f"{MODEL}_base"],
            "study_base_mean": s[base].mean(axis=1),
            "study_ft_mean": s[ft].mean(axis=1),
            "study_lift_mean": s[ft].mean(axis=1) - s[base].mean(axis=1),
            "study_best_ft": s[ft].max(axis=1),
            "study_phi2_base": s["phi-2_base"],
            "study_phi2_ft": s["phi-2_ft"],
            "gpt4": s["gpt-4"],
        }
    )
    if earlier_scores:
        earlier = pd.read_csv(earlier_scores, index_col="task")
        table.insert(3, "fine_tuned_earlier", earlier[f"{MODEL}_ft"].reindex(tasks))
    table = table.round(3)
    out = Path(__file__).with_name("beside_study.csv")
    table.to_csv(out, index_label="task")
    rho = table["lift"].corr(table["study_lift_mean"], method="spearman")
    ft_rho = table["fine_tuned"].corr(table["study_ft_mean"], method="spearman")
    print(f"wrote {out} ({len(table)} tasks)")
    print(f"Spearman, lift (this run) vs the study's mean lift: {rho:.2f}")
    print(f"Spearman, fine-tuned score vs the study's mean fine-tuned score: {ft_rho:.2f}")
    print(f"tasks where the adapter beat GPT-4: {int((table.fine_tuned > table.gpt4).sum())}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
