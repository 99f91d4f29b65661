"""Benchmarks on local data. Each module exposes NAME, METRIC, PROMPT_SUFFIX, MAX_NEW_TOKENS,
`load_samples(limit=None) -> list[Sample]` and `score(prediction, target) -> float`."""

from . import easyvqa
from .sample import Sample


BENCHMARKS = {easyvqa.NAME: easyvqa}


def get_benchmark(name: str):
    if name not in BENCHMARKS:
        raise ValueError(f"benchmark {name!r} is unknown; choose from {sorted(BENCHMARKS)}")
    return BENCHMARKS[name]
