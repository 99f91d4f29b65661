"""MLflow tracking that holds under concurrency: two sweeps starting together on a new SQLite file."""

import os
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

from cli.main import main

REPO = Path(__file__).resolve().parents[1]

START = """
import sys
from sweep.tracking import SweepTracker
tracker = SweepTracker(sys.argv[1], sys.argv[2])
tracker.start({"model": "tiny"}, {})
tracker.log_child("trial-0", "gprune 50%", {"ratio": 0.5}, {"objective": 1.0}, {}, records={"pope": []})
tracker.finish("FINISHED")
"""


def test_two_sweeps_starting_together_on_a_new_sqlite_file_both_log(tmp_path):
    uri = f"sqlite:///{tmp_path / 'new.db'}"
    env_python = [sys.executable, "-c", START, uri]
    both = [subprocess.Popen([*env_python, name], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
            for name in ("first", "second")]
    outputs = [p.communicate(timeout=300)[0] for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    client = MlflowClient(uri)
    for name in ("first", "second"):
        runs = client.search_runs([client.get_experiment_by_name(name).experiment_id])
        assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"]  # the parent and its trial


def test_a_child_run_cut_off_mid_write_does_not_count_and_is_replaced(tmp_path):
    from sweep.tracking import LOGGED, SweepTracker

    tracker = SweepTracker(f"sqlite:///{tmp_path / 'm.db'}", "cut")
    tracker.start({}, {})
    client = tracker.client
    half = client.create_run(tracker.experiment_id, tags={  # what a driver killed mid-write leaves
        "mlflow.parentRunId": tracker.parent_id, "gprune.trial_id": "t1", "gprune.role": "trial"})
    assert tracker.children() == {} and tracker.trials() == []
    run_id = tracker.log_child("t1", "gprune 50%", {"ratio": 0.5}, {"objective": 0.9}, {}, records={})
    assert tracker.children() == {"t1": run_id} and len(tracker.trials()) == 1
    old = client.get_run(half.info.run_id)
    assert old.info.status == "FAILED" and old.data.tags["gprune.superseded"] == "true"
    assert client.get_run(run_id).data.tags[LOGGED] == "true"
    assert tracker.log_child("t1", "again", {}, {}, {}) is None  # exactly once


def test_resume_takes_a_plain_name_not_a_path(capsys):
    assert main(["sweep", "--resume", "../../etc"]) == 2
    assert "give a sweep's name" in capsys.readouterr().err
