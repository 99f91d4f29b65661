"""The report's pieces that need no sweep (the Pareto front, the paired bootstrap) and `gprune ui`; the
report on real sweeps is tested in test_sweep.py."""

import dataclasses
import json
import random
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import start_gprune_ui
from mlflow.tracking import MlflowClient

from dashboards.pareto import pareto_front
from gprune import PruneConfig, evaluate
from gprune.methods import METHODS, l2norm
from gprune.methods.base import from_scores
from gprune.records import sample_scores
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

    def chartqa_scores():
        return sample_scores(evaluate(model, processor, ["chartqa"], config, batch_size=16, data_dir=data)[
            "chartqa"].records)

    good = chartqa_scores()
    itself = paired_difference(good, chartqa_scores())
    assert itself.samples == 80 and itself.low <= 0 <= itself.high and not itself.real
    lowest = from_scores(lambda features: -l2norm.score(features))  # the deliberately broken selection
    monkeypatch.setitem(METHODS, "l2norm", dataclasses.replace(METHODS["l2norm"], reduce=lowest))
    broken = paired_difference(good, chartqa_scores())
    assert broken.real and broken.low > 0, broken


def test_the_bootstrap_on_constructed_scores_against_itself_a_broken_config_and_noise():
    generator = random.Random(0)
    good = {i: float(generator.random() < 0.8) for i in range(200)}
    difference = paired_difference(good, dict(good))
    assert difference.low <= 0 <= difference.high and not difference.real and difference.flips == []
    broken = {i: (0.0 if i % 3 else score) for i, score in good.items()}  # loses two thirds of its right answers
    difference = paired_difference(good, broken)
    assert difference.real and difference.low > 0 and difference.difference > 0.4
    assert difference.flips == [i for i in range(200) if good[i] != broken[i]]
    noisy = {i: (1.0 - s if i in (3, 50, 120) else s) for i, s in good.items()}  # three flips either way: noise
    assert not paired_difference(good, noisy).real


def test_only_the_samples_both_configs_answered_are_paired():
    difference = paired_difference({0: 1.0, 1: 0.0, 2: 1.0}, {1: 0.0, 2: 0.0, 3: 1.0})
    assert difference.samples == 2 and difference.flips == [2]


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
