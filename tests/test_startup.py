"""A sweep that cannot run says why in one line, within seconds, and leaves no MLflow run behind: a tracking
store that is not what its URI says, a Ray address nobody answers, a storage folder it cannot write, a
deleted experiment holding the name, damaged state on --resume. (Workers that cannot be placed or started
need a Ray cluster: tests/test_sweep.py.)"""

import json
import subprocess
import sys
import tempfile

import pytest
import yaml
from mlflow.tracking import MlflowClient

from cli.main import main
from sweep.reachability import UnreachableError, check_ray_address, check_tracking_store
from sweep.runner import load_saved_spec, run_sweep
from sweep.spec import parse_spec


def spec_dict(name, data_dir, **overrides):
    return {"name": name, "model": "tiny", "benchmarks": ["pope"], "limit": 2, "data_dir": str(data_dir),
            "search_space": {"ratio": [0.5]}, **overrides}


def test_a_sqlite_uri_naming_a_folder_or_another_kind_of_file_is_refused(tmp_path):
    with pytest.raises(UnreachableError, match="is a folder; give the SQLite file's path in it"):
        check_tracking_store(f"sqlite:///{tmp_path}")
    other = tmp_path / "notes.txt"
    other.write_text("not a database")
    with pytest.raises(UnreachableError, match="notes.txt is not a SQLite database"):
        check_tracking_store(f"sqlite:///{other}")
    check_tracking_store(f"sqlite:///{tmp_path / 'new.db'}")  # a new file is fine: MLflow creates it


def test_a_database_whose_driver_is_not_installed_is_named():
    with pytest.raises(UnreachableError, match="its database driver is not installed"):
        check_tracking_store("mysql://user@127.0.0.1:1/mlflow")


def test_a_web_server_that_is_not_mlflow_is_refused(tmp_path, servers):
    free_port, wait_until_healthy = servers
    (tmp_path / "health").write_text("OK")  # it answers /health, as MLflow does
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/health", server, "http.server")
        with pytest.raises(UnreachableError, match="answers, but not as an MLflow server"):
            check_tracking_store(f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_address_auto_without_a_cluster_and_an_address_nobody_answers(monkeypatch, tmp_path):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # no `ray start` bootstrap file here
    with pytest.raises(UnreachableError, match="--address auto: no Ray cluster is running on this machine"):
        check_ray_address("auto")
    with pytest.raises(UnreachableError, match="Ray address 127.0.0.1:1 is unreachable"):
        check_ray_address("127.0.0.1:1", timeout=2)


def runs_in(uri):
    client = MlflowClient(uri)
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


def test_the_cli_says_an_unreachable_address_in_one_line_and_creates_no_run(fixtures_dir, tmp_path, capsys,
                                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump(spec_dict("far", fixtures_dir)))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["sweep", str(sweep), "--tracking-uri", uri, "--address", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Ray address 127.0.0.1:1 is unreachable" in err
    assert not (tmp_path / "mlflow.db").exists() or not runs_in(uri)


def test_a_deleted_experiment_holding_the_name_says_how_to_restore_it(fixtures_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.delete_experiment(client.create_experiment("gone"))
    with pytest.raises(ValueError, match="was deleted and still holds the name: restore it .*mlflow experiments "
                                         "restore --experiment-id"):
        run_sweep(parse_spec(spec_dict("gone", fixtures_dir)), tracking_uri=uri)
    assert not runs_in(uri)


def test_a_storage_folder_that_cannot_be_written_is_said_before_any_run(fixtures_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("x")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(ValueError, match="storage .*a-file/sweeps: Not a directory .* cannot keep its state there"):
        run_sweep(parse_spec(spec_dict("nowhere", fixtures_dir, storage=str(tmp_path / "a-file" / "sweeps"))),
                  tracking_uri=uri)
    assert not runs_in(uri)


def test_damaged_state_on_resume_is_named_never_replaced_by_a_fresh_search(fixtures_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / ".sweeps" / "cut"
    folder.mkdir(parents=True)
    state = folder / "sweep.json"
    state.write_text('{"spec": {"name": "cu')  # truncated
    with pytest.raises(ValueError, match="sweep.json is damaged .*cannot be resumed"):
        load_saved_spec("cut")
    state.write_text(json.dumps({"spec": spec_dict("cut", fixtures_dir), "parent_run_id": "x"}))
    (folder / "experiment_state-2026-11-28_00-00-00.json").write_text('{"trial_data": [')  # the disk filled
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(ValueError, match="Tune's state .*experiment_state-2026-11-28_00-00-00.json is damaged"):
        run_sweep(load_saved_spec("cut"), tracking_uri=uri, resume=True)
    assert not runs_in(uri)
