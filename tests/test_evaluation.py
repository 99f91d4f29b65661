"""The evaluation runner and `gprune eval` on the fixtures and the real easy-VQA test split."""

import json
import shutil
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from cli.main import main
from gprune import PruneConfig, evaluate, image_layout, set_prune
from gprune.benchmarks import TASKS, load_task
from gprune.evaluation import aggregate, evaluate_task, process_results
from gprune.generation import generate_batch
from gprune.tasks import DataLayoutError
from gprune.tasks.rows import read_sample

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



def test_the_runner_reads_and_processes_each_batch_on_its_lookahead_thread(tiny, fixtures_dir):
    """Host work (rows, images, the processor) runs one batch ahead on a thread, the model on the caller's, and the
    answers are those of the batches run one after the other (generate_batch, as the lmms-eval model runs them).
    On a CPU (the default there) no thread: the host is the device, nothing to overlap."""
    model, processor = tiny
    set_prune(model, processor, PruneConfig(ratio=0.5))
    task, threads = load_task("gqa", fixtures_dir), []
    plain = type(processor)

    def recorded(self, *args, **kwargs):
        threads.append(threading.current_thread().name)
        return plain.__call__(self, *args, **kwargs)

    processor.__class__ = type("Recorded", (plain,), {"__call__": recorded})  # as set_prune swaps classes
    try:
        inline = evaluate_task(model, processor, task, limit=6, batch_size=2, max_new_tokens=6)
        assert threads == ["MainThread"] * 3
        threads.clear()
        result = evaluate_task(model, processor, task, limit=6, batch_size=2, max_new_tokens=6, lookahead=True)
    finally:
        processor.__class__ = plain
    assert len(threads) == 3 and all(name.startswith("gprune-lookahead") for name in threads)
    assert [r.results for r in result.records] == [r.results for r in inline.records]
    docs = task.test_docs()
    for start in (0, 2, 4):
        rows = [read_sample(task, docs, index, task.local_folder) for index in (start, start + 1)]
        alone = generate_batch(model, processor, [r[1] for r in rows], [r[2] for r in rows],
                               task.config.generation_kwargs, max_new_tokens=6)
        scored = [process_results(task, r[0], [text]) for r, text in zip(rows, alone.texts)]
        assert [r.results for r in result.records[start : start + 2]] == scored


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
    # the failed sample counts, as an empty (wrong) answer: 6 in the denominator, not 5
    assert broken.records[2].score == 0 and broken.records[2].target == clean.records[2].target
    assert broken.error_rate == 1 / 6 and broken.unscored == 0
    task = load_task("textvqa", clean_dir)
    assert broken.metrics == aggregate(task, [clean.records[i] for i in kept] + [broken.records[2]])[0]
    assert broken.metrics["exact_match"] < aggregate(task, [clean.records[i] for i in kept])[0]["exact_match"]


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


def test_a_corrupt_image_in_row_zero_is_one_error_record_not_a_failed_benchmark(tiny, fixtures_dir, tmp_path):
    model, processor = tiny
    for name, parquet in (("textvqa", "textvqa/data/validation-00000-of-00001.parquet"),
                          ("gqa", None)):
        shutil.copytree(fixtures_dir / name, tmp_path / name)
        if parquet is None:  # GQA joins its images from a second file: break the first image there
            parquet = str(next((tmp_path / name).rglob("testdev_balanced_images/*.parquet")).relative_to(tmp_path))
        corrupt_one_image(tmp_path / parquet, tmp_path / parquet, row=0)
        result = evaluate(model, processor, [name], PruneConfig(ratio=0.5), limit=4, batch_size=2,
                          data_dir=tmp_path, max_new_tokens=4)[name]
        assert result.samples == 4 and result.errors >= 1, name
        assert result.records[0].error.startswith("data:") and result.records[0].score == 0, name
        assert result.errors < 4 and result.metrics, name  # the other samples were evaluated and scored


@pytest.mark.parametrize("config,message", [
    ({"model_type": "bert", "hidden_size": 8}, "holds a 'bert' model"),
    ({"model_type": "llava_next"}, "no weights"),
    (None, "holds no config.json"),
])
def test_a_folder_that_is_not_a_llava_next_checkpoint_fails_before_loading_weights(tmp_path, config, message,
                                                                                   capsys):
    folder = tmp_path / "model"
    folder.mkdir()
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    if config and config["model_type"] == "bert":
        (folder / "model.safetensors").write_bytes(b"garbage: loading these would raise SafetensorError")
    assert main(["eval", "--model", str(folder), "--limit", "1", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(folder) in err and "Traceback" not in err


@pytest.mark.parametrize("argv,message", [
    (["eval", "--device", "tpu", "--limit", "1"], "device='tpu' is not a torch device"),
    (["eval", "--device", "meta", "--limit", "1"], "device='meta' cannot run the model; use cpu, cuda or cuda:N"),
    pytest.param(["eval", "--device", "cuda", "--limit", "1"], "device='cuda': no CUDA GPU is visible on this machine",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")),
    (["eval", "--json", "/proc/no/such/out.json", "--limit", "1"], "--json /proc/no/such: cannot write there"),
    (["eval", "--max-error-rate", "1.5"], "1.5 is not in [0, 1]"),
])
def test_bad_devices_and_outputs_are_one_clear_error(argv, message, capsys, tmp_path):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["fixtures", "--out", str(a_file)]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err


def test_a_prompt_longer_than_the_context_is_one_error_record(tiny):
    from gprune.evaluation import evaluate_task

    model, processor = tiny
    task = load_task("easyvqa")
    docs, original = task.test_docs(), task.doc_to_text
    long_one = docs[1]["question"]
    assert long_one not in (docs[0]["question"], docs[2]["question"])
    task.doc_to_text = lambda doc: original(doc) + (" very" * 3000 if doc["question"] == long_one else "")
    result = evaluate_task(model, processor, task, limit=3, batch_size=3, max_new_tokens=4)
    assert [r.error is None for r in result.records] == [True, False, True]
    assert "exceeds the model's context of 2048 positions" in result.records[1].error


def test_a_damaged_weight_file_is_one_clear_error(tmp_path, capsys):
    from gprune.checkpoints import TINY

    folder = tmp_path / "damaged"
    shutil.copytree(TINY, folder)
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    assert main(["eval", "--model", str(folder), "--limit", "1", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "a weight file is damaged" in err and str(folder) in err


def test_a_run_whose_every_sample_fails_exits_3_with_the_first_error(fixtures_dir, tmp_path, capsys):
    """POPE's answers stored as integers: lmms-eval's scoring fails on each row; the table is printed, then
    one line says which benchmark failed, how much, and its first error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.copytree(fixtures_dir / "pope", tmp_path / "pope")
    parquet = next((tmp_path / "pope").rglob("*.parquet"))
    table = pq.read_table(parquet)
    answers = pa.array([int(a == "yes") for a in table.column("answer").to_pylist()])
    pq.write_table(table.set_column(table.schema.get_field_index("answer"), "answer", answers), parquet)
    assert main(["eval", "--benchmarks", "pope", "--data-dir", str(tmp_path), "--limit", "3"]) == 3
    ours = [line for line in capsys.readouterr().err.splitlines() if line.startswith("gprune:")]
    assert len(ours) == 1 and ours[0].startswith("gprune: error: pope: 3 of 3 samples failed (100% > "
                                                 "--max-error-rate 5%)")
    assert "the first, row 0: data: scoring failed: AttributeError: 'int' object has no attribute 'lower'" in ours[0]


@pytest.mark.parametrize("change", [
    {"hidden_size": 256},  # a config of another model size than its weights
    {"hidden_size": 16384, "num_hidden_layers": 80, "intermediate_size": 53248},  # would allocate ~250 B parameters
])
def test_a_config_that_does_not_match_its_weights_is_refused_before_anything_is_allocated(tmp_path, capsys, change):
    from gprune.checkpoints import TINY

    folder = tmp_path / "mismatched"
    shutil.copytree(TINY, folder)
    config = json.loads((folder / "config.json").read_text())
    config["text_config"].update(change)
    (folder / "config.json").write_text(json.dumps(config))
    assert main(["eval", "--model", str(folder), "--limit", "1", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert f"{folder}: the weights do not match config.json" in err and "Traceback" not in err
