"""Regression suites: pinned on this build they pass on this build; a broken selection fails them with the
failing metrics and flipped samples named; changed data is not comparable, never a regression."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from cli.main import main

pytestmark = pytest.mark.slow  # the tiny model evaluates each suite in full, several times


@pytest.fixture
def suite_file(fixtures_dir, tmp_path):
    import shutil

    data = tmp_path / "data"
    for name in ("textvqa", "pope"):
        shutil.copytree(fixtures_dir / name, data / name)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({
        "name": "nightly", "model": "tiny", "benchmarks": ["textvqa", "pope"], "samples": 12, "data_dir": str(data),
        "batch_size": 4, "max_new_tokens": 8, "configs": [{"method": "random", "ratio": 0.5}, {"method": "pool",
                                                                                               "ratio": 0.7}],
        "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}}))
    return path


def runs(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("regress-nightly")
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def test_pinned_on_this_build_it_passes_and_a_broken_selection_fails(suite_file, tmp_path, monkeypatch, capsys):
    assert main(["regress", str(suite_file), "--pin"]) == 0
    reference = json.loads((tmp_path / "nightly.reference.json").read_text())
    assert set(reference["results"]) == {"method=random ratio=0.5", "method=pool ratio=0.7"}

    assert main(["regress", str(suite_file)]) == 0  # the same build: every answer the same
    assert "verdict: passed" in capsys.readouterr().out

    import gprune.budget

    original = gprune.budget.reduce_tokens

    def blind(*args, **kwargs):  # the injected bug: the right tokens are chosen, their features lost
        indices, tokens = original(*args, **kwargs)
        return indices, torch.zeros_like(tokens)

    monkeypatch.setattr(gprune.budget, "reduce_tokens", blind)
    assert main(["regress", str(suite_file)]) == 1
    out = capsys.readouterr().out
    assert "verdict: regressed:" in out and "textvqa.exact_match" in out and "REGRESSED" in out
    last = runs(tmp_path)[-1]
    assert last.data.tags["gprune.regress.verdict"].startswith("regressed: ")
    assert "textvqa.exact_match" in last.data.tags["gprune.regress.verdict"]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    logged = json.loads(Path(client.download_artifacts(last.info.run_id, "regress.json")).read_text())
    failing = [c for c in logged["comparisons"] if c["regressed"]]
    assert failing and all(c["flips"] for c in failing)  # the samples whose answers flipped are listed


def test_changed_data_is_not_comparable_rather_than_a_regression(suite_file, tmp_path, capsys):
    assert main(["regress", str(suite_file), "--pin"]) == 0
    parquet = next((tmp_path / "data" / "pope").rglob("*.parquet"))
    table = pq.read_table(parquet)
    pq.write_table(table.slice(1), parquet)  # one row fewer: other data
    assert main(["regress", str(suite_file)]) == 4
    out = capsys.readouterr().out
    assert "not comparable: the data changed" in out and "regressed" not in out
    assert runs(tmp_path)[-1].data.tags["gprune.regress.verdict"].startswith("not comparable")


def test_a_suite_without_a_reference_says_how_to_pin_one(suite_file, capsys):
    assert main(["regress", str(suite_file)]) == 2
    assert "run the suite once with --pin" in capsys.readouterr().err


def test_a_suite_logged_through_an_mlflow_server_leaves_its_artifacts_on_the_server(suite_file, mlflow_server,
                                                                                      tmp_path):
    uri, server_artifacts = mlflow_server
    assert main(["regress", str(suite_file), "--pin", "--tracking-uri", uri]) == 0
    assert main(["regress", str(suite_file), "--tracking-uri", uri]) == 0
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("regress-nightly")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # proxied, not a client's disk
    for run in client.search_runs([experiment.experiment_id]):
        logged = json.loads(Path(client.download_artifacts(run.info.run_id, "regress.json",
                                                           str(tmp_path / run.info.run_id))).read_text())
        assert logged["verdict"].startswith("passed (") or logged["verdict"] == \
            f"pinned as the reference: {tmp_path / 'nightly.reference.json'}"
    assert list(server_artifacts.rglob("regress.json"))  # they live where the server keeps them


@pytest.mark.parametrize("content,message", [
    ("{not json", "is not JSON"),
    ("{}", "is not a pinned reference (it needs suite, context and results)"),
    ('{"suite": {}, "context": {}, "results": {}}', "was pinned by an older build (format 1"),
])
def test_a_damaged_or_old_reference_is_named_with_the_fix(content, message, tmp_path):
    from sweep.regress import read_reference

    path = tmp_path / "nightly.reference.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="pin it again with --pin") as error:
        read_reference(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_a_regression_run_whose_process_died_mid_write_is_closed_by_the_next(suite_file, tmp_path, capsys):
    """`gprune regress` killed inside its MLflow run leaves it RUNNING; the next run of the suite closes it."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import json; from sweep.driver import identity; "
                           "print(json.dumps(identity()))"], capture_output=True, text=True, check=True).stdout
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    abandoned = client.create_run(client.create_experiment("regress-nightly"), tags={"gprune.driver": dead.strip()})
    assert main(["regress", str(suite_file), "--pin"]) == 0
    assert client.get_run(abandoned.info.run_id).info.status == "KILLED"
    assert f"closed run {abandoned.info.run_id} as KILLED" in capsys.readouterr().out
    assert all(r.info.status != "RUNNING" for r in runs(tmp_path))


def test_another_model_or_code_revision_is_not_comparable_unless_asked_and_a_small_suite_says_what_it_can_catch(
        suite_file, tmp_path, capsys):
    """The model swapped for its random-weight twin collapses POPE; compared with the tiny model's reference that is
    not comparable (never "passed"). A reference of another commit is compared only when the suite asks (a nightly
    suite does), and 12 samples a benchmark can only confirm a change of 4 of them, which the verdict says."""
    assert main(["regress", str(suite_file), "--pin"]) == 0
    suite = yaml.safe_load(suite_file.read_text())
    suite_file.write_text(yaml.safe_dump({**suite, "model": "tiny-random"}))
    assert main(["regress", str(suite_file)]) == 4
    out = capsys.readouterr().out
    assert "not comparable: the model changed (tiny " in out and "-> tiny-random " in out, out
    suite_file.write_text(yaml.safe_dump(suite))
    reference_path = tmp_path / "nightly.reference.json"
    reference = json.loads(reference_path.read_text())
    reference["context"]["code"] = "0" * 40
    reference_path.write_text(json.dumps(reference))
    assert main(["regress", str(suite_file)]) == 4
    assert f"not comparable: the code changed (commit {'0' * 40} ->" in capsys.readouterr().out
    assert main(["regress", str(suite_file), "--across", "code"]) == 0
    out = capsys.readouterr().out
    assert "verdict: passed (" in out and "pope: 12 units: only a change of at least 4 of them (33%) can fail" in out
