"""Do the heuristics predict fine-tuning outcomes? And, for a new dataset: should I fine-tune?

Evaluation (`llmbench correlate` writes it): for each target — the average fine-tuned score and
the average base-model lift over a task's base models — small models on the heuristics are
scored by leave-one-task-out cross-validation: the mean of the other tasks (the baseline), and
ordinary least squares and ridge (alpha 1) on every single heuristic and every pair. Features are
standardized over all tasks (this uses no targets) and n_examples enters as its log10. Leave-one-
out predictions come in closed form from each model's hat matrix, which is exact for a fixed
linear smoother. The best of many models looks better than it is, so the same search is rerun on
shuffled targets: the share of shuffles whose best R² reaches the real best R² is the p-value
that says whether there is any signal at all.

Prediction (`llmbench predict`): a dataset's heuristics → the selected model (the best one when
it beats the shuffles, else the mean) fitted on the known tasks → a value with a 90% range from
that model's cross-validation errors, and the known tasks nearest in standardized heuristic space.
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llmbench.errors import LLMBenchError
from llmbench.paths import atomic_write_text

TARGETS = {"avg_ft_score": "average fine-tuned score", "avg_base_lift": "average base-model lift"}
RIDGE_ALPHA = 1.0
MAX_FEATURES = 2
SHUFFLES = 200
SIGNAL_P = 0.05
RANGE = (5, 95)  # percentiles of the cross-validation errors
NEIGHBOURS = 3
SEED = 0


@dataclass(frozen=True)
class Predictor:
    """One candidate: `kind` mean, linear or ridge on `features`, with its LOO record."""

    target: str
    kind: str
    features: tuple[str, ...]
    r2: float
    mae: float
    residuals: tuple[float, ...] = field(repr=False)

    @property
    def name(self) -> str:
        return (
            "mean of the other tasks"
            if self.kind == "mean"
            else (f"{self.kind}({', '.join(self.features)})")
        )


@dataclass
class TargetEvaluation:
    """Every candidate for one target, the best, and whether it beats shuffled targets."""

    target: str
    tasks: int
    candidates: list[Predictor]
    best: Predictor
    baseline: Predictor
    shuffled_p: float
    singles: list[tuple[str, float, float]]  # heuristic, LOO R² alone, its shuffle p

    @property
    def has_signal(self) -> bool:
        return self.best.r2 > 0 and self.shuffled_p < SIGNAL_P

    @property
    def chosen(self) -> Predictor:
        """What `predict` uses: the best model when it beats the shuffles, else the mean."""
        return self.best if self.has_signal else self.baseline

    def carriers(self) -> str:
        """The heuristics that predict the target alone better than shuffles do (p < 0.05)."""
        found = [
            f"{name} (R² {r2:.2f}, p {p:.3f})"
            for name, r2, p in self.singles
            if r2 > 0 and p < SIGNAL_P
        ]
        chance = len(self.singles) * SIGNAL_P
        if not found:
            return f"{TARGETS[self.target]}: no heuristic alone beats shuffled scores."
        return (
            f"{TARGETS[self.target]}: alone, {', '.join(found)} beat shuffled scores "
            f"(of {len(self.singles)} heuristics about {chance:.1f} would by chance)."
        )

    def verdict(self) -> str:
        label, best = TARGETS[self.target], self.best
        if best.r2 <= 0:
            return (
                f"{label}: no model on up to {MAX_FEATURES} heuristics predicts it better "
                f"than the mean of the other tasks (best LOO R² {best.r2:.2f}); "
                f"{self.tasks} tasks give no signal here."
            )
        if not self.has_signal:
            return (
                f"{label}: no reliable signal: the best, {best.name}, has LOO R² "
                f"{best.r2:.2f}, but on shuffled scores the best of {len(self.candidates)} "
                f"models does as well in {self.shuffled_p:.0%} of {SHUFFLES} shuffles; "
                f"{self.tasks} tasks are too few to tell."
            )
        return (
            f"{label}: signal: {best.name} has LOO R² {best.r2:.2f}, MAE {best.mae:.3f}; "
            f"shuffled scores do as well in {self.shuffled_p:.1%} of {SHUFFLES} shuffles."
        )


# --- features and leave-one-out -----------------------------------------------------------------


def feature_frame(heuristics):
    """The heuristics as model features: n_examples as log10, constant columns dropped."""
    from llmbench.analysis.complexity import HEURISTICS

    frame = heuristics[list(HEURISTICS)].astype(float).copy()
    frame["n_examples"] = np.log10(frame["n_examples"].clip(lower=1))
    frame = frame.rename(columns={"n_examples": "log10_n_examples"})
    return frame.loc[:, frame.std(ddof=0) > 0]


def standardize(features, reference):
    """`features` in units of `reference`'s columns (mean 0, sd 1 over the reference rows)."""
    return (features - reference.mean()) / reference.std(ddof=0)


def smoother(z: np.ndarray, alpha: float) -> np.ndarray:
    """The hat matrix of least squares (ridge with `alpha` > 0) on standardized `z` with an
    unpenalized intercept: fitted values are this matrix times the targets."""
    n = len(z)
    if z.shape[1] == 0:
        return np.full((n, n), 1.0 / n)
    centred = z - z.mean(axis=0)
    gram = centred.T @ centred + alpha * np.eye(z.shape[1])
    return np.full((n, n), 1.0 / n) + centred @ np.linalg.pinv(gram) @ centred.T


def loo_predictions(hat: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Leave-one-out predictions of a linear smoother for each column of `targets`."""
    leverage = np.diag(hat)[:, None]
    residuals = targets - hat @ targets
    with np.errstate(divide="ignore", invalid="ignore"):
        return targets - residuals / (1.0 - leverage)


def loo_r2(targets: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Out-of-sample R² per column: 1 - squared LOO errors over the spread about the mean."""
    spread = ((targets - targets.mean(axis=0)) ** 2).sum(axis=0)
    return 1.0 - ((targets - predictions) ** 2).sum(axis=0) / spread


def candidate_specs(features: list[str]) -> list[tuple[str, tuple[str, ...], float]]:
    """(kind, features, alpha) of every candidate: the mean, then linear and ridge on each
    subset of up to MAX_FEATURES features."""
    specs = [("mean", (), 0.0)]
    for size in range(1, MAX_FEATURES + 1):
        for subset in itertools.combinations(features, size):
            specs += [("linear", subset, 0.0), ("ridge", subset, RIDGE_ALPHA)]
    return specs


# --- evaluation ---------------------------------------------------------------------------------


def evaluate_predictors(joined, shuffles: int = SHUFFLES, seed: int = SEED):
    """One TargetEvaluation per target of TARGETS, from quality and heuristics per task."""
    features = feature_frame(joined)
    z = standardize(features, features).to_numpy()
    columns = list(features.columns)
    specs = candidate_specs(columns)
    hats = [smoother(z[:, [columns.index(f) for f in subset]], alpha) for _, subset, alpha in specs]
    rng = np.random.default_rng(seed)
    evaluations = []
    for target in TARGETS:
        y = joined[target].to_numpy(dtype=float)
        if np.ptp(y) == 0:
            raise LLMBenchError(f"{target}: the same for every task; nothing to predict")
        shuffled = np.column_stack([y] + [rng.permutation(y) for _ in range(shuffles)])
        # rows: candidates; column 0 the real target, then the shuffles
        r2 = np.array([loo_r2(shuffled, loo_predictions(hat, shuffled)) for hat in hats])
        candidates = [
            _candidate(target, spec, hat, y, fit)
            for spec, hat, fit in zip(specs, hats, r2[:, 0], strict=True)
        ]
        best = int(np.nanargmax(r2[:, 0]))
        singles = [
            (spec[1][0], float(r2[i, 0]), _shuffled_p(r2[i, 0], r2[i, 1:]))
            for i, spec in enumerate(specs)
            if spec[0] == "linear" and len(spec[1]) == 1
        ]
        evaluations.append(
            TargetEvaluation(
                target,
                len(y),
                sorted(candidates, key=lambda c: -_sortable(c.r2)),
                candidates[best],
                candidates[0],
                _shuffled_p(r2[best, 0], np.nanmax(r2[:, 1:], axis=0)),
                sorted(singles, key=lambda s: -_sortable(s[1])),
            )
        )
    return evaluations


def _candidate(target: str, spec, hat: np.ndarray, y: np.ndarray, r2: float) -> Predictor:
    kind, subset, _ = spec
    errors = y - loo_predictions(hat, y[:, None])[:, 0]
    return Predictor(
        target,
        kind,
        subset,
        round(float(r2), 6),
        round(float(np.abs(errors).mean()), 6),
        tuple(errors.round(6)),
    )


def _shuffled_p(real: float, shuffled: np.ndarray) -> float:
    """Share of shuffles doing at least as well as the real target (counting the real one)."""
    return (1 + int((shuffled >= real).sum())) / (1 + len(shuffled))


def _sortable(value: float) -> float:
    return -1e9 if np.isnan(value) else value


def write_evaluation(evaluations: list[TargetEvaluation], path: Path) -> None:
    """Every candidate of every target: its LOO R² and MAE, best first; the best one's
    selection-corrected shuffle p, and each lone heuristic's own shuffle p."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "target",
            "model",
            "kind",
            "features",
            "loo_r2",
            "loo_mae",
            "best",
            "shuffled_p_of_best",
            "shuffled_p_alone",
        ]
    )
    for evaluation in evaluations:
        alone = {name: p for name, _, p in evaluation.singles}
        for candidate in evaluation.candidates:
            best = candidate is evaluation.best
            single = candidate.kind == "linear" and len(candidate.features) == 1
            writer.writerow(
                [
                    evaluation.target,
                    candidate.name,
                    candidate.kind,
                    "+".join(candidate.features),
                    candidate.r2,
                    candidate.mae,
                    "yes" if best else "",
                    round(evaluation.shuffled_p, 4) if best else "",
                    round(alone[candidate.features[0]], 4) if single else "",
                ]
            )
    atomic_write_text(path, buffer.getvalue())


# --- should I fine-tune? ------------------------------------------------------------------------


@dataclass
class Prediction:
    target: str
    model: str
    value: float
    low: float
    high: float


@dataclass
class PredictResult:
    name: str
    heuristics: dict
    known_tasks: list[str]
    predictions: list[Prediction]
    neighbours: list[tuple[str, float, float, float]]  # task, distance, avg ft, avg lift
    evaluations: list[TargetEvaluation]


def predict_outcomes(heuristics: dict, known) -> PredictResult:
    """Fine-tuned score and lift for a dataset with `heuristics`, from the `known` tasks
    (quality measures and heuristics per task, as `correlate` joins them); a known task of the
    same name is left out of the fit."""
    import pandas as pd

    name = heuristics["task"]
    known = known.drop(index=name, errors="ignore")
    new = pd.DataFrame([heuristics]).set_index("task")
    evaluations = evaluate_predictors(known)
    predictions = [_predict_one(e.chosen, known, new) for e in evaluations]
    return PredictResult(
        name, heuristics, list(known.index), predictions, nearest_tasks(known, new), evaluations
    )


def _predict_one(predictor: Predictor, known, new) -> Prediction:
    features = feature_frame(known)
    y = known[predictor.target].to_numpy(dtype=float)
    columns = list(predictor.features)
    if columns:
        reference = features[columns]
        z = standardize(reference, reference).to_numpy()
        z_new = standardize(_features_like(new, features)[columns], reference).to_numpy()
        alpha = RIDGE_ALPHA if predictor.kind == "ridge" else 0.0
        design = np.column_stack([np.ones(len(z)), z])
        penalty = alpha * np.diag([0.0] + [1.0] * len(columns))
        weights = np.linalg.pinv(design.T @ design + penalty) @ design.T @ y
        value = float(np.concatenate([[1.0], z_new[0]]) @ weights)
    else:
        value = float(y.mean())
    low, high = np.percentile(predictor.residuals, RANGE)
    lower_bound = 0.0 if predictor.target.endswith("score") else -1.0
    return Prediction(
        predictor.target,
        predictor.name,
        round(value, 4),
        round(max(lower_bound, value + low), 4),
        round(min(1.0, value + high), 4),
    )


def _features_like(new, features):
    """The new dataset's features, with the known tasks' columns."""
    import pandas as pd

    from llmbench.analysis.complexity import HEURISTICS

    row = pd.concat([new[list(HEURISTICS)].astype(float), features.iloc[:0]], axis=0)
    row["log10_n_examples"] = np.log10(max(float(new["n_examples"].iloc[0]), 1.0))
    return row[features.columns]


def nearest_tasks(known, new, count: int = NEIGHBOURS) -> list[tuple[str, float, float, float]]:
    """The known tasks closest to `new` in standardized heuristic space (Euclidean)."""
    features = feature_frame(known)
    z = standardize(features, features).to_numpy()
    z_new = standardize(_features_like(new, features), features).to_numpy()[0]
    distances = np.sqrt(((z - z_new) ** 2).sum(axis=1))
    order = np.argsort(distances, kind="stable")[:count]
    return [
        (
            known.index[i],
            round(float(distances[i]), 3),
            float(known["avg_ft_score"].iloc[i]),
            float(known["avg_base_lift"].iloc[i]),
        )
        for i in order
    ]


# --- a user's own dataset -----------------------------------------------------------------------


def read_user_dataset(path: Path, input_columns: list[str], target_col: str):
    """A CSV, JSONL or Parquet file's input columns and target as text; every problem at once."""
    import pandas as pd

    from llmbench.errors import did_you_mean

    path = Path(path)
    if not path.is_file():
        raise LLMBenchError(f"{path}: not found; expected a CSV, JSONL or Parquet file")
    suffix = path.suffix.lower()
    readers = {
        ".csv": lambda: pd.read_csv(path, dtype=str, keep_default_na=False),
        ".jsonl": lambda: pd.read_json(path, lines=True, dtype=False),
        ".parquet": lambda: pd.read_parquet(path),
    }
    if suffix not in readers:
        raise LLMBenchError(f"{path}: '{suffix}' files unknown; expected .csv, .jsonl or .parquet")
    try:
        frame = readers[suffix]()
    except (ValueError, OSError) as exc:
        raise LLMBenchError(f"{path}: cannot be read as {suffix[1:]} ({exc})") from None
    wanted = [*input_columns, target_col]
    problems = [
        f"{path}: column '{c}' missing{did_you_mean(c, frame.columns)}; expected one of "
        f"{', '.join(map(str, frame.columns))}"
        for c in wanted
        if c not in frame.columns
    ]
    if problems:
        raise LLMBenchError(*problems)
    for column in wanted:
        empty = frame[column].isna()
        if empty.any():
            problems.append(
                f"{path}: column '{column}' has {int(empty.sum())} empty cell(s) "
                f"(first at row {int(np.argmax(empty.to_numpy())) + 1}); expected "
                "text in every row"
            )
    if problems:
        raise LLMBenchError(*problems)
    if frame.empty:
        raise LLMBenchError(f"{path}: no rows; expected at least one example")
    return frame[wanted].astype(str)
