"""The evaluation runner and `gprune eval` on the real easy-VQA test split."""

import json

import pytest
from PIL import Image

from gprune import PruneConfig, evaluate, image_layout
from gprune.benchmarks import Sample, easyvqa
from gprune.cli import main
from gprune.evaluation import evaluate_benchmark


def test_easyvqa_evaluation_reports_metrics_flops_and_throughput(tiny):
    model, processor = tiny
    results = evaluate(model, processor, ["easyvqa"], prune=PruneConfig(ratio=0.7), limit=6, batch_size=3)
    result = results["easyvqa"]
    assert result.samples == 6 and result.errors == 0
    assert 0.0 <= result.metrics["exact_match"] <= 1.0
    layout = image_layout(model.config, (64, 64))  # easy-VQA images are 64x64
    assert result.visual_tokens_kept == layout.kept(0.7) and result.visual_tokens_full == layout.full
    assert 0 < result.tflops_fastv < result.tflops_exact
    assert result.samples_per_s > 0 and result.prefill_latency_ms > 0
    assert result.throughput["batch_size"] == 3 and result.throughput["device"] == "cpu"
    record = result.records[0]
    assert record.target == easyvqa.load_samples(limit=1)[0].target
    assert record.prediction is not None and record.score in (0.0, 1.0)


def test_score_is_exact_match_after_normalising():
    assert easyvqa.score("Circle.", "circle") == 1.0
    assert easyvqa.score(" RED ", "red") == 1.0
    assert easyvqa.score("a red circle", "circle") == 0.0


def test_a_corrupt_image_is_one_error_record_and_the_rest_still_count(tiny, tmp_path):
    model, processor = tiny
    samples = easyvqa.load_samples(limit=4)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    samples[1] = Sample(id="broken", image=str(broken), question=samples[1].question, target=samples[1].target)
    result = evaluate_benchmark(model, processor, easyvqa, samples, batch_size=2)
    assert result.errors == 1 and result.samples == 4
    errors = [r for r in result.records if r.error]
    assert [r.id for r in errors] == ["broken"] and "image" in errors[0].error
    assert all(r.prediction is not None for r in result.records if r.id != "broken")


def test_more_prefill_tokens_cost_more_flops(tiny):
    model, processor = tiny
    low = evaluate(model, processor, ["easyvqa"], prune=PruneConfig(ratio=0.9), limit=2)["easyvqa"]
    high = evaluate(model, processor, ["easyvqa"], prune=PruneConfig(ratio=0.0), limit=2)["easyvqa"]
    assert low.tflops_fastv < high.tflops_fastv
    assert low.visual_tokens_kept < high.visual_tokens_kept


def test_cli_eval_prints_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "result.json"
    code = main(["eval", "--model", "tiny", "--benchmarks", "easyvqa", "--ratio", "0.5", "--limit", "3",
                 "--device", "cpu", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "easyvqa" in printed and "exact_match" in printed and "samples/s" in printed
    saved = json.loads(out.read_text())["easyvqa"]
    assert saved["prune"]["ratio"] == 0.5 and len(saved["records"]) == 3


@pytest.mark.parametrize("argv,message", [
    (["--ratio", "1.2"], "ratio=1.2"),
    (["--threshold", "0"], "threshold=0"),
    (["--benchmarks", "nope"], "benchmark 'nope' is unknown"),
    (["--model", "/no/such/dir"], "does not exist"),
])
def test_cli_bad_input_fails_with_a_clear_message(argv, message, capsys):
    assert main(["eval", "--limit", "1", "--device", "cpu", *argv]) == 2
    assert message in capsys.readouterr().err
