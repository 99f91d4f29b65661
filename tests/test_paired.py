"""Paired comparisons see every benchmark: each sample scored, units and statistic from the task file, the
statistic equal to lmms-eval's own aggregation at the full set, a regression on one benchmark flagged on that
benchmark alone.

Answer sheets stand in for a model where a test needs answers of a known quality (all right, all wrong, a
mix): each answer is scored by the task's own lmms-eval process_results on the fixture's real row."""

import json
import random

import numpy as np
import pytest
from scipy.stats import bootstrap

from cli.main import main
from gprune import evaluate
from gprune.benchmarks import PRIMARY, TASKS, load_task
from gprune.evaluation import aggregate, score_record
from gprune.records import SampleRecord
from gprune.tasks import declared
from gprune.units import paired_units, primary_value
from sweep.paired import paired_difference
from sweep.regress import Suite, Verdict, benchmark_entry, compare, judge

WRONG = "zzz qqq"
ROWS = 16  # each benchmark's fixture rows (easy-VQA's first 16 of its 9,673)


def right_answer(task, doc) -> str:
    target = task.doc_to_target(doc)
    return str(target[0] if isinstance(target, list) else target)


def wrong_answer(name, task, doc, rng) -> str:
    """Wrong in the ways a model is: POPE and MME say the other word, MMBench picks another letter."""
    right = right_answer(task, doc)
    if name in ("pope", "mme"):
        return rng.choice(["no" if right.lower() == "yes" else "yes", "maybe"])
    if name == "mmbench":
        return rng.choice([c for c in "ABCD" if c != right])
    return WRONG


def answer_sheet_records(name, data_dir, right) -> list[SampleRecord]:
    """Records of `name`'s fixture rows answered by a sheet: `right(index)` says whether row i gets its
    target or a wrong answer."""
    task, rng = load_task(name, data_dir), random.Random(f"{name}")
    docs = task.test_docs()
    records = []
    for i in range(min(len(docs), ROWS)):
        record = SampleRecord(index=i)
        answer = right_answer(task, docs[i]) if right(i) else wrong_answer(name, task, docs[i], rng)
        score_record(record, task, docs[i], answer)
        records.append(record)
    return records


def test_every_successful_sample_has_a_score_mmbench_included(fixtures_dir, tmp_path, capsys):
    out = tmp_path / "o.json"
    assert main(["eval", "--model", "tiny", "--benchmarks", "mmbench,pope,mme", "--data-dir", str(fixtures_dir),
                 "--limit", "12", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    for name in ("mmbench", "pope", "mme"):
        records = results[name]["records"]
        assert len(records) == 12 and all(r["error"] is None and r["score"] in (0.0, 1.0) for r in records), name


@pytest.fixture(scope="module")
def model_records(tiny, fixtures_dir):
    """The trained tiny model's records on every benchmark's fixtures."""
    model, processor = tiny
    return {name: result.records for name, result in evaluate(model, processor, "all", limit=ROWS, batch_size=8,
                                                               data_dir=fixtures_dir).items()}


@pytest.mark.parametrize("name", list(TASKS))
@pytest.mark.parametrize("answers", ["model", "mixed"])
def test_at_the_full_set_the_statistic_is_lmms_eval_s_own_aggregation(name, answers, model_records, fixtures_dir):
    """For the model's answers and for a 60/40 mix of right and wrong ones (POPE false positives and negatives,
    MMBench items with some rotations right), to floating-point rounding."""
    if answers == "model":
        records = model_records[name]
    elif name == "mmbench":  # rows come as items of 4 rotated copies: items 0 and 2 right, 1 and 3 one copy wrong
        records = answer_sheet_records(name, fixtures_dir, lambda i: (i // 4) % 2 == 0 or i % 4 != 3)
        assert primary_value(declared(TASKS[name]), records) == 50.0
    else:
        coin = random.Random(name)
        records = answer_sheet_records(name, fixtures_dir, lambda i: coin.random() < 0.6)
    primary = PRIMARY[name]
    lmms_eval, _ = aggregate(load_task(name, fixtures_dir), records)
    assert primary_value(declared(TASKS[name]), records) == pytest.approx(lmms_eval[primary], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name,unit,units", [("mme", "image", None), ("mmbench", "circular group", 4),
                                             ("pope", "question", 16)])
def test_the_units_are_what_the_metric_is_made_of(name, unit, units, fixtures_dir):
    records = answer_sheet_records(name, fixtures_dir, lambda i: True)
    metadata = declared(TASKS[name])
    paired = paired_units(metadata, records, records)
    assert metadata["unit"] == unit
    if name == "mme":  # both questions of each image in one unit: perception images only
        perception = [r for r in records if "mme_perception_score" in r.results]
        assert len(paired.keys) == len(perception) // 2
    else:
        assert len(paired.keys) == units


def test_a_split_mme_pair_has_no_interval_and_says_why(fixtures_dir):
    records = answer_sheet_records("mme", fixtures_dir, lambda i: True)[:3]
    d = paired_difference("mme", records, records)
    assert d.units == 0 and np.isnan(d.low) and "acc+ needs both" in d.problem


def entries(records_by_benchmark) -> dict:
    return {name: benchmark_entry(name, records) for name, records in records_by_benchmark.items()}


@pytest.fixture(scope="module")
def right_everywhere(fixtures_dir):
    return {name: answer_sheet_records(name, fixtures_dir, lambda i: True) for name in TASKS}


@pytest.mark.parametrize("flipped", list(TASKS))
def test_a_change_that_flips_answers_on_one_benchmark_regresses_that_benchmark_and_no_other(
        flipped, right_everywhere, fixtures_dir, tmp_path):
    suite = Suite(name="each", benchmarks=list(TASKS), configs=[{"method": "gprune", "ratio": 0.5}])
    key = next(iter(suite.prune_configs()))
    pinned = tmp_path / "reference.json"  # through JSON, as a pinned reference file is read back
    pinned.write_text(json.dumps({"results": {key: entries(right_everywhere)}}))
    reference = json.loads(pinned.read_text())

    unchanged = compare(suite, reference, {key: entries(right_everywhere)})
    assert judge(unchanged)[0] == Verdict.PASSED and judge(unchanged)[1].startswith("passed (")  # few units: said

    changed = dict(right_everywhere, **{flipped: answer_sheet_records(flipped, fixtures_dir, lambda i: False)})
    comparisons = compare(suite, reference, {key: entries(changed)})
    verdict, reason = judge(comparisons)
    assert verdict == Verdict.REGRESSED and reason == f"regressed: {key} {flipped}.{PRIMARY[flipped]}"
    failing = next(c for c in comparisons if c.regressed)
    assert failing.high < 0 and failing.flips  # the interval says so, and the flipped samples are named


def as_records(scores: dict, metric="exact_match") -> list[dict]:
    return [{"index": i, "score": s, "results": {metric: s}} for i, s in scores.items()]


def test_the_bootstrap_on_constructed_scores_against_itself_a_broken_config_and_noise():
    generator = random.Random(0)
    good = {i: float(generator.random() < 0.8) for i in range(200)}
    difference = paired_difference("easyvqa", as_records(good), as_records(dict(good)))
    assert difference.low <= 0 <= difference.high and not difference.real and difference.flips == []
    broken = {i: (0.0 if i % 3 else score) for i, score in good.items()}  # loses two thirds of its right answers
    difference = paired_difference("easyvqa", as_records(good), as_records(broken))
    assert difference.real and difference.low > 0 and difference.difference > 0.4
    assert difference.flips == [i for i in range(200) if good[i] != broken[i]]
    noisy = {i: (1.0 - s if i in (3, 50, 120) else s) for i, s in good.items()}  # three flips either way: noise
    assert not paired_difference("easyvqa", as_records(good), as_records(noisy)).real


def test_only_the_samples_both_runs_scored_are_paired():
    difference = paired_difference("gqa", as_records({0: 1.0, 1: 0.0, 2: 1.0}), as_records({1: 0.0, 2: 0.0, 3: 1.0}))
    assert difference.units == 2 and difference.flips == [2] and difference.difference == 0.5


def test_drawing_counts_of_unit_kinds_gives_the_interval_drawing_unit_indices_gives(fixtures_dir):
    """Our multinomial over distinct units against scipy's bootstrap of unit indices, on POPE F1 over 3,000
    constructed questions: the same interval to Monte Carlo error."""
    rng = np.random.default_rng(1)
    truth = rng.random(3000) < 0.5
    a_right = rng.random(3000) < 0.8
    b_right = np.where(rng.random(3000) < 0.85, a_right, ~a_right)

    def pope(right):
        return [{"index": i, "score": float(r), "results": {"pope_f1_score": {
            "question_id": str(i), "score": float(r), "ground_truth": "yes" if t else "no",
            "prediction": ("yes" if t else "no") if r else ("no" if t else "yes")}}}
            for i, (r, t) in enumerate(zip(right, truth))]

    ours = paired_difference("pope", pope(a_right), pope(b_right))
    units = paired_units(declared(TASKS["pope"]), pope(a_right), pope(b_right))
    theirs = bootstrap((np.arange(3000),), lambda i, axis=-1: units.metric(units.a[i].sum(axis=-2))
                       - units.metric(units.b[i].sum(axis=-2)), vectorized=True, n_resamples=10_000, batch=500,
                       method="percentile", rng=np.random.default_rng(0)).confidence_interval
    width = theirs.high - theirs.low
    assert abs(ours.low - theirs.low) < 0.05 * width and abs(ours.high - theirs.high) < 0.05 * width


def test_the_smallest_change_a_paired_bootstrap_can_confirm():
    from sweep.paired import smallest_confirmable_change

    assert smallest_confirmable_change(3) == 3  # 3 questions: only all three wrong is confirmed
    assert smallest_confirmable_change(0) is None
    assert smallest_confirmable_change(12) == 4 and smallest_confirmable_change(100_000) == 4
    # what the bound says, the bootstrap does: 4 of 12 GQA answers turned wrong are confirmed, 3 are not
    right = [{"index": i, "score": 1.0, "results": {"exact_match": 1.0}} for i in range(12)]
    for changed, confirmed in ((3, False), (4, True)):
        wrong = [{**r, "score": 0.0, "results": {"exact_match": 0.0}} if r["index"] < changed else r for r in right]
        assert (paired_difference("gqa", wrong, right).high < 0) == confirmed, changed
    two = [{"index": i, "score": float(i == 2), "results": {"exact_match": float(i == 2)}} for i in range(3)]
    assert not paired_difference("gqa", two, right[:3]).high < 0
