"""For fixed predictions our scores equal lmms-eval's own functions (no metric re-implemented here
can drift), plus golden values checked by hand for each metric's edge cases."""

import argparse

import pytest
from lmms_eval.api.metrics import anls, exact_match_hf_evaluate
from lmms_eval.tasks.chartqa.utils import chartqa_process_results
from lmms_eval.tasks.mmbench.en_utils import mmbench_aggregate_dev_results_static, mmbench_process_results
from lmms_eval.tasks.mme.utils import mme_aggregate_results, mme_process_results
from lmms_eval.tasks.pope import utils as pope
from lmms_eval.tasks.textvqa.utils import textvqa_process_results
from lmms_eval.tasks.vqav2.utils import vqav2_process_results_val

from gprune.benchmarks import load_task
from gprune.evaluation import SampleRecord, aggregate, score_record


def our_metrics(task, docs, predictions):
    records = []
    for i, (doc, prediction) in enumerate(zip(docs, predictions)):
        record = SampleRecord(index=i)
        score_record(record, task, dict(doc), prediction)
        records.append(record)
    metrics, errors = aggregate(task, records)
    assert not errors
    return metrics


def predictions_for(docs, right, wrong="zzz"):
    """Alternate right answers (from `right(doc)`) and wrong ones, so scores are neither 0 nor 1."""
    return [right(doc) if i % 3 else wrong for i, doc in enumerate(docs)]


def mean(values):
    return sum(values) / len(values)


@pytest.fixture(scope="module")
def tasks(fixtures_dir):
    names = ("gqa", "vqav2", "mme", "pope", "mmbench", "chartqa", "docvqa", "textvqa", "easyvqa")
    return {name: load_task(name, fixtures_dir) for name in names}


def docs_of(task, limit=None):
    docs = task.test_docs()
    return [docs[i] for i in range(len(docs) if limit is None else limit)]


@pytest.mark.parametrize("name", ["gqa", "easyvqa"])
def test_exact_match_tasks_equal_lmms_eval(tasks, name):
    docs = docs_of(tasks[name], 16)
    predictions = predictions_for(docs, lambda d: d["answer"].upper() + ".")  # case and punctuation ignored
    expected = mean([exact_match_hf_evaluate([p], [d["answer"]], ignore_case=True,
                                             ignore_punctuation=True)["exact_match"]
                     for p, d in zip(predictions, docs)])
    assert our_metrics(tasks[name], docs, predictions) == {"exact_match": pytest.approx(expected)}
    assert 0 < expected < 1


def test_vqav2_equals_lmms_eval(tasks):
    docs = docs_of(tasks["vqav2"])
    predictions = predictions_for(docs, lambda d: d["answers"][-1]["answer"])  # often the minority answer
    expected = mean([vqav2_process_results_val(dict(d), [p])["exact_match"] for p, d in zip(predictions, docs)])
    assert our_metrics(tasks["vqav2"], docs, predictions)["exact_match"] == pytest.approx(expected)
    assert 0 < expected < 1


def test_textvqa_equals_lmms_eval(tasks):
    docs = docs_of(tasks["textvqa"])
    predictions = predictions_for(docs, lambda d: d["answers"][-1])
    expected = mean([textvqa_process_results(dict(d), [p])["exact_match"] for p, d in zip(predictions, docs)])
    assert our_metrics(tasks["textvqa"], docs, predictions)["exact_match"] == pytest.approx(expected)


def test_docvqa_anls_equals_lmms_eval(tasks):
    docs = docs_of(tasks["docvqa"])
    predictions = predictions_for(docs, lambda d: d["answers"][0][:-1] + "x")  # one edit away
    expected = mean([anls(d["answers"], [p])["anls"] for p, d in zip(predictions, docs)])
    assert our_metrics(tasks["docvqa"], docs, predictions)["anls"] == pytest.approx(expected)


def test_chartqa_equals_lmms_eval(tasks):
    docs = docs_of(tasks["chartqa"])
    predictions = predictions_for(docs, lambda d: d["answer"])
    per_doc = [chartqa_process_results(dict(d), [p]) for p, d in zip(predictions, docs)]
    expected = {key: mean([r[key] for r in per_doc if key in r])
                for key in ("relaxed_overall", "relaxed_human_split", "relaxed_augmented_split")}
    assert our_metrics(tasks["chartqa"], docs, predictions) == pytest.approx(expected)


def test_mme_equals_lmms_eval(tasks):
    docs = docs_of(tasks["mme"])
    predictions = predictions_for(docs, lambda d: d["answer"], wrong="Yes")
    per_doc = [mme_process_results(dict(d), [p]) for p, d in zip(predictions, docs)]
    expected = {key: mme_aggregate_results([r[key] for r in per_doc if key in r])
                for key in ("mme_perception_score", "mme_cognition_score")}
    assert our_metrics(tasks["mme"], docs, predictions) == pytest.approx(expected)


def test_pope_equals_lmms_eval(tasks):
    docs = docs_of(tasks["pope"])
    predictions = predictions_for(docs, lambda d: d["answer"], wrong="yes")
    per_doc = [pope.pope_process_results(dict(d), [p]) for p, d in zip(predictions, docs)]
    expected = {f"pope_{m}": getattr(pope, f"pope_aggregate_{m}")([r[f"pope_{m}"] for r in per_doc])
                for m in ("accuracy", "precision", "recall", "f1_score", "yes_ratio")}
    assert our_metrics(tasks["pope"], docs, predictions) == pytest.approx(expected)


def test_mmbench_circular_static_equals_lmms_eval(tasks, tmp_path):
    docs = docs_of(tasks["mmbench"])
    # Right on every copy of the first question, wrong on one copy of the second: circular eval fails it.
    predictions = [d["answer"] if d["index"] % 1_000_000 != 1 or d["index"] < 1_000_000 else "E" for d in docs]
    per_doc = [mmbench_process_results(dict(d), [p])["gpt_eval_score"] for p, d in zip(predictions, docs)]
    expected = mmbench_aggregate_dev_results_static(per_doc, argparse.Namespace(output_path=str(tmp_path)))
    ours = our_metrics(tasks["mmbench"], docs, predictions)["gpt_eval_score"]
    assert ours == pytest.approx(expected)
    assert ours == pytest.approx(100 * 3 / 4)  # 4 questions, one failed on a single rotated copy


# ---- golden values, worked out by hand ------------------------------------------------------------------


def score(task, doc, prediction):
    record = SampleRecord(index=0)
    score_record(record, task, doc, prediction)
    return record.results


def test_anls_at_the_half_cut(tasks):
    task = tasks["docvqa"]
    doc = {"questionId": "1", "question": "q", "answers": ["abcd"], "question_types": [], "docId": 0}
    assert score(task, doc, "abcd")["anls"] == 1.0
    assert score(task, doc, "abxy")["anls"] == pytest.approx(0.5)  # NL = 2/4 = 0.5: kept at the cut
    doc["answers"] = ["abcde"]
    assert score(task, doc, "abxyz")["anls"] == 0  # NL = 3/5: 1 - 0.6 = 0.4 < 0.5, so 0
    doc["answers"] = ["abcde", "xyz"]
    assert score(task, doc, "xyz")["anls"] == 1.0  # best of several valid answers


def test_chartqa_relaxed_accuracy_at_5_percent_and_zero_target(tasks):
    task = tasks["chartqa"]

    def relaxed(target, prediction, split="human_test"):
        return score(task, {"type": split, "question": "q", "answer": target}, prediction)

    assert relaxed("40", "42")["relaxed_overall"] == 1.0  # exactly 5% off
    assert relaxed("40", "42.1")["relaxed_overall"] == 0.0  # 5.25% off
    assert relaxed("45%", "0.45")["relaxed_overall"] == 1.0  # percentages compare as fractions
    assert relaxed("0", "0")["relaxed_overall"] == 1.0  # target 0: exact string match only
    assert relaxed("0", "0.0")["relaxed_overall"] == 0.0
    assert relaxed("40", "42", "augmented_test") == {"relaxed_overall": 1.0, "relaxed_augmented_split": 1.0}


def test_mme_acc_plus(tasks):
    task = tasks["mme"]
    pairs = [("count/1.png", "Yes", "yes"), ("count/1.png", "No", "no"),  # both right: acc 100 + acc+ 100
             ("count/2.png", "Yes", "yes"), ("count/2.png", "No", "yes")]  # one right: acc 50 + acc+ 0
    records = []
    for question_id, answer, prediction in pairs:
        record = SampleRecord(index=len(records))
        score_record(record, task, {"question_id": question_id, "question": "q", "answer": answer,
                                    "category": "count"}, prediction)
        records.append(record)
    metrics, _ = aggregate(task, records)
    assert metrics == {"mme_perception_score": pytest.approx((200 + 50) / 2)}


def test_pope_counts_yes_with_a_period_as_wrong(tasks):
    task = tasks["pope"]
    records = []
    for i, (answer, prediction) in enumerate([("yes", "Yes."), ("yes", "yes"), ("no", "no"), ("no", "yes")]):
        record = SampleRecord(index=i)
        score_record(record, task, {"question_id": str(i), "question": "q", "answer": answer}, prediction)
        records.append(record)
    metrics, _ = aggregate(task, records)
    assert records[0].score == 0.0
    assert metrics["pope_accuracy"] == pytest.approx(0.5)
    assert metrics["pope_precision"] == pytest.approx(0.5)  # 1 true positive, 1 false positive
    assert metrics["pope_recall"] == pytest.approx(1.0)  # "Yes." is neither yes nor no: no false negative
    assert metrics["pope_f1_score"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("name", ["vqav2", "textvqa"])
def test_vqa_accuracy_is_min_matches_over_three(tasks, name):
    task = tasks[name]

    def accuracy(answers, prediction):
        if name == "vqav2":
            doc = {"question_id": 1, "multiple_choice_answer": answers[0],
                   "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i}
                               for i, a in enumerate(answers)]}
        else:
            doc = {"question_id": 1, "answers": answers}
        return score(task, doc, prediction)["exact_match"]

    # leave-one-out over 10 annotators: mean of min(matches among the other 9 / 3, 1)
    assert accuracy(["red"] * 3 + ["blue"] * 7, "red") == pytest.approx((3 * 2 / 3 + 7 * 1) / 10)  # 0.9
    assert accuracy(["red"] * 1 + ["blue"] * 9, "red") == pytest.approx(9 * (1 / 3) / 10)  # 0.3
    assert accuracy(["red"] * 4 + ["blue"] * 6, "Red.") == pytest.approx(1.0)  # EvalAI normalisation
    assert accuracy(["2"] * 10, "two") == pytest.approx(1.0)  # number words become digits


def test_throughput_is_the_median_batch_rate_without_the_warm_up_batch():
    from gprune.records import throughput

    rates = [2.0, 20.0, 22.0, 18.0, 200.0]  # a cold first batch; one batch that ran alone on an idle machine
    measured = throughput(rates)
    assert measured["samples_per_s"] == 21.0 and measured["batches_timed"] == 4
    assert measured["samples_per_s_spread"] > 0
    assert throughput([2.0, 20.0])["samples_per_s"] == 11.0  # too few batches to drop one
    assert throughput([5.0, 5.0, 5.0])["samples_per_s_spread"] == 0.0
    assert throughput([])["batches_timed"] == 0
