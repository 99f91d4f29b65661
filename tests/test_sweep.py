"""`gprune sweep` on a real local Ray cluster with real MLflow (SQLite and a throwaway PostgreSQL)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import ray
import yaml
from conftest import free_port
from mlflow.tracking import MlflowClient

from dashboards.runs import run_records
from sweep.runner import run_sweep
from sweep.spec import parse_spec
from sweep.storage import BALLAST

pytestmark = pytest.mark.slow  # a Ray cluster, PostgreSQL, subprocesses

REPO = Path(__file__).resolve().parents[1]
SWEPT = {"ratio": ["0.5", "0.9"], "threshold": ["0.3", "0.5"], "iterations": ["1", "5"]}


def sweep_dict(name, data_dir, **overrides):
    """A 2 x 2 x 2 grid over two fixture benchmarks, small enough for CI."""
    return {
        "name": name, "model": "tiny", "benchmarks": ["pope", "textvqa"], "limit": 3, "data_dir": str(data_dir),
        "batch_size": 3, "max_new_tokens": 4, "concurrency": 2,
        "search_space": {"method": "gprune", "ratio": [0.5, 0.9], "threshold": [0.3, 0.5], "iterations": [1, 5]},
        "workers": {"cpus_per_worker": 1, "cache_mb": 64}, **overrides,
    }


@pytest.fixture(scope="module")
def ray_cluster():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def children(uri, name):
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("gprune.role") == "parent"]
    return client, parents, [r for r in runs if r.data.tags.get("mlflow.parentRunId")]


def check_sweep_in_mlflow(uri, name, fixtures_dir):
    client, parents, runs = children(uri, name)
    runs = [r for r in runs if not r.data.tags.get("gprune.superseded")]  # cut off mid-write, closed on resume
    assert len(parents) == 1
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in runs)
    trials = [r for r in runs if r.data.tags["gprune.role"] == "trial"]
    baselines = [r for r in runs if r.data.tags["gprune.role"] == "baseline"]
    assert len(trials) == 8 and len(baselines) == 1
    assert len({r.data.tags["gprune.trial_id"] for r in trials}) == 8
    configs = {(r.data.params["ratio"], r.data.params["threshold"], r.data.params["iterations"]) for r in trials}
    assert configs == {(a, b, c) for a in SWEPT["ratio"] for b in SWEPT["threshold"] for c in SWEPT["iterations"]}
    for run in trials:
        params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
        assert {"method", "temperature", "model", "benchmarks", "limit", "seed"} <= set(params)
        assert params["model"] == "tiny" and params["benchmarks"] == "pope,textvqa"
        assert {"pope.pope_accuracy", "pope.pope_f1_score", "textvqa.exact_match", "tflops_exact", "tflops_fastv",
                "samples_per_s", "speedup", "visual_tokens_kept", "mean_retention", "pope.retention"} <= set(metrics)
        assert 0 < metrics["tflops_exact"] < baselines[0].data.metrics["tflops_exact"]
        assert {"git_commit", "device", "dataset_fingerprint"} <= set(tags) and tags["device"] == "cpu"
        assert tags["gprune.trial_status"] == "finished" and tags["gprune.worker_nodes"]  # where it was evaluated
        artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
        assert artifacts == ["records"]  # Parquet, a file per slice
        sliced = {a.path.rsplit("/", 1)[-1].split(".")[0] for a in client.list_artifacts(run.info.run_id, "records")
                  if a.path.endswith(".parquet")}
        assert sliced == {"pope", "textvqa"}
        # the trial's own times: it started before it ended, its metrics are stamped when it reported
        assert run.info.start_time < run.info.end_time
        assert client.get_metric_history(run.info.run_id, "tflops_exact")[0].timestamp == run.info.end_time
    for run in [*runs, parents[0]]:  # as the UI shows them: the Dataset column, who ran it, readable numbers
        datasets = {d.dataset.name: d.dataset for d in run.inputs.dataset_inputs}
        assert set(datasets) == {"pope", "textvqa"}
        assert json.loads(datasets["pope"].source)["uri"] == str(Path(fixtures_dir, "pope").resolve())
        assert run.data.tags["mlflow.user"] and run.data.tags["mlflow.source.type"] == "LOCAL"
        assert all(value == float(f"{value:.5g}") for value in run.data.metrics.values())
    return trials


def test_grid_sweep_logs_eight_trials_and_a_baseline_under_one_parent(ray_cluster, fixtures_dir, tmp_path,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    outcome = run_sweep(parse_spec(sweep_dict("grid", fixtures_dir)), tracking_uri=uri, printer=lambda *a, **k: None)
    check_sweep_in_mlflow(uri, "grid", fixtures_dir)
    significance = check_report(uri, "grid", tmp_path / "report",
                                heatmaps=["table3-gprune-0.5.png", "table3-gprune-0.9.png"])
    assert set(zip(significance["benchmark"], significance["metric"])) == {("pope", "pope_f1_score"),
                                                                           ("textvqa", "exact_match")}
    check_a_trial_exports_as_lmms_eval_samples(uri, "grid", tmp_path / "samples")
    assert [w["weight_loads"] for w in outcome.workers] == [1]  # one load for baseline + 8 trials
    # every config saw the same 6 images: the vision tower ran once for each
    assert outcome.workers[0]["images_encoded"] == 6 and outcome.workers[0]["cache"]["hits"] > 0
    assert not outcome.interrupted and len(outcome.trials) == 8


def check_a_trial_exports_as_lmms_eval_samples(uri, name, out):
    """`gprune samples RUN` writes a trial's records as lmms-eval's samples files, which read back the same."""
    from cli.main import main
    from gprune.lmms_samples import read_samples

    client, _, runs = children(uri, name)
    trial = next(r for r in runs if r.data.tags["gprune.role"] == "trial")
    assert main(["samples", trial.info.run_id, "--tracking-uri", uri, "--out", str(out)]) == 0
    logged = run_records(uri, trial.info.run_id)
    for path in sorted(out.glob("*_samples_*.jsonl")):
        benchmark, records = read_samples(path)
        assert [(r["index"], r["prediction"], r["score"]) for r in records] == [
            (r["index"], r["prediction"], r["score"]) for r in logged[benchmark]]
    assert len(list(out.glob("*_samples_*.jsonl"))) == len(logged)


def check_report(uri, name, out, heatmaps=()):
    """The report holds every trial, ratio and benchmark with MLflow's numbers; every file is logged."""
    import pandas as pd

    from dashboards.report import build_report

    files = {f.name for f in build_report(name, uri, out)}
    client, parents, runs = children(uri, name)
    trials = [r for r in runs if r.data.tags["gprune.role"] == "trial"]
    table = pd.read_csv(out / "table1.csv", dtype=str)
    assert len(table) == len(trials) + 1 and table.iloc[0]["status"] == "baseline"
    for run in trials:
        params, metrics = run.data.params, run.data.metrics
        row = table[(table["ratio"] == params["ratio"])
                    & ((table["method"] == params["method"]) if "method" in table else True)]
        if "threshold" in table:
            row = row[(row["threshold"] == params["threshold"]) & (row["iterations"] == params["iterations"])]
        assert len(row) == 1, (params, table)
        for benchmark, metric in (("pope", "pope_f1_score"), ("textvqa", "exact_match")):
            assert row.iloc[0][benchmark].removesuffix(" *") == f"{metrics[f'{benchmark}.{metric}']:.3f}"
    expected = {"report.md", "report.html", "table1.csv", "significance.csv", "figure3-pope.png",
                "figure3-textvqa.png", "figure3-retention.png", *heatmaps,
                *(f"figure{n}-{b}-{i}.png" for n in (5, 6) for b in ("pope", "textvqa") for i in (0, 1))}
    assert expected <= files, files
    logged = {a.path.removeprefix("report/") for a in client.list_artifacts(parents[0].info.run_id, "report")}
    assert files <= logged
    return pd.read_csv(out / "significance.csv")


def test_a_methods_sweep_reports_each_method_against_the_baseline_and_random(ray_cluster, fixtures_dir, tmp_path,
                                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = parse_spec(sweep_dict("compare", fixtures_dir, search_space={"method": ["gprune", "random", "tome"],
                                                                        "ratio": [0.5, 0.9]}))
    run_sweep(spec, tracking_uri=uri, printer=lambda *a, **k: None)
    significance = check_report(uri, "compare", tmp_path / "report")
    assert set(significance["versus"]) == {"unpruned", "random 0.5", "random 0.9"}
    assert len(significance) == 6 * 2 + 4 * 2  # each trial vs unpruned, each non-random one vs random, 2 benchmarks
    assert "gprune 0.9" in set(significance["trial"])
    check_kept_tokens_are_the_models_own(uri, "compare", fixtures_dir)
    for run in children(uri, "compare")[2]:  # each run's params are its own method's, not every method's
        method, params = run.data.params["method"], run.data.params
        assert ("threshold" in params) == (method == "gprune") and ("seed" in params)  # seed: the sweep's own



def check_kept_tokens_are_the_models_own(uri, name, fixtures_dir):
    """The indices the report's overlays draw (the trial's records) are those the model's own selection
    returns for that image and config, computed here apart from the evaluation loop."""
    from dashboards.kept_tokens import kept_masks
    from gprune import PruneConfig, load_model, set_prune
    from gprune.benchmarks import load_task
    from gprune.generation import format_prompt
    from gprune.tasks.rows import read_sample

    client, _, runs = children(uri, name)
    model, processor = load_model("tiny")
    task = load_task("pope", str(fixtures_dir))
    _, visuals, text, _ = read_sample(task, task.test_docs(), 0)
    checked = 0
    for run in runs:
        params = run.data.params
        if run.data.tags["gprune.role"] != "trial":
            continue
        records = run_records(uri, run.info.run_id)
        entry = next(r for r in records["pope"] if r["index"] == 0)["images"][0]
        set_prune(model, processor, PruneConfig(method=params["method"], ratio=float(params["ratio"]),
                                                seed=int(params["seed"])))
        inputs = processor(images=visuals, text=format_prompt(processor, text), return_tensors="pt")
        kept = model.model.get_image_features(inputs["pixel_values"], inputs["image_sizes"])["kept_indices"][0]
        assert entry["kept"] == kept.tolist(), params
        base, grid = kept_masks(entry)
        layout = model.model.layouts_of(inputs["pixel_values"], inputs["image_sizes"])[0]
        assert int(base.sum()) + int(grid.sum()) + layout.rows == layout.kept(float(params["ratio"]))
        checked += 1
    assert checked == 6  # three methods at two ratios


class Postgres:
    """A throwaway PostgreSQL server from the machine's initdb/pg_ctl, on a private port and socket."""

    def __init__(self):
        import glob
        import socket
        import tempfile

        import psycopg

        self.bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        self.root = Path(tempfile.mkdtemp(prefix="gprune-pg-"))
        (self.root / "sock").mkdir()
        os.chmod(self.root, 0o777)
        os.chmod(self.root / "sock", 0o777)
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        subprocess.run([*self.as_postgres, f"{self.bindir}/initdb", "-D", str(self.root / "data"), "--auth=trust",
                        "-U", "postgres"], check=True, capture_output=True)
        self.start()
        self.admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(self.admin, autocommit=True) as connection:
            connection.execute("CREATE DATABASE mlflow")
        self.uri = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/mlflow"

    def start(self):
        subprocess.run([*self.as_postgres, f"{self.bindir}/pg_ctl", "-D", str(self.root / "data"), "-l",
                        str(self.root / "log"), "-w", "-o",
                        f"-p {self.port} -k {self.root / 'sock'} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True)

    def stop(self):
        subprocess.run([*self.as_postgres, f"{self.bindir}/pg_ctl", "-D", str(self.root / "data"), "-m", "fast",
                        "stop"], capture_output=True)


@pytest.fixture(scope="module")
def postgres():
    server = Postgres()
    yield server
    server.stop()
    shutil.rmtree(server.root)  # its data folder lives outside pytest's tmp (a socket path must stay short)


def test_the_same_sweep_against_postgresql(ray_cluster, fixtures_dir, postgres, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_sweep(parse_spec(sweep_dict("grid-pg", fixtures_dir)), tracking_uri=postgres.uri,
              printer=lambda *a, **k: None)
    check_sweep_in_mlflow(postgres.uri, "grid-pg", fixtures_dir)


def wait_for_logged_runs(postgres, experiment: str, count: int, seconds: float = 300) -> None:
    """Until `count` runs of `experiment` are whole in the database (read with psycopg, not MLflow)."""
    import psycopg

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(postgres.uri.replace("+psycopg", "")) as connection:
                logged = connection.execute(
                    "SELECT count(*) FROM tags t JOIN runs r ON t.run_uuid = r.run_uuid JOIN experiments e ON "
                    "r.experiment_id = e.experiment_id WHERE t.key = 'gprune.logged' AND e.name = %s", (experiment,)
                ).fetchone()[0]
        except psycopg.errors.UndefinedTable:  # MLflow has not made its tables yet
            logged = 0
        if logged >= count:
            return
        time.sleep(0.2)


def test_a_sweep_rides_out_postgresql_stopped_for_30_seconds(ray_cluster, fixtures_dir, postgres, tmp_path,
                                                             monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    stopped = threading.Event()

    def outage():  # once the baseline and a trial are logged, the database goes away for 30 s
        wait_for_logged_runs(postgres, "outage", 2)
        postgres.stop()
        stopped.set()
        time.sleep(30)
        postgres.start()

    thread = threading.Thread(target=outage)
    thread.start()
    outcome = run_sweep(parse_spec(sweep_dict("outage", fixtures_dir)), tracking_uri=postgres.uri,
                        printer=lambda *a, **k: None)
    thread.join()
    assert stopped.is_set() and len(outcome.trials) == 8 and not outcome.interrupted
    check_sweep_in_mlflow(postgres.uri, "outage", fixtures_dir)
    err = capfd.readouterr().err
    assert "unreachable" in err and "tracking store back after" in err, err[-3000:]
    assert "Traceback" not in err, err[-3000:]  # one line when it went, one when it came back


def test_a_store_away_past_its_patience_stops_the_sweep_and_resume_logs_every_trial(ray_cluster, fixtures_dir,
                                                                                    postgres, tmp_path, monkeypatch):
    """No trial that ran is marked failed for its logging: the sweep stops (Tune saves its state) and `--resume`
    runs what was left and logs what finished while the store was away."""
    from sweep.outages import TrackingUnavailable
    from sweep.runner import load_saved_spec

    monkeypatch.chdir(tmp_path)
    ended = threading.Event()

    def outage():  # away from the second logged run until the sweep has given up on it
        wait_for_logged_runs(postgres, "away", 2)
        postgres.stop()
        ended.wait(300)
        postgres.start()

    thread = threading.Thread(target=outage)
    thread.start()
    spec = parse_spec(sweep_dict("away", fixtures_dir, limit=8, tracking={"outage_seconds": 4}))
    try:
        with pytest.raises(TrackingUnavailable, match="unreachable for 4 s.*--resume"):
            run_sweep(spec, tracking_uri=postgres.uri, printer=lambda *a, **k: None)
    finally:
        ended.set()
        thread.join()
    resumed = run_sweep(load_saved_spec("away"), resume=True, printer=lambda *a, **k: None)
    assert len(resumed.trials) == 8 and not resumed.interrupted
    check_sweep_in_mlflow(postgres.uri, "away", fixtures_dir)  # each trial once, none marked "error"


def test_a_killed_worker_still_finishes_every_trial_exactly_once(ray_cluster, fixtures_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    killed = {}

    def kill_when_trials_are_running():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and "pid" not in killed:
            try:
                _, _, runs = children(uri, "killed")
                if any(r.data.tags.get("gprune.role") == "trial" for r in runs):
                    worker = ray.get_actor("killed-worker-0")
                    killed["pid"] = ray.get(worker.info.remote())["pid"]
                    ray.kill(worker, no_restart=False)  # Ray restarts it; its call is retried
            except Exception:
                pass
            time.sleep(0.2)

    killer = threading.Thread(target=kill_when_trials_are_running, daemon=True)
    killer.start()
    outcome = run_sweep(parse_spec(sweep_dict("killed", fixtures_dir)), tracking_uri=uri,
                        printer=lambda *a, **k: None)
    killer.join(timeout=5)
    assert "pid" in killed, "the worker was never killed"
    assert outcome.workers[0]["pid"] != killed["pid"]  # a new process took over
    assert outcome.workers[0]["restarted"]  # and says so (the summary counts its second weight load)
    check_sweep_in_mlflow(uri, "killed", fixtures_dir)


def run_cli(args, cwd, **kwargs):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def wait_for_trials(uri, name, count, seconds=300):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            _, _, runs = children(uri, name)
            if sum(r.data.tags.get("gprune.role") == "trial" for r in runs) >= count:
                return
        except Exception:  # the experiment or the tables do not exist yet
            pass
        time.sleep(0.5)
    raise AssertionError(f"fewer than {count} trials of {name!r} logged after {seconds} s")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_a_stopped_sweep_resumes_and_logs_every_trial_exactly_once(fixtures_dir, tmp_path, stop):
    """Stopped as soon as the second trial run appears (usually while it is being written): Ctrl-C (Tune saves
    its state, the parent run is closed KILLED) or kill -9 of the driver (nothing of it runs after, Ray goes with
    it, the parent run stays RUNNING). `--resume` then logs every trial exactly once, with metrics and records,
    and finishes the parent run."""
    name = f"stopped-{stop.name.lower()}"
    sweep_file = tmp_path / "sweep.yaml"
    # 16 samples a benchmark: trials of 3 ran all 8 within the half-second the test polls MLflow, and the stop
    # came after the last one
    sweep_file.write_text(yaml.safe_dump(sweep_dict(name, fixtures_dir, concurrency=1, limit=16)))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = run_cli(["sweep", str(sweep_file), "--tracking-uri", uri], tmp_path)
    wait_for_trials(uri, name, 2)
    first.send_signal(stop)
    out, _ = first.communicate(timeout=120)
    _, parents, runs = children(uri, name)
    if stop == signal.SIGINT:
        assert "INTERRUPTED" in out and f"--resume {name}" in out, out[-3000:]
        assert parents[0].info.status == "KILLED"
    else:
        assert parents[0].info.status == "RUNNING"
    assert 2 <= sum(r.data.tags.get("gprune.role") == "trial" for r in runs) < 8

    second = run_cli(["sweep", "--resume", name], tmp_path)
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out[-3000:]
    check_sweep_in_mlflow(uri, name, fixtures_dir)
    _, parents, _ = children(uri, name)
    assert parents[0].info.status == "FINISHED"


@pytest.mark.parametrize("moment,stop", [("parent", signal.SIGINT), ("baseline", signal.SIGINT),
                                         ("baseline", signal.SIGTERM)])
def test_ctrl_c_before_the_trials_start_closes_the_parent_run_as_killed(fixtures_dir, tmp_path, moment, stop):
    """Ctrl-C as soon as the parent run exists and once the baseline has begun, and a plain `kill` (SIGTERM)
    during the baseline. (Before the parent run, Ray and the workers start: stopped then, no run exists.)"""
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(sweep_dict("early", fixtures_dir, limit=20)))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    process = run_cli(["sweep", str(sweep_file), "--tracking-uri", uri], tmp_path)
    lines = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    deadline = time.monotonic() + 300  # Ray and the worker start before the parent run: slow on a loaded machine
    parents = []
    while time.monotonic() < deadline and process.poll() is None:
        try:
            _, parents, _ = children(uri, "early")
        except Exception:
            pass
        if parents and (moment == "parent" or any("evaluating the unpruned baseline" in line for line in lines)):
            break
        time.sleep(0.1)
    assert parents, "the sweep never created its parent run:\n" + "".join(lines)[-3000:]
    process.send_signal(stop)
    process.wait(timeout=120)
    out = "".join(lines)
    _, parents, runs = children(uri, "early")
    assert process.returncode == 130, out[-3000:]
    assert parents[0].info.status == "KILLED", out[-3000:]
    assert not [r for r in runs if r.data.tags.get("gprune.role") == "trial"]


def test_a_trial_whose_run_was_cut_off_mid_write_is_logged_again_on_resume(ray_cluster, fixtures_dir, tmp_path,
                                                                           monkeypatch):
    from sweep.runner import load_saved_spec
    from sweep.tracking import LOGGED

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = parse_spec(sweep_dict("cut", fixtures_dir, limit=2, search_space={"ratio": [0.5, 0.9]}))
    first = run_sweep(spec, tracking_uri=uri, printer=lambda *a, **k: None)
    client, _, runs = children(uri, "cut")
    victim, whole_but_open = [r for r in runs if r.data.tags["gprune.role"] == "trial"][:2]
    client.delete_tag(victim.info.run_id, LOGGED)  # as if the driver died before the run was whole
    client.update_run(victim.info.run_id, status="RUNNING")
    client.update_run(whole_but_open.info.run_id, status="RUNNING")  # died after it was whole, before closing

    resumed = run_sweep(load_saved_spec("cut"), resume=True, printer=lambda *a, **k: None)
    assert len(resumed.trials) == len(first.trials) == 2 and not resumed.interrupted
    client, _, runs = children(uri, "cut")
    whole = [r for r in runs if r.data.tags.get(LOGGED) == "true" and r.data.tags["gprune.role"] == "trial"]
    assert sorted(r.data.tags["gprune.trial_id"] for r in whole) == sorted(t["trial_id"] for t in first.trials)
    again = next(r for r in whole if r.data.tags["gprune.trial_id"] == victim.data.tags["gprune.trial_id"])
    assert again.info.run_id != victim.info.run_id
    for key in ("objective", "tflops_exact", "pope.pope_f1_score"):
        assert again.data.metrics[key] == victim.data.metrics[key]
    assert [a.path for a in client.list_artifacts(again.info.run_id)] == ["records"]
    old = client.get_run(victim.info.run_id)
    assert old.info.status == "FAILED" and old.data.tags["gprune.superseded"] == "true"
    assert client.get_run(whole_but_open.info.run_id).info.status == "FINISHED"  # no run is left RUNNING


MULTI_NODE = """
import ray
from ray.cluster_utils import Cluster
from gprune import PruneConfig
from workers import WorkerPool

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
ray.init(address=cluster.address, log_to_driver=False)
pool = WorkerPool("tiny", count=2, cpus_per_worker=1, name="spread", cache_mb=0)
info = pool.info()
answers = [ray.get(pool.dispatcher.evaluate.remote(PruneConfig(ratio=0.5), "easyvqa", 1)) for _ in range(2)]
print("NODES", len({w["node_id"] for w in info}), len({n["NodeID"] for n in ray.nodes() if n["Alive"]}))
print("ANSWERS", [a.samples for a in answers])
ray.shutdown()
cluster.shutdown()
"""


def test_workers_spread_over_the_nodes_of_a_two_node_cluster(tmp_path):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", MULTI_NODE], env=env, capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert "NODES 2 2" in done.stdout, done.stdout[-2000:] + done.stderr[-3000:]
    assert "ANSWERS [1, 1]" in done.stdout


def test_optuna_with_asha_runs_the_requested_trials_over_sample_slices(ray_cluster, fixtures_dir, tmp_path,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = parse_spec(sweep_dict(
        "optuna-asha", fixtures_dir, limit={"pope": 4, "textvqa": 2}, search={"algorithm": "optuna", "num_samples": 4},
        scheduler={"type": "asha", "slices": 2, "grace_period": 1, "reduction_factor": 2},
        search_space={"method": "gprune", "ratio": {"uniform": [0.5, 0.9]}, "iterations": {"randint": [1, 5]}}))
    outcome = run_sweep(spec, tracking_uri=uri, printer=lambda *a, **k: None)
    assert len(outcome.trials) == 4 and not outcome.interrupted
    for trial in outcome.trials:
        assert 0.5 <= float(trial["params"]["ratio"]) <= 0.9 and 1 <= int(trial["params"]["iterations"]) <= 5
        # per-benchmark budgets in 2 slices: pope 2 + 2, textvqa 1 + 1; a trial ASHA stopped has only slice 1
        finished = trial["status"] == "finished"
        assert trial["metrics"]["samples_evaluated"] == (6 if finished else 3)
        assert trial["metrics"]["slice"] == (2 if finished else 1)


DECLARED_GPUS = """
import ray
from gprune import PruneConfig
from workers import WorkerPool

ray.init(num_cpus=3, num_gpus=2, include_dashboard=False, log_to_driver=False)  # declared, not real
pool = WorkerPool("tiny", cpus_per_worker=1, name="gpus", cache_mb=0)
print("COUNT", pool.count, "USE_GPU", pool.use_gpu)
calls = [pool.dispatcher.evaluate.remote(PruneConfig(ratio=0.5), "easyvqa", 1) for _ in range(4)]  # in flight together
print("SAMPLES", [r.samples for r in ray.get(calls)])
for worker in pool.info():
    print("WORKER", worker["cuda_visible_devices"], worker["device"], worker["calls"])
ray.shutdown()
"""


def test_one_worker_per_declared_gpu_each_with_its_own_device(tmp_path):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", DECLARED_GPUS], env=env, capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert "COUNT 2 USE_GPU True" in done.stdout, done.stdout[-2000:] + done.stderr[-3000:]
    assert "SAMPLES [1, 1, 1, 1]" in done.stdout
    workers = [line.split()[1:] for line in done.stdout.splitlines() if line.startswith("WORKER")]
    assert sorted(w[0] for w in workers) == ["0", "1"]  # Ray gave each worker its own GPU
    assert all(w[1] == "cpu" for w in workers)  # no CUDA on this machine: the worker says it used the CPU
    assert all(int(w[2]) >= 1 for w in workers)  # the calls ran through both


def test_a_sweep_through_an_mlflow_server_keeps_records_and_report_on_the_server(ray_cluster, fixtures_dir,
                                                                                 mlflow_server, tmp_path, monkeypatch):
    uri, server_artifacts = mlflow_server
    monkeypatch.chdir(tmp_path)
    spec = parse_spec(sweep_dict("served", fixtures_dir, limit=2, search_space={"ratio": [0.5, 0.9]}))
    outcome = run_sweep(spec, tracking_uri=uri, printer=lambda *a, **k: None)
    check_report(uri, "served", tmp_path / "report")
    for trial in outcome.trials:
        assert set(run_records(uri, trial["run_id"])) == {"pope", "textvqa"}
    assert len({p.parent for p in server_artifacts.rglob("pope.*.parquet")}) == 3  # two trials and the baseline
    assert not (tmp_path / "mlartifacts").exists()  # nothing on the driver's disk


def test_a_trial_whose_samples_fail_is_logged_failed_and_never_best(ray_cluster, fixtures_dir, tmp_path,
                                                                       monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cli.sweeps import print_summary

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    shutil.copytree(fixtures_dir / "pope", data / "pope")
    shutil.copytree(fixtures_dir / "textvqa", data / "textvqa")
    for parquet in (data / "textvqa").rglob("*.parquet"):  # every TextVQA image unreadable
        table = pq.read_table(parquet)
        index = table.schema.get_field_index("image")
        broken = [{"bytes": b"not an image", "path": None}] * table.num_rows
        pq.write_table(table.set_column(index, table.schema.field(index),
                                        pa.array(broken, type=table.schema.field(index).type)), parquet)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = parse_spec(sweep_dict("failing", data, limit=2, search_space={"ratio": [0.5, 0.9]}))
    outcome = run_sweep(spec, tracking_uri=uri, printer=lambda *a, **k: None)
    assert len(outcome.trials) == 2
    for trial in outcome.trials:
        assert trial["status"] == "failed: every sample failed on textvqa", trial["status"]
        assert trial["metrics"]["textvqa.error_rate"] == 1 and trial["metrics"]["textvqa.exact_match"] == 0
        assert trial["metrics"]["objective"] == 0 and trial["metrics"]["pope.error_rate"] == 0
    client, _, runs = children(uri, "failing")
    assert sorted(r.info.status for r in runs if r.data.tags["gprune.role"] == "trial") == ["FAILED", "FAILED"]
    lines = []
    print_summary(outcome, printer=lines.append)
    assert not any("<- pareto" in line for line in lines) and sum("failed: every sample" in line for line in lines) == 2


def test_tunes_saved_state_stays_small_for_a_1000_sample_trial(ray_cluster, tmp_path, monkeypatch):
    """Per-sample records go to the trial's records file and MLflow, never through Tune's saved state."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = parse_spec({"name": "big", "model": "tiny", "benchmarks": ["easyvqa"], "limit": 1000, "batch_size": 100,
                       "max_new_tokens": 1, "concurrency": 1, "search_space": {"method": "gprune", "ratio": 0.7},
                       "workers": {"cpus_per_worker": 1, "cache_mb": 1}})  # 1000 images do not fit 1 MB
    lines = []
    outcome = run_sweep(spec, tracking_uri=uri, printer=lambda *a, **k: lines.append(" ".join(map(str, a))))
    assert ("vision-feature cache: 1,000 images per trial do not fit workers.cache_mb 1, so each worker keeps its "
            "last 256 (an image asked about again soon still hits) and no pass fills the caches before the baseline"
            in lines)
    folder = tmp_path / ".sweeps" / "big"
    tune_state = [p for p in folder.rglob("*") if p.is_file() and not {"records", "report"} & set(p.parts)
                  and p.name not in ("baseline.json", "sweep.json", BALLAST)]  # the ballast: room for Tune's state
    assert any(p.name.startswith("experiment_state") for p in tune_state)
    assert sum(p.stat().st_size for p in tune_state) < 100_000, {str(p): p.stat().st_size for p in tune_state}
    records = run_records(uri, outcome.trials[0]["run_id"])
    assert len(records["easyvqa"]) == 1000 and outcome.trials[0]["metrics"]["samples_evaluated"] == 1000


@pytest.mark.parametrize("workers,message", [
    ({"count": 4, "cpus_per_worker": 1}, "4 workers of 1 CPU each cannot all be placed, only 3 fit; the cluster has "
                                         "1 node(s): 3 CPU"),
    ({"count": 1, "cpus_per_worker": 4}, "1 workers of 4 CPU each cannot all be placed, only 0 fit; the cluster has "
                                         "1 node(s): 3 CPU"),
])
def test_workers_that_cannot_be_placed_are_said_in_one_line_before_any_run(ray_cluster, fixtures_dir, tmp_path,
                                                                           monkeypatch, workers, message):
    """Ray would wait for them for ever, silently (its infeasible-resource warning goes to no console)."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(ValueError, match=message.replace("(", "\\(").replace(")", "\\)")):
        run_sweep(parse_spec(sweep_dict("crowded", fixtures_dir, workers=workers)), tracking_uri=uri,
                  printer=lambda *a, **k: None)
    assert MlflowClient(uri).get_experiment_by_name("crowded") is None or not children(uri, "crowded")[1]


def test_a_worker_that_cannot_start_says_why_once_and_leaves_no_run(ray_cluster, fixtures_dir, tmp_path,
                                                                    monkeypatch):
    """A checkpoint folder whose files pass the checks before Ray (config keys in range, weights whole, tokenizer and
    processor files there) but whose config names another image token than its tokenizer's: each worker fails its
    blank-image check as it loads the model: the reason, in one line, and no MLflow run."""
    from gprune.checkpoints import TINY

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "model"
    shutil.copytree(TINY, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "image_token_index": 5}))  # in the vocabulary
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(ValueError) as error:
        run_sweep(parse_spec(sweep_dict("broken", fixtures_dir, model=str(folder))), tracking_uri=uri,
                  printer=lambda *a, **k: None)
    message = str(error.value)
    assert message.startswith("an evaluation worker died and was not brought back") and "\n" not in message
    assert str(folder) in message and "config.json's image_token_id is 5" in message
    assert MlflowClient(uri).get_experiment_by_name("broken") is None or not children(uri, "broken")[1]


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MB tmpfs of the test's own (root mounts it), to fill or make read-only under a running sweep."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk):
    """Every free byte of `disk` taken by one file (removed to give the space back)."""
    filler = disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M"], capture_output=True)  # until ENOSPC
    return filler


@pytest.mark.parametrize("outage", ["read-only", "full"])
def test_a_records_disk_that_goes_read_only_or_full_stops_the_sweep_and_resume_completes_every_trial(
        fixtures_dir, tmp_path, small_disk, outage):
    name = f"disk-{outage}"
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(sweep_dict(name, fixtures_dir, concurrency=1, limit=16,  # trials of ~2 s:
                                                    storage=str(small_disk / "sweeps"))))  # the outage comes mid-sweep
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # the store stays writable: only the sweep's own disk goes
    first = run_cli(["sweep", str(sweep_file), "--tracking-uri", uri], tmp_path)
    wait_for_trials(uri, name, 2)
    if outage == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    else:
        filler = fill(small_disk)
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 130, out[-3000:]
    said = "the disk is read-only" if outage == "read-only" else "the disk is full"
    assert out.count(f"{said} (") == 1 and "Traceback" not in out, out[-3000:]
    _, parents, runs = children(uri, name)
    assert parents[0].info.status == "KILLED"
    trials = [r for r in runs if r.data.tags.get("gprune.role") == "trial" and r.data.tags.get("gprune.logged")]
    assert 2 <= len(trials) < 8 and all(r.data.tags["gprune.trial_status"] != "error" for r in trials)

    if outage == "read-only":  # the disk is back
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    else:
        filler.unlink()
    second = run_cli(["sweep", "--resume", name, "--storage", str(small_disk / "sweeps")], tmp_path)
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out[-3000:]
    check_sweep_in_mlflow(uri, name, fixtures_dir)  # every trial once, with its records
    assert children(uri, name)[1][0].info.status == "FINISHED"


@pytest.mark.parametrize("family", ["llava15", "qwen25vl", "onevision"])
def test_another_family_sweeps_from_a_folder_through_ray_and_mlflow_with_its_own_kept_token_maps(
        ray_cluster, fixtures_dir, tmp_path, monkeypatch, family):
    """LLaVA-1.5 (one view, no grid), Qwen2.5-VL (one merged grid per image at its own size) and LLaVA-OneVision
    (base view and a scaled grid) from a folder, as a user's checkpoint: two trials, each record keeping the budget
    of its image, the report's figures."""
    from dashboards.report import build_report
    from gprune import keep_count
    from testbed import tiny

    model, processor = getattr(tiny, f"build_{family}")(seed=5)
    model.save_pretrained(tmp_path / family)
    processor.save_pretrained(tmp_path / family)
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = parse_spec(sweep_dict(family, fixtures_dir, model=str(tmp_path / family), benchmarks=["pope"],
                                 search_space={"method": ["gprune", "random"], "ratio": [0.75]}))
    outcome = run_sweep(spec, tracking_uri=uri, printer=lambda *a, **k: None)
    client, _, runs = children(uri, family)
    trials = [r for r in runs if r.data.tags["gprune.role"] == "trial"]
    assert len(outcome.trials) == 2 and len(trials) == 2
    for run in trials:
        records = run_records(uri, run.info.run_id)["pope"]
        if family == "onevision":  # its grid's newlines are kept beyond the ratio (tests/test_families.py)
            assert all(0 < r["visual_tokens_kept"] < r["visual_tokens_full"] for r in records)
        else:
            assert all(r["visual_tokens_kept"] == keep_count(r["visual_tokens_full"], 0.75) for r in records)
    files = {f.name for f in build_report(family, uri, tmp_path / "report")}
    assert {"figure5-pope-0.png", "figure6-pope-0.png", "table1.csv"} <= files, files


def test_a_sweep_without_address_runs_on_its_own_token_cluster_beside_a_foreign_one(fixtures_dir, tmp_path):
    """Someone on the host ran `ray start --head` (no auth, no CPUs for others' work) in Ray's shared temp folder,
    and RAY_ADDRESS names it: a sweep without --address still starts its own cluster (token auth, a temp folder of
    its own) and finishes there; doctor says what it will join. (The host's temp folder is a private one here.)"""
    host_tmp = Path(tempfile.mkdtemp(prefix="h", dir="/tmp"))  # short: Ray's socket paths live under it
    port = free_port()
    foreign_env = {**os.environ, "TMPDIR": str(host_tmp), "RAY_AUTH_MODE": "disabled"}
    foreign = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--head", f"--port={port}",
                                "--num-cpus=0", "--include-dashboard=false", "--block"], env=foreign_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        bootstrap = host_tmp / "ray" / "ray_current_cluster"
        deadline = time.monotonic() + 120
        while not bootstrap.exists():
            assert time.monotonic() < deadline and foreign.poll() is None, "the foreign cluster never started"
            time.sleep(0.5)
        foreign_address = bootstrap.read_text().strip()
        env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}  # as a user's shell: no auth setting
        env.update(TMPDIR=str(host_tmp), RAY_ADDRESS=foreign_address, MLFLOW_DISABLE_TELEMETRY="true")
        doctor = subprocess.run([sys.executable, "-m", "cli.main", "doctor", "--tracking-uri",
                                 f"sqlite:///{tmp_path / 'mlflow.db'}"], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=120)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "own private cluster" in doctor.stdout and "auth token" in doctor.stdout, doctor.stdout
        assert f"RAY_ADDRESS={foreign_address} is ignored" in doctor.stdout, doctor.stdout
        assert f"the cluster at {foreign_address}" in doctor.stdout and "not joined" in doctor.stdout, doctor.stdout
        sweep_file = tmp_path / "sweep.yaml"
        sweep_file.write_text(yaml.safe_dump(sweep_dict("private", fixtures_dir, benchmarks=["pope"], limit=2,
                                                        search_space={"method": "gprune", "ratio": [0.5]})))
        done = subprocess.run([sys.executable, "-m", "cli.main", "sweep", str(sweep_file), "--tracking-uri",
                               f"sqlite:///{tmp_path / 'mlflow.db'}"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=600)
        out = done.stdout + done.stderr
        assert done.returncode == 0, out[-3000:]
        assert "this sweep's own private cluster" in out and "(auth token," in out, out[-3000:]
        assert foreign_address not in out, out[-3000:]
        assert bootstrap.read_text().strip() == foreign_address  # the foreign cluster is untouched
        assert not list(host_tmp.glob("gp-ray-*")), "the sweep left its cluster's temp folder behind"
    finally:
        os.killpg(foreign.pid, signal.SIGTERM)  # `ray start --block` stops what it started
        try:
            foreign.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(foreign.pid, signal.SIGKILL)
        shutil.rmtree(host_tmp, ignore_errors=True)


def test_a_driver_killed_while_the_baseline_is_written_resumes(fixtures_dir, tmp_path):
    """kill -9 of the driver during the baseline (its run half-written: created, not yet whole), before Tune saved any
    state: `--resume` evaluates the baseline again under the same parent run, closes the half-written one, and runs
    every trial; nothing is left RUNNING."""
    from sweep.tracking import LOGGED

    name = "killed-at-baseline"
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(sweep_dict(name, fixtures_dir, benchmarks=["pope"], limit=6, search_space={
        "method": "gprune", "ratio": [0.5, 0.9]})))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = run_cli(["sweep", str(sweep_file), "--tracking-uri", uri], tmp_path)
    lines = []
    for line in first.stdout:
        lines.append(line)
        if "evaluating the unpruned baseline" in line:
            break
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    client, parents, _ = children(uri, name)
    assert len(parents) == 1, "".join(lines)
    half = client.create_run(parents[0].info.experiment_id, run_name="baseline", tags={  # as the driver left it
        "mlflow.parentRunId": parents[0].info.run_id, "gprune.trial_id": "baseline", "gprune.role": "baseline"})
    assert not list((tmp_path / ".sweeps" / name).glob("experiment_state-*.json"))  # Tune had not started

    second = run_cli(["sweep", "--resume", name], tmp_path)
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out[-3000:]
    client, parents, runs = children(uri, name)
    whole = [r for r in runs if r.data.tags.get(LOGGED) == "true"]
    assert sorted(r.data.tags["gprune.role"] for r in whole) == ["baseline", "trial", "trial"]
    closed = client.get_run(half.info.run_id)
    assert closed.info.status == "FAILED" and closed.data.tags["gprune.superseded"] == "true"
    assert parents[0].info.status == "FINISHED" and all(r.info.status != "RUNNING" for r in runs)


def slice_files(folder: Path) -> dict[Path, tuple[int, int]]:
    """Every finished slice under a sweep's records folder: (inode, mtime) each, to tell a rewrite."""
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.rglob("*.parquet")}


def test_a_long_trial_shows_its_progress_and_a_driver_killed_in_it_resumes_by_slice(fixtures_dir, tmp_path):
    """Trials of 16 slices each (POPE's 16 fixture rows, one a slice). While they run, the driver prints each
    running trial's samples done and MLflow holds them as a stepped metric on its run (opened while it runs),
    rising before the trial ends. kill -9 of the driver in the middle of a trial, then `--resume`: no finished slice
    is evaluated or written again, at most one slice per running trial was lost with the driver (the workers' logs
    count what they evaluated), and the records are those of the same sweep run without a kill."""
    from gprune.record_files import document, read_records
    from workers.eval_worker import SLICE_LOG

    def spec(name):
        return sweep_dict(name, fixtures_dir, benchmarks=["pope"], limit=None, batch_size=1, concurrency=2,
                          progress_seconds=0.2, search_space={"method": "gprune", "ratio": [0.5, 0.7, 0.9]},
                          workers={"cpus_per_worker": 1, "cache_mb": 0, "slice_samples": 1},
                          storage=str(tmp_path / ".sweeps"))
    name = "long-trials"
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec(name)))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = run_cli(["sweep", str(tmp_path / "sweep.yaml"), "--tracking-uri", uri], tmp_path)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(first.stdout), daemon=True)
    reader.start()
    records = tmp_path / ".sweeps" / name / "records"

    def trial_folders():
        return [f for f in records.glob("*") if f.name != "baseline" and (f / "plan.json").exists()]

    def logged_progress():  # the running trials' runs: samples done as MLflow has them, step by step
        client, _, runs = children(uri, name)
        return [[m.value for m in client.get_metric_history(r.info.run_id, "progress.samples_done")]
                for r in runs if r.data.tags.get("gprune.trial_status") == "running" and r.info.status == "RUNNING"]

    def shown(text):  # (trial, samples done) of each progress line the driver printed
        return [(m["trial"], int(m["done"].replace(",", ""))) for m in re.finditer(
            r"trial (?P<trial>\w+): (?P<done>[\d,]+)/16 samples", text)]

    def rising(pairs):
        return any(a[0] == b[0] and b[1] > a[1] for a, b in zip(pairs, pairs[1:]))

    seen, deadline = [], time.monotonic() + 300
    while time.monotonic() < deadline:  # a trial's run shows its samples rising while it runs, then: kill it mid-trial
        if not seen:
            try:
                seen = [h for h in logged_progress() if len(h) >= 2 and h[-1] > h[0]]
            except Exception:  # the store or the runs are not there yet
                pass
        counts = [len(list(f.glob("*.parquet"))) for f in trial_folders()]
        if seen and rising(shown("".join(lines))) and any(2 <= c <= 12 for c in counts):
            break
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    reader.join(timeout=30)
    out = "".join(lines)
    assert seen, out[-3000:]
    at_kill = slice_files(records)
    running = [f for f in trial_folders() if len(list(f.glob("*.parquet"))) < 16]
    assert running, out[-3000:]

    # what the driver printed: a running trial's samples done, rising, before any trial ended
    firsts = out.find("trials done 1/3")
    assert rising(shown(out)), out[-3000:]
    assert firsts == -1 or out.find("/16 samples") < firsts

    # each trial's evaluations (the workers' logs of the killed run) beyond its files on disk: lost with the driver
    temp = Path(re.search(r"temp folder (\S+)\)", out)[1])
    evaluated = [json.loads(line.split(") ", 1)[1]) for log in temp.rglob("worker-*.out")
                 for line in log.read_text().splitlines() if line.startswith(SLICE_LOG)]
    for folder in running:
        ratio = document(next(folder.glob("*.parquet")))["prune"]["ratio"]
        lost = sum(e.get("ratio") == ratio for e in evaluated) - len(list(folder.glob("*.parquet")))
        assert 0 <= lost <= 1, (folder.name, ratio, lost)

    second = run_cli(["sweep", "--resume", name], tmp_path)
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out[-3000:]
    after = slice_files(records)
    assert all(after[path] == stamp for path, stamp in at_kill.items())  # nothing finished ran or was written again
    assert len([p for p in after if p.parent.name != "baseline"]) == 3 * 16

    run_sweep(parse_spec(spec("unkilled")), tracking_uri=f"sqlite:///{tmp_path / 'unkilled.db'}",
              printer=lambda *a, **k: None)
    compared = ("index", "prediction", "score", "results", "visual_tokens_kept", "tflops_exact", "error")

    def by_ratio(folder):
        return {document(next(f.glob("*.parquet")))["prune"]["ratio"]: read_records(f, columns=compared)
                for f in folder.glob("*") if f.name != "baseline" and f.is_dir()}
    assert by_ratio(records) == by_ratio(tmp_path / ".sweeps" / "unkilled" / "records") != {}
