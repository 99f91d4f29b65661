"""Sweep state that holds: two sweeps starting together on a new SQLite file, child runs cut off mid-write,
plain resume names, and a sweep's own Ray cluster closed to clients without its token."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cli.main import main

REPO = Path(__file__).resolve().parents[1]

START = """
import sys
from sweep.tracking import SweepTracker
tracker = SweepTracker(sys.argv[1], sys.argv[2])
tracker.start({"model": "tiny"}, {})
tracker.log_child("trial-0", "gprune 50%", {"ratio": 0.5}, {"objective": 1.0}, {})
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
    run_id = tracker.log_child("t1", "gprune 50%", {"ratio": 0.5}, {"objective": 0.9}, {})
    assert tracker.children() == {"t1": run_id} and len(tracker.trials()) == 1
    old = client.get_run(half.info.run_id)
    assert old.info.status == "FAILED" and old.data.tags["gprune.superseded"] == "true"
    assert client.get_run(run_id).data.tags[LOGGED] == "true"
    assert tracker.log_child("t1", "again", {}, {}, {}) is None  # exactly once


DRIVER = """
import json, sys
from sweep import driver
from sweep.tracking import SweepTracker
tracker = SweepTracker(sys.argv[1], "reused")
tracker.start({}, {})
tracker.client.create_run(tracker.experiment_id, tags={  # a child it is writing when it dies
    "mlflow.parentRunId": tracker.parent_id, "gprune.trial_id": "t1", "gprune.role": "trial"})
state = {"spec": {"tracking": {"uri": sys.argv[1]}}, "parent_run_id": tracker.parent_id, "driver": driver.identity()}
open(sys.argv[2], "w").write(json.dumps(state))
print(tracker.parent_id, flush=True)
sys.stdin.readline()  # alive until killed
"""


def test_a_new_sweep_under_a_name_refuses_a_live_driver_and_closes_a_dead_ones_runs(tmp_path):
    from sweep.runner import set_aside
    from sweep.tracking import SweepTracker

    uri, folder = f"sqlite:///{tmp_path / 'm.db'}", tmp_path / ".sweeps" / "reused"
    folder.mkdir(parents=True)
    earlier = subprocess.Popen([sys.executable, "-c", DRIVER, uri, str(folder / "sweep.json")], cwd=REPO,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    parent = earlier.stdout.readline().strip()
    tracker, said = SweepTracker(uri, "reused"), []
    with pytest.raises(ValueError, match=f"a sweep named 'reused' is running now \\(pid {earlier.pid} on this "):
        set_aside(folder, tracker, said.append)
    assert folder.exists() and tracker.client.get_run(parent).info.status == "RUNNING"

    earlier.kill()  # SIGKILL: nothing of the driver runs after it
    earlier.wait(timeout=30)
    set_aside(folder, tracker, said.append)
    assert not folder.exists() and len(list(folder.parent.glob("reused.*"))) == 1  # kept, renamed
    run = tracker.client.get_run(parent)
    assert run.info.status == "KILLED" and run.data.tags["gprune.abandoned"] == "true"
    child = tracker.client.search_runs([run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'")[0]
    assert child.info.status == "FAILED" and child.data.tags["gprune.superseded"] == "true"
    assert said == [f"closed run {parent} of the earlier sweep 'reused' as KILLED: its driver died and left it "
                    "RUNNING, and a new sweep under the name cannot resume it"]


def test_resume_takes_a_plain_name_not_a_path(capsys):
    assert main(["sweep", "--resume", "../../etc"]) == 2
    assert "give a sweep's name" in capsys.readouterr().err


PROBE = """
import ray
try:
    ray.init(address=%r, log_to_driver=False)
    print("CONNECTED")
except Exception as error:
    print("REFUSED", type(error).__name__)
"""

OWN_CLUSTER = """
import os, subprocess, sys
from cli.main import private_ray_auth
private_ray_auth(["sweep", "my-sweep.yaml"])  # as `gprune sweep my-sweep.yaml` does first
from sweep.runner import connect
connect(None)
import ray
print("MODE", os.environ["RAY_AUTH_MODE"])
address = ray.get_runtime_context().gcs_address
stranger = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_TOKEN"}
stranger["RAY_AUTH_MODE"] = "disabled"
probe = subprocess.run([sys.executable, "-c", %r %% address], env=stranger, capture_output=True, text=True, timeout=120)
print(probe.stdout)
ray.shutdown()
"""


@pytest.mark.slow
def test_a_sweeps_own_ray_cluster_refuses_clients_without_its_token():
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    done = subprocess.run([sys.executable, "-c", OWN_CLUSTER % PROBE], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert "MODE token" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    assert "REFUSED" in done.stdout and "CONNECTED" not in done.stdout, done.stdout[-2000:]


def test_an_unreachable_server_is_given_up_after_the_patience_and_a_refusal_at_once(tmp_path, monkeypatch, servers):
    """Real clients: a server port nobody listens on (waited out, then one message) and a SQLite store that
    refuses a run it does not have (raised at once). The waiting-out of a real outage: test_sweep.py."""
    from mlflow.exceptions import MlflowException

    from sweep.outages import PatientClient, TrackingUnavailable

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own retries off: ours are tested
    free_port, _ = servers
    said = []
    away = PatientClient(MlflowClient(f"http://127.0.0.1:{free_port()}"), "the server", patience=2, say=said.append)
    with pytest.raises(TrackingUnavailable, match="unreachable for 2 s .*--resume"):
        away.search_experiments()
    assert len(said) == 1 and "unreachable" in said[0]  # one line for the outage, not one per attempt
    store = PatientClient(MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}"), "sqlite", patience=60)
    with pytest.raises(MlflowException, match="not found"):
        store.get_run("0" * 32)


def test_a_sweep_says_at_once_that_its_tracking_server_is_away(monkeypatch, servers, capsys):
    """MLflow's HTTP client would retry a refused connection for about two minutes, silently; a sweep's tracker
    turns that off, so its own wait says the outage in its first second."""
    from sweep.outages import TrackingUnavailable
    from sweep.tracking import SweepTracker

    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    free_port, _ = servers
    tracker = SweepTracker(f"http://127.0.0.1:{free_port()}", "away", outage_seconds=2)
    with pytest.raises(TrackingUnavailable, match="unreachable for 2 s"):
        tracker.client.search_experiments()
    assert capsys.readouterr().err.count("unreachable (") == 1
