"""The evaluation runner and `gprune eval` on the fixtures and the real easy-VQA test split."""

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli.main import main
from gprune import PruneConfig, evaluate, image_layout
from gprune.benchmarks import TASKS, load_task
from gprune.evaluation import aggregate, evaluate_task
from gprune.tasks.local import DataLayoutError

LMMS_EVAL_METRICS = {
    "gqa": {"exact_match"}, "vqav2": {"exact_match"}, "textvqa": {"exact_match"}, "easyvqa": {"exact_match"},
    "mme": {"mme_perception_score"},  # the first 16 fixture rows are perception categories
    "pope": {"pope_accuracy", "pope_precision", "pope_recall", "pope_f1_score", "pope_yes_ratio"},
    "mmbench": {"gpt_eval_score"}, "docvqa": {"anls"},
    "chartqa": {"relaxed_overall", "relaxed_human_split", "relaxed_augmented_split"},
}


def test_cli_runs_all_nine_benchmarks(fixtures_dir, tmp_path, capsys):
    out = tmp_path / "all.json"
    code = main(["eval", "--benchmarks", "all", "--data-dir", str(fixtures_dir), "--limit", "4", "--batch-size", "2",
                 "--ratio", "0.7", "--max-new-tokens", "6", "--device", "cpu", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert set(saved) == set(TASKS)
    for name, result in saved.items():
        assert name in printed
        assert set(result["metrics"]) == LMMS_EVAL_METRICS[name], name
        assert result["errors"] == 0 and result["samples"] == 4 and len(result["records"]) == 4
        assert 0 < result["visual_tokens_kept"] < result["visual_tokens_full"]
        assert result["tflops_exact"] > result["tflops_fastv"] > 0
    assert "NO GPT judge" in printed  # MMBench's scoring is labelled


def test_batch_of_four_gives_the_predictions_of_batch_one(tiny, fixtures_dir):
    model, processor = tiny
    for name in ("gqa", "docvqa", "chartqa", "mmbench"):
        one, four = (evaluate(model, processor, [name], prune=PruneConfig(ratio=0.5), limit=6, batch_size=b,
                              data_dir=fixtures_dir, max_new_tokens=6)[name] for b in (1, 4))
        assert [r.prediction for r in four.records] == [r.prediction for r in one.records], name
        assert four.metrics == one.metrics


def corrupt_one_image(source, target, row):
    table = pq.read_table(source)
    images = table.column("image").to_pylist()
    images[row] = {"bytes": b"\x89PNG\r\n\x1a\n definitely not an image", "path": None}
    index = table.schema.get_field_index("image")
    field = table.schema.field(index)
    pq.write_table(table.set_column(index, field, pa.array(images, type=field.type)), target)


def test_one_corrupt_image_is_one_error_and_the_rest_still_count(tiny, fixtures_dir, tmp_path):
    model, processor = tiny
    clean_dir = tmp_path / "clean"
    shutil.copytree(fixtures_dir / "textvqa", clean_dir / "textvqa")
    broken_dir = tmp_path / "broken"
    (broken_dir / "textvqa" / "data").mkdir(parents=True)
    parquet = "textvqa/data/validation-00000-of-00001.parquet"
    corrupt_one_image(clean_dir / parquet, broken_dir / parquet, row=2)

    clean = evaluate(model, processor, ["textvqa"], PruneConfig(ratio=0.7), limit=6, batch_size=3,
                     data_dir=clean_dir, max_new_tokens=6)["textvqa"]
    broken = evaluate(model, processor, ["textvqa"], PruneConfig(ratio=0.7), limit=6, batch_size=3,
                      data_dir=broken_dir, max_new_tokens=6)["textvqa"]
    assert broken.errors == 1 and broken.samples == 6
    assert broken.records[2].error.startswith("data:") and broken.records[2].prediction is None
    kept = [i for i in range(6) if i != 2]
    assert [broken.records[i].prediction for i in kept] == [clean.records[i].prediction for i in kept]
    expected, _ = aggregate(load_task("textvqa", clean_dir), [clean.records[i] for i in kept])
    assert broken.metrics == expected


def test_missing_data_fails_before_any_model_work(tmp_path, capsys):
    # the model path does not exist either: the data error must come first
    code = main(["eval", "--model", str(tmp_path / "no-model"), "--benchmarks", "textvqa,gqa",
                 "--data-dir", str(tmp_path)])
    assert code == 2
    error = capsys.readouterr().err
    assert "textvqa" in error and "gqa" in error  # every problem listed
    assert str(tmp_path / "textvqa") in error and "data/validation-*.parquet" in error and "lmms-lab/textvqa" in error
    assert "no-model" not in error


def test_wrongly_laid_out_data_names_benchmark_path_and_layout(tiny, fixtures_dir, tmp_path):
    model, processor = tiny
    misplaced = tmp_path / "pope"
    misplaced.mkdir()
    shutil.copy(fixtures_dir / "pope" / "data" / "test-00000-of-00001.parquet", misplaced / "test.parquet")
    with pytest.raises(DataLayoutError, match=r"pope.*no files match data/test-\*\.parquet under .*pope"):
        evaluate(model, processor, ["pope"], data_dir=tmp_path)


def test_easyvqa_reports_metrics_flops_and_throughput(tiny):
    model, processor = tiny
    result = evaluate(model, processor, ["easyvqa"], prune=PruneConfig(ratio=0.7), limit=6, batch_size=3)["easyvqa"]
    assert result.samples == 6 and result.errors == 0
    layout = image_layout(model.config, (64, 64))  # easy-VQA images are 64x64
    assert result.visual_tokens_kept == layout.kept(0.7) and result.visual_tokens_full == layout.full
    assert result.samples_per_s > 0 and result.prefill_latency_ms > 0
    assert result.throughput["batch_size"] == 3 and result.throughput["device"] == "cpu"
    assert result.records[0].target == load_task("easyvqa").test_docs()[0]["answer"]


def test_more_visual_tokens_cost_more_flops(tiny):
    model, processor = tiny
    low = evaluate(model, processor, ["easyvqa"], prune=PruneConfig(ratio=0.9), limit=2, max_new_tokens=4)["easyvqa"]
    high = evaluate(model, processor, ["easyvqa"], prune=PruneConfig(ratio=0.0), limit=2, max_new_tokens=4)["easyvqa"]
    assert low.tflops_fastv < high.tflops_fastv and low.visual_tokens_kept < high.visual_tokens_kept


@pytest.mark.parametrize("argv,message", [
    (["--ratio", "1.2"], "ratio=1.2"),
    (["--threshold", "0"], "threshold=0"),
    (["--benchmarks", "nope"], "'nope' unknown"),
    (["--model", "/no/such/dir"], "does not exist"),
])
def test_cli_bad_input_fails_with_a_clear_message(argv, message, capsys):
    assert main(["eval", "--limit", "1", "--device", "cpu", *argv]) == 2
    assert message in capsys.readouterr().err


def test_evaluate_task_reads_the_task_generation_kwargs(tiny, fixtures_dir):
    model, processor = tiny
    task = load_task("gqa", fixtures_dir)
    result = evaluate_task(model, processor, task, limit=2)
    assert all(r.generated_tokens <= task.config.generation_kwargs["max_new_tokens"] for r in result.records)
