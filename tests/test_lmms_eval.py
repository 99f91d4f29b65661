"""`gprune_llava_next` as an lmms-eval model: registered by entry point, run by lmms-eval's own CLI
and evaluator on our local tasks, batched with results identical to batch 1."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from cli.main import main
from gprune import image_layout
from gprune.benchmarks import load_task
from gprune.lmms_model import GPruneModel
from gprune.tasks import TASKS_DIR


@pytest.mark.slow  # lmms-eval's CLI in a subprocess
def test_lmms_eval_cli_runs_a_local_task_end_to_end(fixtures_dir, tmp_path):
    env = {**os.environ, "GPRUNE_DATA_DIR": str(fixtures_dir)}
    command = [sys.executable, "-m", "lmms_eval", "--model", "gprune_llava_next",
               "--model_args", "pretrained=tiny,method=gprune,ratio=0.7,device=cpu,max_new_tokens=8",
               "--tasks", "textvqa_val_local,pope_local", "--include_path", str(TASKS_DIR), "--limit", "4",
               "--batch_size", "2", "--output_path", str(tmp_path / "out"), "--log_samples"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results_file = next((tmp_path / "out").rglob("*_results.json"))
    results = json.loads(results_file.read_text())["results"]
    assert "exact_match,none" in results["textvqa_val_local"]
    assert {"pope_accuracy,none", "pope_f1_score,none"} <= set(results["pope_local"])
    samples = next((tmp_path / "out").rglob("*_samples_textvqa_val_local.jsonl")).read_text().splitlines()
    assert len(samples) == 4


@pytest.mark.slow  # lmms-eval's CLI in a subprocess
@pytest.mark.parametrize("family,alias", [("llava15", "gprune_llava"), ("qwen25vl", "gprune_qwen2_5_vl"),
                                          ("onevision", "gprune_llava_onevision")])
def test_lmms_eval_cli_runs_each_family_under_its_own_name(fixtures_dir, tmp_path, family, alias):
    from testbed import tiny

    model, processor = getattr(tiny, f"build_{family}")(seed=5)
    model.save_pretrained(tmp_path / family)
    processor.save_pretrained(tmp_path / family)
    env = {**os.environ, "GPRUNE_DATA_DIR": str(fixtures_dir)}
    command = [sys.executable, "-m", "lmms_eval", "--model", alias,
               "--model_args", f"pretrained={tmp_path / family},method=gprune,ratio=0.75,device=cpu,max_new_tokens=4",
               "--tasks", "pope_local", "--include_path", str(TASKS_DIR), "--limit", "4", "--batch_size", "2",
               "--output_path", str(tmp_path / "out")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(next((tmp_path / "out").rglob("*_results.json")).read_text())["results"]["pope_local"]
    assert "pope_f1_score,none" in results


@pytest.mark.slow  # lmms-eval's CLI in a subprocess
def test_lmms_eval_pairs_its_run_with_ours_and_ours_with_its(fixtures_dir, tmp_path, capsys):
    """Our records as lmms-eval's samples file: its `--baseline` reads them as it reads its own; its samples
    file as `gprune regress`'s reference: the same config on the same data passes."""
    ours = tmp_path / "ours"
    assert main(["eval", "--model", "tiny", "--benchmarks", "pope", "--data-dir", str(fixtures_dir), "--limit", "8",
                 "--log-samples", str(ours)]) == 0
    our_file = next(ours.glob("*_samples_pope_local.jsonl"))
    env = {**os.environ, "GPRUNE_DATA_DIR": str(fixtures_dir)}
    command = [sys.executable, "-m", "lmms_eval", "--model", "gprune_llava_next",
               "--model_args", "pretrained=tiny,device=cpu", "--tasks", "pope_local", "--include_path", str(TASKS_DIR),
               "--limit", "8", "--output_path", str(tmp_path / "out"), "--log_samples", "--baseline", str(our_file)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(next((tmp_path / "out").rglob("*_results.json")).read_text())["results"]["pope_local"]
    their_file = next((tmp_path / "out").rglob("*_samples_pope_local.jsonl"))
    from lmms_eval.baselines.loader import load_baseline

    ours_as_lmms_eval_reads_it, _ = load_baseline(str(our_file), "pope_local")
    theirs_as_lmms_eval_reads_it, _ = load_baseline(str(their_file), "pope_local")
    assert ours_as_lmms_eval_reads_it == theirs_as_lmms_eval_reads_it and len(theirs_as_lmms_eval_reads_it) == 8
    assert results["paired_baseline_score"] == pytest.approx(results["pope_accuracy,none"] * 100)

    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "versus-lmms-eval", "benchmarks": ["pope"], "samples": 8,
                                     "data_dir": str(fixtures_dir), "configs": [{"method": "gprune", "ratio": 0.0}],
                                     "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}}))
    capsys.readouterr()
    assert main(["regress", str(suite), "--lmms-eval-reference", str(their_file)]) == 0
    out = capsys.readouterr().out
    assert "pope_f1_score" in out and "verdict: passed" in out


@pytest.fixture(scope="module")
def lmms_model():
    return GPruneModel(pretrained="tiny", ratio=0.7, device="cpu", max_new_tokens=6)


def requests_for(task, limit):
    task.build_all_requests(limit=limit, rank=0, world_size=1)
    return [instance for instance in task.instances]


def test_generate_until_batches_like_batch_one_and_records_tokens(lmms_model, fixtures_dir):
    task = load_task("docvqa", fixtures_dir)
    lmms_model.task_dict = {task.config.task: task.dataset}
    answers = {}
    for batch_size in (1, 4):
        lmms_model.batch_size = batch_size
        lmms_model.records.clear()
        answers[batch_size] = lmms_model.generate_until(requests_for(task, 6))
    assert answers[4] == answers[1] and len(answers[1]) == 6
    docs = task.test_docs()
    for record, instance in zip(lmms_model.records, requests_for(task, 6)):
        image = docs[instance.doc_id]["image"]
        layout = image_layout(lmms_model.model.config, (image.height, image.width))
        assert record["visual_tokens_kept"] == layout.kept(0.7)


def test_model_stays_resident_after_lmms_eval_cleans_up(lmms_model):
    lmms_model.clean()
    assert lmms_model.model is not None


def test_loglikelihood_names_why_it_is_not_supported(lmms_model):
    with pytest.raises(NotImplementedError, match="generate_until tasks only"):
        lmms_model.loglikelihood([])


def test_unknown_model_args_are_rejected():
    with pytest.raises(ValueError, match="unknown model_args \\['ratoi'\\]"):
        GPruneModel(pretrained="tiny", ratoi=0.5)
