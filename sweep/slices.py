"""A trial's work cut into slices, and the folder that keeps the finished ones.

A slice is one call to a worker: `count` samples of one benchmark from `offset`. A trial's budget is cut into
`steps` reports (ASHA's rungs; one without a scheduler), and each step's share of a benchmark into slices of at
most `slice_samples`. Each finished slice is one Parquet file in the trial's folder, its records and its result
(the numbers, no records) written together and renamed into place: a file there is a slice that never runs again,
so a resumed sweep or a retried trial evaluates only what is missing. The folder's file names are also the trial's
progress (`progress`), which the driver reads while the trial runs.
"""

import itertools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from gprune.record_files import document, write_records
from gprune.records import BenchmarkResult

PLAN = "plan.json"  # a trial's total samples, written once when it starts


@dataclass(frozen=True)
class Slice:
    benchmark: str
    offset: int
    count: int

    @property
    def file_name(self) -> str:
        return f"{self.benchmark}.{self.offset:08d}-{self.offset + self.count:08d}.parquet"


SLICE_FILE = re.compile(r"^(?P<benchmark>[\w-]+)\.(?P<start>\d{8})-(?P<end>\d{8})\.parquet$")


def cut(sizes: dict[str, int], steps: int, slice_samples: int) -> list[list[Slice]]:
    """The slices of each step: every benchmark's `sizes` samples cut into `steps` parts, each part into slices
    of at most `slice_samples`, benchmarks interleaved (a step's first slices span the benchmarks)."""
    plan = []
    for step in range(steps):
        per_benchmark = []
        for name, size in sizes.items():
            start, end = round(size * step / steps), round(size * (step + 1) / steps)
            pieces = -(-(end - start) // slice_samples)  # ceil: as few slices as the cap allows, evenly sized
            edges = [start + round((end - start) * i / pieces) for i in range(pieces + 1)] if pieces else []
            per_benchmark.append([Slice(name, a, b - a) for a, b in zip(edges, edges[1:])])
        plan.append([s for row in itertools.zip_longest(*per_benchmark) for s in row if s is not None])
    return plan


class SliceFolder:
    """One trial's (or the baseline's) finished slices: `path/<benchmark>.<start>-<end>.parquet`."""

    def __init__(self, path):
        self.path = Path(path)

    def start(self, plan: list[list[Slice]]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        total = sum(s.count for step in plan for s in step)
        partial = self.path / (PLAN + ".partial")
        partial.write_text(json.dumps({"samples": total}))
        os.replace(partial, self.path / PLAN)

    def done(self, piece: Slice) -> BenchmarkResult | None:
        """The slice's result without its records, if it finished before (None otherwise)."""
        path = self.path / piece.file_name
        if not path.exists():
            return None
        return BenchmarkResult.from_dict(document(path))

    def keep(self, piece: Slice, result: BenchmarkResult) -> BenchmarkResult:
        """Write a finished slice (records and result, one file, atomically); returns the result without records."""
        write_records(self.path / piece.file_name, {piece.benchmark: result.records}, result.to_dict(records=False))
        return BenchmarkResult.from_dict(result.to_dict(records=False))

    def files(self, benchmark: str | None = None) -> list[Path]:
        return sorted(p for p in self.path.glob("*.parquet") if benchmark is None or p.name.startswith(benchmark + "."))


def progress(path) -> tuple[int, int | None]:
    """(samples done, samples planned) of a slice folder, from its file names; planned is None before it starts."""
    path = Path(path)
    try:
        names = os.listdir(path)
        planned = json.loads((path / PLAN).read_text())["samples"] if PLAN in names else None
    except (FileNotFoundError, ValueError):
        return 0, None
    done = 0
    for name in names:
        match = SLICE_FILE.match(name)
        if match:
            done += int(match["end"]) - int(match["start"])
    return done, planned
