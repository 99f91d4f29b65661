"""Each benchmark's primary metric as a function of units, so a paired comparison resamples what the metric
is made of and recomputes the number Table 1 reports.

A benchmark's task file declares its primary metric, its unit and its statistic (`metadata`). Every primary
metric here is a formula over sums of per-unit features, so a unit is a row of numbers, a resample is a
choice of rows, and its metric is one vectorised formula:

- `mean` (GQA, VQAv2, TextVQA, DocVQA ANLS, ChartQA relaxed accuracy, easy-VQA): unit a question,
  features (its value, 1), metric the ratio: lmms-eval's `mean` aggregation.
- `pope_f1` (POPE): unit a question, features (true positive, false positive, false negative), metric F1
  with lmms-eval's zero rules (`pope_aggregate_f1_score`).
- `mme` (MME perception): unit an image with its two questions (acc+ needs both), features per category
  (acc + acc+ of the image, 1), metric the sum over categories of their means (`mme_aggregate_results`).
- `circular` (MMBench): unit an item with its rotated copies (index % 1e6), right only if every copy is,
  features (right, 1), metric the percentage (`MMBench_Evaluator.eval_result`, static extraction).

A sample's `score` is its own share: its value of the metric (`mean`), whether its answer was right (POPE,
MME), whether its extracted option was right (MMBench). Samples without the primary metric in their
results (MME's cognition questions for the perception score, rows that could not be read) are in no
unit, as lmms-eval's aggregation leaves them out.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .records import field_of

CIRCULAR_STRIDE = 1_000_000  # MMBench's rotated copies of item i have indices i + k * 1e6


def _ratio(numerator, denominator):
    """numerator / denominator, 0 where the denominator is 0 (lmms-eval's rule for POPE)."""
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    return np.divide(numerator, denominator, out=np.zeros(np.broadcast(numerator, denominator).shape),
                     where=denominator > 0)


class Mean:
    def score(self, value) -> float:
        return float(value)

    def unit(self, index, value):
        return index

    def features(self, members, columns) -> list:
        (score, _), = members
        return [score, 1.0]

    def metric(self, sums, columns):
        return sums[..., 0] / sums[..., 1]


class PopeF1:
    def score(self, value) -> float:
        return float(value["score"])

    def unit(self, index, value):
        return index

    def features(self, members, columns) -> list:
        (_, value), = members
        truth, said = value["ground_truth"], value["prediction"]
        return [truth == "yes" and said == "yes", truth == "no" and said == "yes", truth == "yes" and said == "no"]

    def metric(self, sums, columns):
        tp, fp, fn = sums[..., 0], sums[..., 1], sums[..., 2]
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        return _ratio(2 * precision * recall, precision + recall)


class MME:
    def score(self, value) -> float:
        return float(value["score"])

    def unit(self, index, value):
        return f"{value['category']}|{value['question_id']}"

    def columns(self, values) -> list:
        return sorted({v["category"] for v in values})

    def features(self, members, columns) -> list:
        if len(members) != 2:
            raise ValueError(f"MME image {members[0][1]['question_id']} has {len(members)} of its 2 questions: "
                             "acc+ needs both (a --limit or samples count that splits a pair; use an even one)")
        right = sum(score for score, _ in members)
        row = [0.0] * (2 * len(columns))
        at = columns.index(members[0][1]["category"])
        row[2 * at], row[2 * at + 1] = 100.0 * right / 2 + 100.0 * (right == 2), 1.0
        return row

    def metric(self, sums, columns):
        return _ratio(sums[..., 0::2], sums[..., 1::2]).sum(axis=-1)


class Circular:
    def score(self, value) -> float:
        """This copy's verdict under lmms-eval's static extraction (its evaluator on a one-row group)."""
        import pandas as pd
        from lmms_eval.tasks.mmbench.en_utils import mmbench_evaluator

        row = pd.DataFrame([value])
        row["prediction"] = [str(x) for x in row["prediction"]]
        row.columns = [k if k in ("A", "B", "C", "D") else k.lower() for k in row.columns]  # as eval_result does
        return float(mmbench_evaluator.eval_sub_data(row, {value["index"]: value["answer"]}, static_only=True))

    def unit(self, index, value):
        return int(value["index"]) % CIRCULAR_STRIDE

    def features(self, members, columns) -> list:
        return [float(all(score == 1 for score, _ in members)), 1.0]

    def metric(self, sums, columns):
        return 100.0 * sums[..., 0] / sums[..., 1]


STATISTICS = {"mean": Mean(), "pope_f1": PopeF1(), "mme": MME(), "circular": Circular()}


def statistic_of(metadata: dict):
    """The statistic a task file's metadata declares, with its primary metric."""
    return STATISTICS[metadata["statistic"]], metadata["primary"]


def sample_score(metadata: dict, results: dict) -> float | None:
    """A sample's own score from its lmms-eval process_results output: for the primary metric where the
    sample has it, else for its first metric (MME's cognition questions)."""
    statistic, primary = statistic_of(metadata)
    if primary in results:
        return statistic.score(results[primary])
    value = next(iter(results.values()), None)
    if isinstance(value, dict):
        value = value.get("score")
    return float(value) if isinstance(value, (int, float, bool)) else None


def _groups(statistic, primary, samples) -> dict:
    """unit key -> [(score, primary value)] of the samples that have the primary metric."""
    groups = defaultdict(list)
    for sample in samples:
        results = field_of(sample, "results") or {}
        if primary in results:
            value = results[primary]
            groups[statistic.unit(field_of(sample, "index"), value)].append((field_of(sample, "score"), value))
    if isinstance(statistic, Circular):  # only items whose original (index < 1e6) is there, as lmms-eval counts
        groups = {k: v for k, v in groups.items() if any(int(val["index"]) < CIRCULAR_STRIDE for _, val in v)}
    return dict(groups)


@dataclass(frozen=True)
class PairedUnits:
    """The units both runs scored, as rows of features (the same row order on both sides)."""
    keys: list
    a: np.ndarray  # (units, features)
    b: np.ndarray
    metric: Callable  # summed features (..., features) -> the primary metric (...)


def _scores(primary, samples) -> dict:
    """index -> score of the samples that have the primary metric: a Mean's units, one sample each."""
    return {field_of(s, "index"): field_of(s, "score") for s in samples if primary in (field_of(s, "results") or {})}


def _mean_units(primary, a_samples, b_samples) -> PairedUnits:
    """What the general path below makes of a Mean ([score, 1] per sample), without a Python call per unit: at
    VQAv2's 214,354 questions a report pairs 27 trials with their baseline on it."""
    a, b = _scores(primary, a_samples), _scores(primary, b_samples)
    keys = sorted(set(a) & set(b), key=str)

    def table(scores):
        return np.column_stack([np.array([scores[k] for k in keys], dtype=float), np.ones(len(keys))])

    return PairedUnits(keys, table(a), table(b), lambda sums: Mean().metric(sums, None))


def paired_units(metadata: dict, a_samples, b_samples) -> PairedUnits:
    statistic, primary = statistic_of(metadata)
    if type(statistic) is Mean:
        return _mean_units(primary, a_samples, b_samples)
    a, b = _groups(statistic, primary, a_samples), _groups(statistic, primary, b_samples)
    keys = sorted(set(a) & set(b), key=str)
    columns = statistic.columns([v for k in keys for _, v in a[k]]) if hasattr(statistic, "columns") else None

    def table(groups):
        rows = [statistic.features(groups[k], columns) for k in keys]
        return np.array(rows, dtype=float).reshape(len(keys), -1)

    return PairedUnits(keys, table(a), table(b), lambda sums: statistic.metric(sums, columns))


def primary_value(metadata: dict, samples) -> float:
    """The primary metric over every unit of one run: lmms-eval's own aggregation, recomputed from units."""
    units = paired_units(metadata, samples, samples)
    return float(units.metric(units.a.sum(axis=0))) if units.keys else float("nan")
