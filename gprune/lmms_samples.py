"""A run's records as lmms-eval's samples file, and lmms-eval's samples files as records.

lmms-eval's `--log_samples` writes one JSON line per document, keyed by `doc_id` (the row's position in
the split, as a record's `index` is here): `target`, `input` (the prompt), `filtered_resps` (the answer
that was scored) and its task's process_results output under each metric's name. Written in that form,
a sweep trial or `gprune eval` run pairs with an lmms-eval run through lmms-eval's own
`--baseline FILE`, and an lmms-eval run's file can be `gprune regress`'s reference.

The file name says the task, as lmms-eval names it: `<stamp>_samples_<task>.jsonl`, our task name
(`pope_local`) or lmms-eval's own task of the same data (`pope`, the task file's `upstream`).
"""

import json
import re
import time
from pathlib import Path

from .benchmarks import TASKS, UPSTREAM
from .records import field_of
from .tasks import declared, metric_names
from .units import sample_score

SAMPLES_FILE = re.compile(r"_samples_(?P<task>[A-Za-z0-9_]+)\.jsonl$")


def samples_file(folder, benchmark: str, stamp: str | None = None) -> Path:
    """Where lmms-eval would write the samples of `benchmark`'s task in `folder`."""
    stamp = stamp or time.strftime("%Y%m%dT%H%M%S")
    return Path(folder) / f"{stamp}_samples_{TASKS[benchmark]}.jsonl"


def benchmark_of(path) -> str:
    """The benchmark a samples file holds, from the task in its name (ours or lmms-eval's own)."""
    found = SAMPLES_FILE.search(Path(path).name)
    task = found and found["task"]
    by_task = {**{t: b for b, t in TASKS.items()}, **{t: b for b, t in UPSTREAM.items()}}
    if task not in by_task:
        known = ", ".join(sorted(by_task))
        raise ValueError(f"{path}: not an lmms-eval samples file of a known task (its name should end "
                         f"'_samples_<task>.jsonl' with a task among {known}), as `--log_samples` writes it")
    return by_task[task]


def write_samples(path, records) -> Path:
    """Records (dicts or SampleRecords) as lmms-eval's samples JSONL. A row that could not be read has no
    results and no line, as lmms-eval has no line for a document it never scored."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"doc_id": field_of(r, "index"), "target": str(field_of(r, "target")),
                         "input": field_of(r, "question"), "filtered_resps": field_of(r, "prediction") or "",
                         **field_of(r, "results")}, default=str, ensure_ascii=False)
             for r in records if field_of(r, "results")]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def read_samples(path) -> tuple[str, list[dict]]:
    """(benchmark, records) from an lmms-eval samples file: index, target, prediction, results (each metric
    of the task that the line holds) and the sample's score, as our own records carry them."""
    path = Path(path)
    benchmark = benchmark_of(path)
    metadata = declared(TASKS[benchmark])
    metrics = metric_names(TASKS[benchmark])
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            sample = json.loads(line)
            results = {m: sample[m] for m in metrics if m in sample}
            answer = sample.get("filtered_resps", "")
            records.append({"index": int(sample["doc_id"]), "target": sample.get("target"),
                            "prediction": answer[0] if isinstance(answer, list) else answer, "results": results,
                            "score": sample_score(metadata, results) if results else None})
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}, line {number}: not an lmms-eval sample ({type(error).__name__}: {error})"
                             ) from None
    if not records:
        raise ValueError(f"{path} holds no samples (an empty file): write it again with lmms-eval's --log_samples "
                         "or `gprune samples RUN_ID`")
    return benchmark, records

