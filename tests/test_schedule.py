"""The regression scheduler: APScheduler underneath, runs never overlap, a failing run does not stop it."""

import threading
import time

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from mlflow.tracking import MlflowClient

from cli.main import main
from sweep.schedule import build_scheduler, record_crash


def test_runs_never_overlap_and_a_failing_run_does_not_stop_the_schedule():
    spans, lines = [], []

    def job():
        start = time.monotonic()
        time.sleep(2.2)  # longer than the interval: the next run comes due while this one goes
        spans.append((start, time.monotonic()))
        if len(spans) == 1:
            raise RuntimeError("the first run crashes")
        if len(spans) == 3:
            scheduler.shutdown(wait=False)

    scheduler = build_scheduler(job, IntervalTrigger(seconds=1), lambda text, **_: lines.append(text))
    safety = threading.Timer(60, lambda: scheduler.shutdown(wait=False))
    safety.start()
    scheduler.start()
    safety.cancel()
    assert len(spans) == 3  # it ran again after the crash, and again
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:]))  # one at a time
    assert any(line.startswith("run failed (RuntimeError") for line in lines)
    assert any(line.startswith("skipped: the previous run is still going") for line in lines)
    assert any(line.startswith("next run: ") for line in lines)


def test_a_crashed_run_is_recorded_in_mlflow(tmp_path):
    from sweep.regress import Suite

    suite = Suite(name="nightly", configs=[{"ratio": 0.5}], tracking={"uri": f"sqlite:///{tmp_path / 'm.db'}"})
    try:
        raise FileNotFoundError("the data folder went away")
    except FileNotFoundError as error:
        record_crash(suite, error)
    client = MlflowClient(suite.tracking.uri)
    (run,) = client.search_runs([client.get_experiment_by_name("regress-nightly").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags["gprune.regress.verdict"] == "crashed: FileNotFoundError: the data folder went away"


def suite_file(tmp_path, reference: bool = True):
    path = tmp_path / "nightly.yaml"
    path.write_text("name: nightly\nconfigs: [{method: gprune, ratio: 0.5}]\n")
    if reference:
        (tmp_path / "nightly.reference.json").write_text('{"format": 2, "suite": {}, "context": {}, "results": {}}')
    return path


@pytest.mark.parametrize("cron,reference,message", [
    ("0 0 31 2 *", True, "--cron '0 0 31 2 *' never fires (no such date)"),
    ("0 3 * * *", False, "no reference at"),
    ("61 * * * *", True, "--cron '61 * * * *'"),
])
def test_a_schedule_that_could_never_run_is_refused_at_once(tmp_path, capsys, cron, reference, message):
    assert main(["schedule", str(suite_file(tmp_path, reference)), "--cron", cron]) == 2
    assert message in capsys.readouterr().err


def test_a_malformed_suite_is_named_in_one_line(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("name: nightly\nconfigs: [{method: gprune\n")
    assert main(["regress", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"suite {path} is not valid YAML" in err and "Traceback" not in err
