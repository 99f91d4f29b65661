"""Is a difference real? A paired bootstrap over the samples both configs answered, and the answers
that flipped. Per-sample scores are each benchmark's first lmms-eval metric per sample (as records
keep them); the interval is of the difference of their means (config A minus config B)."""

from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap


@dataclass(frozen=True)
class PairedDifference:
    samples: int
    difference: float  # mean(A) - mean(B) over the paired samples
    low: float  # the confidence interval of that difference
    high: float
    flips: list  # sample indices whose score differs between A and B

    @property
    def real(self) -> bool:
        """The interval excludes 0."""
        return self.low > 0 or self.high < 0


def paired_difference(a: dict, b: dict, resamples: int = 2000, level: float = 0.95, seed: int = 0
                      ) -> PairedDifference:
    """`a`, `b`: sample index -> score (failed samples score 0, as in the metrics)."""
    shared = sorted(set(a) & set(b))
    x = np.array([a[i] for i in shared], dtype=float)
    y = np.array([b[i] for i in shared], dtype=float)
    flips = [i for i, u, v in zip(shared, x, y) if u != v]
    if len(shared) < 2 or not flips:  # nothing varies: the interval is the point
        difference = float(x.mean() - y.mean()) if shared else float("nan")
        return PairedDifference(len(shared), difference, difference, difference, flips)
    result = bootstrap((x, y), lambda u, v, axis=-1: u.mean(axis=axis) - v.mean(axis=axis), paired=True,
                       n_resamples=resamples, confidence_level=level, method="percentile",
                       rng=np.random.default_rng(seed))
    interval = result.confidence_interval
    return PairedDifference(len(shared), float(x.mean() - y.mean()), float(interval.low), float(interval.high), flips)
