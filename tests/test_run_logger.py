"""One MLflow writer: sweeps, regression suites, the scheduler and the report write runs only through
sweep/run_logger.RunLogger (read from the source), and a suite's run holds its records as a sweep's does."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WRITES = {"create_run", "log_batch", "log_metric", "log_param", "set_terminated", "log_text", "log_dict",
          "log_artifact", "log_artifacts", "set_tag", "delete_tag", "update_run", "log_inputs", "create_experiment",
          "set_experiment_tag", "delete_run", "log_figure", "log_image", "log_table"}
MODULES = sorted(path for package in ("gprune", "sweep", "dashboards", "cli", "workers")
                 for path in (REPO / package).rglob("*.py") if path.name != "run_logger.py")


def mlflow_writes(path: Path) -> list[str]:
    """Calls of an MLflow writing method on anything but a RunLogger (`self` in a RunLogger subclass, `logger`)."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES:
            owner = ast.unparse(node.func.value)
            if owner not in ("self", "logger"):  # self.client: a subclass going around the logger
                found.append(f"{node.lineno}: {owner}.{node.func.attr}")
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(REPO)))
def test_runs_are_written_only_through_the_run_logger(path):
    assert mlflow_writes(path) == []


def test_a_suite_and_a_sweep_write_with_the_same_logger():
    from sweep.regress import Suite, suite_logger
    from sweep.run_logger import RunLogger
    from sweep.spec import Evaluation, SweepSpec
    from sweep.tracking import SweepTracker

    assert issubclass(SweepTracker, RunLogger)
    suite = Suite(name="s", configs=[{"method": "gprune", "ratio": 0.5}])
    assert isinstance(suite_logger(suite), RunLogger)
    assert issubclass(Suite, Evaluation) and issubclass(SweepSpec, Evaluation)  # one home for the shared fields
    shared = set(Evaluation.model_fields)
    assert {"model", "benchmarks", "batch_size", "tracking", "max_error_rate"} <= shared


def test_specs_are_immutable_and_change_by_copy():
    from pydantic import ValidationError

    from sweep.spec import SweepSpec

    spec = SweepSpec(name="s")
    with pytest.raises(ValidationError):
        spec.batch_size = 8
    with pytest.raises(ValidationError):
        spec.tracking.uri = "sqlite:///other.db"
    changed = spec.with_changes(batch_size=8, tracking__uri="sqlite:///other.db")
    assert (changed.batch_size, changed.tracking.uri) == (8, "sqlite:///other.db")
    assert spec.batch_size == 4 and spec.tracking.uri != "sqlite:///other.db"
