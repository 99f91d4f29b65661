"""What the readers of a sweep (report, samples, doctor) do with stores and records that are not as they should
be: a trial that failed before its records, damaged records files, an unknown run, a store that is down or no
store at all. Each is one line naming the problem; a report still comes out. And Figure 3 as it is drawn."""

from dataclasses import asdict

import pytest
from conftest import free_port
from mlflow.tracking import MlflowClient

from cli.main import main
from dashboards.figures import draw_accuracy_vs_flops
from dashboards.report import build_report
from dashboards.runs import load_sweep
from gprune import PruneConfig, evaluate
from gprune.lmms_samples import read_samples
from gprune.record_files import write_records
from sweep.tracking import SweepTracker


@pytest.fixture(scope="module")
def records(tiny, fixtures_dir):
    """Real records of the unpruned tiny model and of G-Prune at 50% and 90% on 6 POPE fixture samples."""
    model, processor = tiny
    return {ratio: [asdict(r) for r in evaluate(model, processor, ["pope"], PruneConfig(ratio=ratio), limit=6,
                                                data_dir=fixtures_dir)["pope"].records]
            for ratio in (0.0, 0.5, 0.9)}


def metrics(rows, tflops: float, retention: float | None) -> dict:
    f1 = sum(r["score"] for r in rows) / len(rows)
    return {"pope.pope_f1_score": f1, "tflops_exact": tflops, "objective": retention or 1.0,
            **({"mean_retention": retention} if retention is not None else {})}


@pytest.fixture
def sweep_store(tmp_path, records):
    """A sweep as the driver logs it: the baseline, two trials with records and one that failed before any."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = SweepTracker(uri, "grid", (tmp_path / "artifacts").as_uri())
    tracker.start({"model": "tiny"}, {})
    tags = {"gprune.trial_status": "finished"}

    def folder(name, rows):  # as a trial leaves its records: a slice folder
        write_records(tmp_path / name / "pope.00000000-00000006.parquet", {"pope": rows})
        return tmp_path / name

    tracker.log_child("baseline", "baseline", {"method": "gprune", "ratio": 0.0},
                      metrics(records[0.0], 3.0, None), {**tags, "gprune.trial_status": "baseline"},
                      folder("baseline", records[0.0]), role="baseline")
    runs = {}
    for trial, ratio, tflops in (("t1", 0.5, 2.0), ("t2", 0.9, 1.0)):
        runs[trial] = tracker.log_child(trial, f"gprune {ratio:.0%}", {"method": "gprune", "ratio": ratio},
                                        metrics(records[ratio], tflops, 0.9), tags,
                                        folder(trial, records[ratio]))
    runs["t3"] = tracker.log_child("t3", "gprune 70%", {"method": "gprune", "ratio": 0.7}, {},
                                   {"gprune.trial_status": "error"}, None, "FAILED")
    tracker.finish()
    return uri, runs


def test_a_trial_without_records_is_left_out_of_the_report_and_said(sweep_store, tmp_path, capsys):
    uri, runs = sweep_store
    said = []
    files = build_report("grid", uri, tmp_path / "report", printer=said.append)
    assert {"report.md", "significance.csv"} <= {f.name for f in files}
    assert len(said) == 1 and f"run {runs['t3']}: no records, left out of the bootstrap" in said[0]
    assert f"run {runs['t3']}: no records" in (tmp_path / "report" / "report.md").read_text()
    assert main(["report", "--experiment", "grid", "--tracking-uri", uri, "--out", str(tmp_path / "cli")]) == 0


def test_figure3_draws_the_unpruned_star_on_the_retention_plot_and_the_front_as_steps(sweep_store):
    uri, _ = sweep_store
    sweep = load_sweep("grid", uri)
    figure = draw_accuracy_vs_flops(sweep, "metrics.mean_retention", "mean retention")
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    star = lines["unpruned"]
    assert list(star.get_xdata()) == [3.0] and list(star.get_ydata()) == [1.0]  # retention 1 by definition
    assert lines["trials"].get_linestyle() == "None"  # trials are points, not a line through configs
    front = lines["Pareto front"]
    assert front.get_drawstyle() == "steps-post" and list(front.get_xdata()) == sorted(front.get_xdata())
    assert 3.0 in list(front.get_xdata())  # the unpruned model is on the front: nothing beats its retention


@pytest.mark.parametrize("name,content,message", [
    ("pope.00000000-00000006.parquet", "PAR1 cut short", "is damaged ("),  # over a trial's own slice
    ("records.json", '{"pope": [{"index": 0', "is damaged (Expecting"),  # a run logged before Parquet, truncated
    ("records.json", "[1, 2, 3]", "is not a sweep's records (expected {benchmark: [record, ...]}, got list)"),
])
def test_damaged_records_are_one_line_naming_the_file(sweep_store, tmp_path, name, content, message, capsys):
    uri, runs = sweep_store
    damaged = tmp_path / name
    damaged.write_text(content)
    parquet = name.endswith(".parquet")
    run = runs["t1" if parquet else "t3"]  # t3 holds no records: as a run of an earlier sweep would
    MlflowClient(uri).log_artifact(run, str(damaged), "records" if parquet else None)
    assert main(["samples", run, "--tracking-uri", uri, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and name in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_an_empty_lmms_eval_samples_file_is_named(tmp_path):
    empty = tmp_path / "20260101T000000_samples_pope_local.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match=f"{empty} holds no samples"):
        read_samples(empty)


def test_an_unknown_run_is_no_such_run(sweep_store, capsys):
    uri, _ = sweep_store
    assert main(["samples", "0123456789abcdef0123456789abcdef", "--tracking-uri", uri]) == 2
    assert "no such run '0123456789abcdef0123456789abcdef'" in capsys.readouterr().err
    assert main(["report", "--experiment", "grid", "--tracking-uri", uri, "--parent-run", "bogus"]) == 2
    assert "no such run 'bogus' among the sweeps of experiment 'grid'" in capsys.readouterr().err


def test_readers_of_a_server_that_is_down_say_so_at_once(capsys):
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for argv in (["samples", "0123456789abcdef0123456789abcdef"], ["report", "--experiment", "grid"]):
        assert main([*argv, "--tracking-uri", down]) == 2
        assert f"tracking server {down} is unreachable" in capsys.readouterr().err


@pytest.mark.parametrize("uri,message", [
    ("ftp://example.invalid/mlflow", "not a store MLflow can log to"),
    ("garbage-string", "not a store MLflow can log to"),
    ("file:///etc/hostname", "/etc/hostname is a file, not a store's folder"),
])
def test_doctor_refuses_a_store_a_sweep_could_not_use(uri, message, capsys, monkeypatch):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)  # a private cluster with a fresh token: ok
    assert main(["doctor", "--tracking-uri", uri]) == 1
    out = capsys.readouterr().out
    assert f"FIX  tracking: tracking store {uri!r}" in out or f"FIX  tracking: tracking store {uri}:" in out, out
    assert message in out and "ok   Ray: auth token, with a fresh random token" in out


def test_doctor_says_auth_as_a_sweep_will_have_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert main(["doctor", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]) == 1
    out = capsys.readouterr().out
    assert "FIX  Ray: auth disabled (RAY_AUTH_MODE=disabled in the environment)" in out, out
    assert "token" not in out.split("auth disabled")[0]


def test_a_damaged_sqlite_store_is_refused_before_use(tmp_path, capsys):
    store = tmp_path / "mlflow.db"
    store.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)  # the header, then nothing SQLite can read
    assert main(["report", "--experiment", "grid", "--tracking-uri", f"sqlite:///{store}"]) == 2
    assert f"{store} cannot be read as SQLite" in capsys.readouterr().err


def test_the_end_of_sweep_hint_and_the_report_mask_the_database_password(capsys):
    from cli.sweeps import print_summary
    from sweep.runner import SweepOutcome

    uri = "postgresql+psycopg://mlflow:s3cret-pw@db.example:5432/mlflow"
    print_summary(SweepOutcome("grid", uri, "1", "abc", {"tflops_exact": 1.0}, ["ratio"]))
    out = capsys.readouterr().out
    assert "s3cret-pw" not in out and "gprune ui --tracking-uri postgresql+psycopg://mlflow:***@db.example" in out


def test_the_ui_on_every_interface_warns_that_it_has_no_authentication(tmp_path, capsys):
    import socket

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("browse")
    with socket.socket() as taken:  # the warning comes first; a taken port then stops the command
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        assert main(["ui", "--tracking-uri", uri, "--host", "0.0.0.0", "--port", str(taken.getsockname()[1])]) == 2
    assert "the MLflow UI has no authentication: on 0.0.0.0" in capsys.readouterr().err
