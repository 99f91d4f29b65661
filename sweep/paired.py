"""Is a difference real? A paired bootstrap of a benchmark's own primary metric (F1 for POPE, the MME score,
MMBench's circular accuracy, ANLS, VQA accuracy, ...) over the units both runs scored, and the answers
that flipped.

Each resample draws units (a question; an MME image with its two questions; an MMBench item with its
rotated copies: `gprune.units`) with replacement, the same units for both runs, and recomputes the metric
for each run on them; the interval is the percentile interval of metric(A) - metric(B). At the full set
the metric is lmms-eval's own aggregation.

Units whose features are the same in both runs are interchangeable, so a resample is drawn as counts of
each distinct kind of unit (a multinomial) rather than as one index per unit: the same distribution, and
on VQAv2's 214,354 questions (at most 16 kinds: four VQA accuracies in each run) 10,000 resamples take a
second instead of the 105 s that drawing indices took here (scipy.stats.bootstrap)."""

from dataclasses import dataclass

import numpy as np

from gprune.benchmarks import TASKS
from gprune.records import field_of
from gprune.tasks import declared
from gprune.units import paired_units

RESAMPLES = 10_000
BATCH_CELLS = 20_000_000  # resamples x kinds of unit drawn at once: bounds memory (160 MB)


@dataclass(frozen=True)
class PairedDifference:
    units: int  # units both runs scored
    unit: str  # what a unit is, as the benchmark's task file says
    a: float  # the primary metric of A over those units
    b: float  # and of B
    low: float  # the confidence interval of a - b
    high: float
    flips: list  # sample indices whose score differs between A and B
    problem: str = ""  # why there is no interval (an MME pair split by a limit), as the metric has none either

    @property
    def difference(self) -> float:
        return self.a - self.b

    @property
    def real(self) -> bool:
        """The interval excludes 0."""
        return self.low > 0 or self.high < 0


def _score_by_index(samples) -> dict:
    return {field_of(s, "index"): field_of(s, "score") for s in samples}


def paired_difference(benchmark: str, a, b, resamples: int = RESAMPLES, level: float = 0.95, seed: int = 0
                      ) -> PairedDifference:
    """`a`, `b`: the two runs' records of `benchmark` (dicts or SampleRecords: index, score, results)."""
    metadata = declared(TASKS[benchmark])
    scores_a, scores_b = _score_by_index(a), _score_by_index(b)
    flips = sorted(i for i in set(scores_a) & set(scores_b) if scores_a[i] != scores_b[i])
    nan = float("nan")
    try:
        units = paired_units(metadata, a, b)
    except ValueError as error:
        return PairedDifference(0, metadata["unit"], nan, nan, nan, nan, flips, str(error))
    count = len(units.keys)
    if count == 0:
        return PairedDifference(0, metadata["unit"], nan, nan, nan, nan, flips, "no unit scored by both")
    a_value, b_value = float(units.metric(units.a.sum(axis=0))), float(units.metric(units.b.sum(axis=0)))
    if count < 2 or np.array_equal(units.a, units.b):  # nothing varies: the interval is the point
        return PairedDifference(count, metadata["unit"], a_value, b_value, a_value - b_value, a_value - b_value, flips)

    k = units.a.shape[1]
    kinds, counts = np.unique(np.concatenate([units.a, units.b], axis=1), axis=0, return_counts=True)
    rng, differences = np.random.default_rng(seed), []
    batch = max(1, BATCH_CELLS // len(kinds))
    for start in range(0, resamples, batch):
        drawn = rng.multinomial(count, counts / count, size=min(batch, resamples - start))  # (resamples, kinds)
        sums = drawn @ kinds
        differences.append(units.metric(sums[:, :k]) - units.metric(sums[:, k:]))
    low, high = np.quantile(np.concatenate(differences), [(1 - level) / 2, (1 + level) / 2])
    return PairedDifference(count, metadata["unit"], a_value, b_value, float(low), float(high), flips)


def smallest_confirmable_change(units: int, level: float = 0.95) -> int | None:
    """How many of `units` must change (from right to wrong, none the other way) before the paired bootstrap's
    interval can exclude 0: a resample that draws none of the k changed units shows no change, so it must be
    rarer than (1 - level) / 2, i.e. (1 - k/units)**units < (1 - level) / 2. None: no change of these units can."""
    return next((k for k in range(1, units + 1) if (1 - k / units) ** units < (1 - level) / 2), None)
