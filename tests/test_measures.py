"""Every number a sweep logs is declared once (gprune/measures.py) and every MLflow tag spelled once (sweep/tags.py):
the flat metrics of a trial are exactly the declarations plus each benchmark's lmms-eval metrics, and no other module
writes a measure's or a tag's name as a string (read from the source)."""

import ast
import re
from pathlib import Path

import pytest

from gprune.benchmarks import PRIMARY
from gprune.measures import COST, PER_BENCHMARK, Combine, Measure
from gprune.records import BenchmarkResult, SampleRecord, batch_timing, summarize_records
from sweep import tags
from sweep.metrics import summarize

REPO = Path(__file__).resolve().parents[1]
DECLARING = {"gprune/measures.py", "sweep/tags.py"}
MODULES = sorted(path for package in ("gprune", "sweep", "dashboards", "cli", "workers")
                 for path in (REPO / package).rglob("*.py") if str(path.relative_to(REPO)) not in DECLARING)
TAG_NAMES = {value for name, value in vars(tags).items() if name.isupper() and isinstance(value, str)}


def result(name: str, value: float, errors: int = 1) -> BenchmarkResult:
    records = [SampleRecord(index=i, error="model: failed" if i < errors else None, visual_tokens_kept=10,
                            visual_tokens_full=20, tflops_exact=1.0 + i, tflops_fastv=0.5) for i in range(4)]
    return BenchmarkResult(benchmark=name, task=name, metrics={PRIMARY[name]: value}, note="", prune={},
                           **summarize_records(records, 2.0, [3.0, 4.0, 5.0]), **batch_timing(3, 0.3, 0.6, 12),
                           throughput={}, answers={})


def test_a_trial_logs_exactly_the_declared_measures_and_the_benchmarks_own_metrics():
    trial = summarize({"pope": result("pope", 0.8), "gqa": result("gqa", 0.4)},
                      baseline={"pope": result("pope", 0.9), "gqa": result("gqa", 0.5)})
    expected = ({f"{b}.{m}" for b in ("pope", "gqa") for m in (*PER_BENCHMARK, Measure.RETENTION, PRIMARY[b])}
                | {str(m) for m in Measure if m.combine != Combine.NONE})
    assert set(trial) == expected
    assert all(type(key) is str for key in trial)  # plain strings: Tune and MLflow see names, not enum members
    assert trial[Measure.MEAN_RETENTION] == pytest.approx((0.8 / 0.9 + 0.4 / 0.5) / 2)
    baseline = summarize({"pope": result("pope", 0.9)}, None)
    assert not any(key.endswith(Measure.RETENTION) or key == Measure.SPEEDUP for key in baseline)


def test_each_declaration_says_its_label_direction_and_form():
    for measure in Measure:
        assert measure.label and measure.meaning and isinstance(measure.combine, Combine)
        assert measure.show(float("nan")) == "" and measure.show(None) == ""
    assert [m.label for m in COST] == ["retention", "TFLOPs exact", "samples/s", "speedup"]
    assert Measure.TFLOPS_EXACT.higher_is_better is False and Measure.MEAN_RETENTION.higher_is_better is True


def strings(path: Path) -> list[tuple[int, str]]:
    """A module's string constants (f-strings' literal parts included), docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def spelled_elsewhere(text: str) -> bool:
    measures = "|".join(re.escape(str(m)) for m in Measure)
    return (text in {str(m) for m in Measure} or text in TAG_NAMES
            or re.search(rf"(metrics\.|\.)({measures})$", text) is not None
            or re.search(r"tags\.(gprune|mlflow)\.", text) is not None
            or re.search(r"(^|`)gprune\.(role|trial_|logged|superseded|abandoned|sweep|driver|regress)", text)
            is not None)


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(REPO)))
def test_no_module_spells_a_measure_or_a_tag_itself(path):
    assert [(line, text) for line, text in strings(path) if spelled_elsewhere(text)] == []


def test_the_reader_sees_a_spelled_name():
    assert all(map(spelled_elsewhere, ["tflops_exact", "metrics.mean_retention", ".error_rate", "gprune.role",
                                       "tags.gprune.role", "tags.mlflow.runName", "mlflow.parentRunId"]))
    assert not any(map(spelled_elsewhere, ["exact", "the sweep's errors", "gprune.decoding"]))
