"""A trial's work in slices (sweep/slices.py), the numbers merged from them (sweep/metrics.merge_slices) and the
records as Parquet files (gprune/record_files.py): every sample once, a slice kept whole or not at all, the merged
numbers those of all the records, and readers that get only what they ask for."""

import random
from dataclasses import asdict

import pyarrow.parquet as pq
import pytest

from gprune.record_files import document, read_records, write_records
from gprune.records import BenchmarkResult, SampleRecord, summarize_records
from sweep.metrics import merge_slices
from sweep.slices import SliceFolder, cut, progress


@pytest.mark.parametrize("sizes,steps,slice_samples", [({"pope": 16, "gqa": 5}, 1, 4), ({"vqav2": 214_354}, 4, 1000),
                                                       ({"mme": 7, "pope": 0}, 2, 3)])
def test_slices_cover_every_sample_once_and_none_is_larger_than_asked(sizes, steps, slice_samples):
    plan = cut(sizes, steps, slice_samples)
    assert len(plan) == steps
    for name, size in sizes.items():
        covered = [i for step in plan for s in step if s.benchmark == name for i in range(s.offset, s.offset + s.count)]
        assert covered == list(range(size))
    assert all(0 < s.count <= slice_samples for step in plan for s in step)


def records(offset: int, count: int, rng) -> list[SampleRecord]:
    out = []
    for i in range(offset, offset + count):
        failed = rng.random() < 0.2
        out.append(SampleRecord(index=i, prediction="yes", score=float(rng.random() < 0.5), error="model: x" if failed
                                else None, visual_tokens_kept=None if failed else rng.randint(10, 99),
                                visual_tokens_full=100, tflops_exact=None if failed else rng.random(),
                                tflops_fastv=None if failed else rng.random(), results={"m": i}))
    return out


def result(rows: list[SampleRecord], rates: list[float]) -> BenchmarkResult:
    return BenchmarkResult(benchmark="pope", task="pope", metrics={}, note="", prune={}, answers={}, throughput={},
                           records=rows, **summarize_records(rows, sum(rates), rates), batches=len(rates),
                           prefill_seconds=0.1 * len(rates), decode_seconds=0.2 * len(rates), decode_steps=3,
                           prefill_latency_ms=100.0, decode_ms_per_token=1.0)


def test_merged_slices_have_the_numbers_of_all_their_records():
    rng = random.Random(0)
    parts = [(records(a, n, rng), [rng.uniform(1, 9) for _ in range(3)]) for a, n in ((0, 7), (7, 1), (8, 12))]
    merged = merge_slices([result(rows, rates) for rows, rates in parts])
    whole = result([r for rows, _ in parts for r in rows], [x for _, rates in parts for x in rates])
    for key in ("samples", "errors", "error_rate", "unscored", "visual_tokens_kept", "visual_tokens_full",
                "tflops_exact", "tflops_fastv", "samples_per_s", "samples_per_s_spread", "batch_rates",
                "model_seconds"):
        assert getattr(merged, key) == pytest.approx(getattr(whole, key)), key
    assert merged.records == [] and merged.batches == 9


def test_a_slice_folder_keeps_each_slice_whole_and_counts_it_as_progress(tmp_path):
    folder = SliceFolder(tmp_path / "trial")
    plan = cut({"pope": 10}, 1, 4)
    assert progress(folder.path) == (0, None)  # not started
    folder.start(plan)
    first = plan[0][0]
    assert folder.done(first) is None and progress(folder.path) == (0, 10)
    kept = folder.keep(first, result(records(0, first.count, random.Random(1)), [1.0]))
    assert kept.records == [] and folder.done(first) == kept  # read back from the file's metadata alone
    assert progress(folder.path) == (first.count, 10)
    assert sorted(p.name for p in folder.path.iterdir()) == sorted([first.file_name, "plan.json"])  # no .partial


def test_records_read_back_by_column_benchmark_and_index_and_refuse_another_schema(tmp_path):
    rng = random.Random(2)
    rows = {"pope": records(0, 5, rng), "mme": records(0, 3, rng)}
    path = write_records(tmp_path / "r.parquet", rows, {"note": "kept"})
    assert document(path) == {"note": "kept"}
    whole = read_records(path)
    assert whole == {name: [asdict(r) for r in batch] for name, batch in rows.items()}
    scores = [{"index": r.index, "score": r.score} for r in rows["mme"]]
    assert read_records(path, ["mme"], ["score"]) == {"mme": scores}
    assert [r["index"] for r in read_records(tmp_path, below_index=2)["pope"]] == [0, 1]  # a folder reads too
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({b"gprune.records.version": b"99"}), tmp_path / "later.parquet")
    with pytest.raises(ValueError, match="schema version 99; this gprune reads version 1"):
        read_records(tmp_path / "later.parquet")
