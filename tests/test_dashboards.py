"""The report's pieces that need no sweep (the Pareto front, the paired bootstrap on real answers) and
`gprune ui`; the report on real sweeps is tested in test_sweep.py, the bootstrap's statistics in test_paired.py."""

import dataclasses
import json
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import start_gprune_ui
from mlflow.tracking import MlflowClient

from cli.main import main
from dashboards.pareto import pareto_front
from gprune import PruneConfig, evaluate
from gprune.methods import METHODS, l2norm
from gprune.methods.base import from_scores
from sweep.paired import paired_difference
from testbed.fixtures import write_fixtures

REPO = Path(__file__).resolve().parents[1]


def test_the_pareto_front_of_constructed_points():
    points = [(1.0, 0.5), (2.0, 0.7), (3.0, 0.69), (2.0, 0.6), (4.0, 0.9), (0.5, 0.2), (4.0, 0.9), (5.0, float("nan"))]
    # (3.0, 0.69) costs more for less than (2.0, 0.7); (2.0, 0.6) loses to (2.0, 0.7) at the same cost;
    # the two equal best points are both on it; NaN is never
    assert pareto_front(points) == {0, 1, 4, 5, 6}
    assert pareto_front([]) == set()


def test_the_bootstrap_on_real_answers_separates_a_config_from_one_keeping_its_lowest_scoring_tokens(
        tiny, tmp_path, monkeypatch):
    """The trained tiny model on 80 ChartQA fixture charts (seed 0), L2-norm selection at 90%: run twice it
    answers the same; made to keep the lowest-norm tokens instead (the background) it loses about a fifth of
    its right answers (measured 0.21, interval [0.12, 0.31]; seeds 1-3 gave lower bounds of 0.11-0.18)."""
    model, processor = tiny
    data = write_fixtures(tmp_path, n=80, seed=0, benchmarks=["chartqa"])
    config = PruneConfig(method="l2norm", ratio=0.9)

    def chartqa_records():
        return evaluate(model, processor, ["chartqa"], config, batch_size=16, data_dir=data)["chartqa"].records

    good = chartqa_records()
    itself = paired_difference("chartqa", good, chartqa_records())
    assert itself.units == 80 and itself.low <= 0 <= itself.high and not itself.real
    lowest = from_scores(lambda features: -l2norm.score(features))  # the deliberately broken selection
    monkeypatch.setitem(METHODS, "l2norm", dataclasses.replace(METHODS["l2norm"], reduce=lowest))
    broken = paired_difference("chartqa", good, chartqa_records())
    assert broken.real and broken.low > 0, broken


@pytest.mark.slow
def test_gprune_ui_serves_the_store_on_loopback_and_links_the_runs_table(tmp_path, servers):
    free_port, wait_until_healthy = servers
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = MlflowClient(uri).create_experiment("browse")
    port = free_port()
    server = start_gprune_ui(uri, port, "browse")
    try:
        link = server.stdout.readline()
        assert f"http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs?workflowType=machine_learning" in link
        wait_until_healthy(f"http://127.0.0.1:{port}/health", server, "the UI")
        answer = json.load(urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=browse", timeout=10))
        assert answer["experiment"]["experiment_id"] == experiment_id
    finally:
        server.terminate()
        server.wait(timeout=30)
    deadline = time.monotonic() + 30  # the server it started went with it
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
            time.sleep(0.5)
        except OSError:
            break
    else:
        raise AssertionError("the MLflow server outlived `gprune ui`")


def test_kept_indices_become_masks_over_the_base_view_and_the_grid():
    from dashboards.kept_tokens import kept_masks, rank

    # base view 2 x 2 (indices 0-3), grid 2 rows x 3 columns, each row ending in a newline (7 and 11)
    entry = {"base": 4, "base_side": 2, "rows": 2, "cols": 3, "kept": [0, 3, 4, 6, 7, 9, 11]}
    base, grid = kept_masks(entry)
    assert base.tolist() == [[True, False], [False, True]]
    assert grid.tolist() == [[True, False, True], [False, True, False]]
    assert rank([0.5, 10.0, 0.1, 0.2]).tolist() == [2 / 3, 1.0, 0.0, 1 / 3]


def test_ui_and_report_refuse_a_store_that_is_not_there_without_creating_it(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "x.db"
    for argv in (["ui", "--tracking-uri", f"sqlite:///{missing}"], ["report", "--experiment", "grid",
                                                                   "--tracking-uri", f"sqlite:///{missing}"]):
        assert main(argv) == 2
        assert f"no MLflow store at {missing}" in capsys.readouterr().err
    assert not missing.parent.exists()


def test_ui_refuses_a_port_that_is_no_port_or_is_taken(tmp_path, capsys):
    import socket

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("browse")
    assert main(["ui", "--tracking-uri", uri, "--port", "70000"]) == 2
    assert "70000 is not a port (1-65535)" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--tracking-uri", uri, "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_report_on_an_experiment_without_a_sweep_result_says_so(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.create_experiment("empty")
    assert main(["report", "--experiment", "empty", "--tracking-uri", uri]) == 2
    assert "holds no sweep runs" in capsys.readouterr().err
    started = client.create_run(client.create_experiment("started"), tags={"gprune.role": "parent"})
    client.set_terminated(started.info.run_id, "KILLED")
    assert main(["report", "--experiment", "started", "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert "has no baseline logged" in err and "Traceback" not in err
