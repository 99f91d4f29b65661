"""Regression suites: a fixed set of configs on fixed samples, pinned once as the reference, then
compared with it, sample by sample, on every later run.

`gprune regress SUITE.yaml --pin` evaluates the suite and writes the reference (a small JSON file to
commit, and an MLflow run tagged as the reference). `gprune regress SUITE.yaml` evaluates again and,
for every config and benchmark, compares the primary metric with the reference: a drop beyond the
suite's tolerance that a paired bootstrap of the per-sample scores confirms (its interval below 0) is a
regression. The verdict, the failing metrics and the samples whose answers flipped are printed, logged
to MLflow (tag `gprune.regress.verdict`) and given as the exit code. A reference from other data (its
fingerprint differs) or other configs is reported as not comparable, never as a regression.

The suite runs in one process on the library (one model load, no Ray): suites are small and their
point is to be reproducible.
"""

import json
import time
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from mlflow.tracking import MlflowClient
from pydantic import BeforeValidator, Field, ValidationError

from gprune.benchmarks import PRIMARY
from gprune.config import PruneConfig
from gprune.records import sample_scores

from .fingerprint import dataset_fingerprint
from .paired import paired_difference
from .spec import Fixtures, PositiveInt, Section, Text, Tracking, benchmark_names
from .tracking import context_tags, git_commit


class Verdict(IntEnum):
    """The exit codes: what cron and CI systems act on (2 is a usage error, as for every command)."""
    PASSED = 0
    REGRESSED = 1
    RUN_FAILED = 3  # the suite itself could not run its samples
    NOT_COMPARABLE = 4  # other data or other configs than the reference's


class Suite(Section):
    name: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9_-]+$")]
    model: Text = "tiny"
    benchmarks: Annotated[list[str], BeforeValidator(benchmark_names)] = ["easyvqa"]
    samples: PositiveInt = 40  # samples 0..N-1 of each benchmark: fixed ids, the same every run
    data_dir: Text | None = None
    fixtures: Fixtures | None = None
    batch_size: PositiveInt = 4
    max_new_tokens: PositiveInt | None = None
    configs: Annotated[list[dict[str, Any]], Field(min_length=1)]  # PruneConfig fields each
    tolerance: Annotated[float, Field(ge=0)] = 0.0  # allowed drop of a primary metric before the paired test
    level: Annotated[float, Field(gt=0, lt=1)] = 0.95  # of the paired bootstrap interval
    max_error_rate: Annotated[float, Field(ge=0, le=1)] = 0.05  # above it the run failed
    reference: Text | None = None  # the pinned file; default: next to the suite, NAME.reference.json
    tracking: Tracking = Tracking()

    def prune_configs(self) -> dict[str, PruneConfig]:
        return {config_key(c): PruneConfig(**c) for c in self.configs}


def config_key(config: dict) -> str:
    return " ".join(f"{k}={config[k]}" for k in sorted(config))


def load_suite(path) -> Suite:
    path = Path(path)
    try:
        suite = Suite.model_validate(yaml.safe_load(path.read_text()))
        suite.prune_configs()  # every config is a valid PruneConfig
    except (ValidationError, ValueError, TypeError) as error:
        raise ValueError(f"{path}: {error}") from None
    if suite.reference is None:
        suite.reference = str(path.with_name(f"{suite.name}.reference.json"))
    return suite


@dataclass
class Comparison:
    config: str
    benchmark: str
    metric: str
    reference: float
    value: float
    difference: float
    low: float
    high: float
    flips: list = field(default_factory=list)
    regressed: bool = False


def evaluate_suite(suite: Suite, data_dir: str | None) -> dict:
    """config key -> benchmark -> {metric, value, errors, scores {id: score}, predictions {id: text}}."""
    from gprune import evaluate, load_model

    model, processor = load_model(suite.model)
    results = {}
    for key, prune in suite.prune_configs().items():
        out = evaluate(model, processor, suite.benchmarks, prune, limit=suite.samples, batch_size=suite.batch_size,
                       data_dir=data_dir, max_new_tokens=suite.max_new_tokens)
        results[key] = {name: {
            "metric": PRIMARY[name], "value": float(result.metrics.get(PRIMARY[name], float("nan"))),
            "error_rate": result.error_rate,
            "scores": {str(i): score for i, score in sample_scores(result.records).items()},
            "predictions": {str(r.index): r.prediction for r in result.records},
        } for name, result in out.items()}
    return results


def compare(suite: Suite, reference: dict, results: dict) -> list[Comparison]:
    rows = []
    for key, benchmarks in results.items():
        for name, now in benchmarks.items():
            then = reference["results"][key][name]
            d = paired_difference({int(i): s for i, s in now["scores"].items()},
                                  {int(i): s for i, s in then["scores"].items()}, level=suite.level)
            flips = [int(i) for i in now["predictions"] if now["predictions"][i] != then["predictions"].get(i)]
            drop = then["value"] - now["value"]
            rows.append(Comparison(key, name, now["metric"], then["value"], now["value"], -drop, d.low, d.high,
                                   sorted(flips), regressed=drop > suite.tolerance and d.high < 0))
    return rows


@dataclass
class Outcome:
    verdict: Verdict
    reason: str
    comparisons: list[Comparison]
    run_id: str
    context: dict  # model, code, data fingerprint: now and in the reference


def run_suite(suite: Suite, pin: bool = False, printer=print) -> Outcome:
    from .reachability import check_tracking_store
    from .runner import prepare_data

    check_tracking_store(suite.tracking.uri)
    data_dir = prepare_data(suite)
    context = {"model": suite.model, "code": git_commit(),
               "data": dataset_fingerprint(suite.benchmarks, data_dir)}
    reference_path = Path(suite.reference)
    reference = None if pin else _read_reference(reference_path)
    if reference is not None and (reference["context"]["data"] != context["data"]
                                  or set(reference["results"]) != set(suite.prune_configs())
                                  or reference["suite"]["samples"] != suite.samples):
        why = ("the data changed (fingerprint " f"{reference['context']['data']} -> {context['data']})"
               if reference["context"]["data"] != context["data"] else "the suite's configs or samples changed")
        return _log(suite, Verdict.NOT_COMPARABLE, f"not comparable: {why}; pin a new reference with --pin",
                    [], context, reference, {}, printer)
    started = time.time()
    results = evaluate_suite(suite, data_dir)
    worst = max(b["error_rate"] for r in results.values() for b in r.values())
    if worst > suite.max_error_rate:
        return _log(suite, Verdict.RUN_FAILED, f"run failed: error rate {worst:.1%} > {suite.max_error_rate:.1%}",
                    [], context, reference, results, printer, started)
    if pin:
        reference_path.parent.mkdir(parents=True, exist_ok=True)
        reference_path.write_text(json.dumps({"suite": suite.model_dump(), "context": context, "results": results},
                                             indent=1, sort_keys=True))
        return _log(suite, Verdict.PASSED, f"pinned as the reference: {reference_path}", [], context, None, results,
                    printer, started, pinned=True)
    comparisons = compare(suite, reference, results)
    failing = [f"{c.config} {c.benchmark}.{c.metric}" for c in comparisons if c.regressed]
    verdict = Verdict.REGRESSED if failing else Verdict.PASSED
    reason = f"regressed: {'; '.join(failing)}" if failing else "passed"
    return _log(suite, verdict, reason, comparisons, context, reference, results, printer, started)


def _read_reference(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"no reference at {path}: run the suite once with --pin to record one")
    return json.loads(path.read_text())


def _log(suite, verdict, reason, comparisons, context, reference, results, printer, started=None,
         pinned=False) -> Outcome:
    from tabulate import tabulate

    then = (reference or {}).get("context", {})
    rows = [[c.config, c.benchmark, c.metric, f"{c.reference:.4f}", f"{c.value:.4f}", f"{c.difference:+.4f}",
             f"[{c.low:+.3f}, {c.high:+.3f}]", len(c.flips), "REGRESSED" if c.regressed else "ok"]
            for c in comparisons]
    if rows:
        printer(tabulate(rows, headers=["config", "benchmark", "metric", "reference", "now", "difference",
                                        f"{suite.level:.0%} CI", "flipped", ""], disable_numparse=True))
    for key in ("model", "code", "data"):
        changed = then and then.get(key) != context[key]
        printer(f"{key}: {context[key]}" + (f" (reference: {then.get(key)})" if changed else ""))
    printer(f"verdict: {reason}")
    client = MlflowClient(suite.tracking.uri)
    experiment = client.get_experiment_by_name(f"regress-{suite.name}")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(f"regress-{suite.name}")
    run = client.create_run(experiment_id, run_name="reference" if pinned else verdict.name.lower(),
                            start_time=int(1000 * (started or time.time())), tags={
                                **context_tags(), "gprune.regress.verdict": reason,
                                "gprune.regress.pinned": str(pinned),
                                "git_commit": context["code"], "dataset_fingerprint": context["data"],
                                "gprune.regress.reference_code": str(then.get("code"))})
    for c in comparisons:
        client.log_metric(run.info.run_id, f"{c.benchmark}.{c.metric}.{c.config.replace(' ', '_').replace('=', '-')}",
                          c.value)
    client.log_dict(run.info.run_id, {"verdict": reason, "context": context, "reference_context": then,
                                      "comparisons": [c.__dict__ for c in comparisons], "results": results},
                    "regress.json")
    client.set_terminated(run.info.run_id, "FAILED" if verdict == Verdict.RUN_FAILED else "FINISHED")
    return Outcome(verdict, reason, comparisons, run.info.run_id, context)
