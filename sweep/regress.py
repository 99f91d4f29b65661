"""Regression suites: a fixed set of configs on fixed samples, pinned once as the reference, then
compared with it, sample by sample, on every later run.

`gprune regress SUITE.yaml --pin` evaluates the suite and writes the reference (a small JSON file to
commit, and an MLflow run tagged as the reference). `gprune regress SUITE.yaml` evaluates again and,
for every config and benchmark, compares the primary metric with the reference: a drop beyond the
suite's tolerance that a paired bootstrap of that metric over the benchmark's units confirms (its
interval below 0: `sweep/paired.py`) is a regression. The verdict, the failing metrics and the samples
whose answers flipped are printed, logged to MLflow (tag `gprune.regress.verdict`) and given as the
exit code. A reference from other data (its fingerprint differs), other configs, another model (name or
weights) or another code revision is reported as not comparable, never as a regression or a pass; a suite
says which of model and code it compares across (`compare_across`, or `--across`). A suite too small for
its paired test to confirm a drop says how large a change it can catch.

The reference can also be lmms-eval's own samples files of one config (`--lmms-eval-reference FILE ...`,
what its `--log_samples` writes): each benchmark with a file is compared on the documents both scored,
after checking that the file's targets are this data's.

The suite runs in one process on the library (one model load, no Ray): suites are small and their
point is to be reproducible.
"""

import json
import time
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from gprune.benchmarks import PRIMARY, TASKS
from gprune.config import PruneConfig
from gprune.measures import Measure
from gprune.records import field_of
from gprune.tasks import declared
from gprune.units import primary_value

from .fingerprint import dataset_fingerprint, model_fingerprint
from .paired import paired_difference, smallest_confirmable_change
from .run_logger import RunLogger
from .spec import Evaluation, Finite, PositiveInt, Text
from .tags import PINNED, REFERENCE_CODE, VERDICT
from .tracking import git_commit
from .yaml_input import load_yaml

REFERENCE_FORMAT = 2  # 2: every sample's score, answer and primary-metric result (1 kept scores only)


class Verdict(IntEnum):
    """The exit codes: what cron and CI systems act on (2 is a usage error, as for every command)."""
    PASSED = 0
    REGRESSED = 1
    RUN_FAILED = 3  # the suite itself could not run its samples
    NOT_COMPARABLE = 4  # other data or other configs than the reference's


class Suite(Evaluation):
    samples: PositiveInt = 40  # samples 0..N-1 of each benchmark: fixed ids, the same every run
    configs: Annotated[list[dict[str, Any]], Field(min_length=1)]  # PruneConfig fields each
    tolerance: Annotated[Finite, Field(ge=0)] = 0.0  # allowed drop of a primary metric before the paired test
    level: Annotated[Finite, Field(gt=0, lt=1)] = 0.95  # of the paired bootstrap interval
    reference: Text | None = None  # the pinned file; default: next to the suite, NAME.reference.json
    # what may differ from the reference and still be compared: code (a nightly suite's point), model
    compare_across: list[Literal["code", "model"]] = []

    def prune_configs(self) -> dict[str, PruneConfig]:
        return {config_key(c): PruneConfig(**c) for c in self.configs}


def config_key(config: dict) -> str:
    return " ".join(f"{k}={config[k]}" for k in sorted(config))


def load_suite(path) -> Suite:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no suite file {path}; sweep/suites/smoke.yaml is an example")
    data = load_yaml(path, "suite")
    try:
        suite = Suite.model_validate(data)
        suite.prune_configs()  # every config is a valid PruneConfig
    except (ValidationError, ValueError, TypeError) as error:
        raise ValueError(f"{path}: {error}") from None
    if suite.reference is None:
        suite = suite.with_changes(reference=str(path.with_name(f"{suite.name}.reference.json")))
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
    units: int = 0


def benchmark_entry(name: str, records, metric_value: float | None = None, error_rate: float = 0.0) -> dict:
    """What a reference keeps of one benchmark: its primary metric and, per sample, what the paired test reads
    (index, score, answer, target and the primary metric's process_results value)."""
    primary = PRIMARY[name]
    samples = []
    for record in records:
        results = field_of(record, "results") or {}
        samples.append({**{key: field_of(record, key) for key in ("index", "score", "prediction", "target")},
                        "results": {primary: results[primary]} if primary in results else {}})
    value = primary_value(declared(TASKS[name]), samples) if metric_value is None else metric_value
    return {"metric": primary, "value": float(value), Measure.ERROR_RATE: error_rate, "samples": samples}


def evaluate_suite(suite: Suite, data_dir: str | None) -> tuple[dict, dict]:
    """(config key -> benchmark -> benchmark_entry, config key -> benchmark -> every sample's record)."""
    from gprune import evaluate, load_model

    model, processor = load_model(suite.model)
    results, records = {}, {}
    for key, prune in suite.prune_configs().items():
        out = evaluate(model, processor, suite.benchmarks, prune, limit=suite.samples, batch_size=suite.batch_size,
                       data_dir=data_dir, max_new_tokens=suite.max_new_tokens)
        results[key] = {name: benchmark_entry(name, result.records, result.metrics.get(PRIMARY[name], float("nan")),
                                              result.error_rate)
                        for name, result in out.items()}
        records[key] = {name: result.records for name, result in out.items()}
    return results, records


def compare(suite: Suite, reference: dict, results: dict) -> list[Comparison]:
    """Every config and benchmark the reference has, the now against the then."""
    rows = []
    for key, benchmarks in results.items():
        for name, now in benchmarks.items():
            if name not in reference["results"][key]:
                continue  # an lmms-eval reference without this benchmark's file
            then = reference["results"][key][name]
            d = paired_difference(name, now["samples"], then["samples"], level=suite.level)
            answers = {s["index"]: s["prediction"] for s in then["samples"]}
            flips = [s["index"] for s in now["samples"]
                     if s["index"] in answers and s["prediction"] != answers[s["index"]]]
            # the metric over the units both scored (all of them, against a reference pinned on these samples)
            rows.append(Comparison(key, name, now["metric"], d.b, d.a, d.difference, d.low, d.high, sorted(flips),
                                   regressed=-d.difference > suite.tolerance and d.high < 0, units=d.units))
    return rows


@dataclass
class Outcome:
    verdict: Verdict
    reason: str
    comparisons: list[Comparison]
    run_id: str
    context: dict  # model, code, data fingerprint: now and in the reference


def run_suite(suite: Suite, pin: bool = False, printer=print, lmms_eval_reference: list | None = None) -> Outcome:
    """Evaluate the suite and compare it with its pinned reference (or pin it, or compare with lmms-eval's own
    samples files of one config)."""
    from .data_dir import prepare_data
    from .reachability import check_tracking_store

    check_tracking_store(suite.tracking.uri)
    data_dir = prepare_data(suite)
    context = {"model": suite.model, "model_fingerprint": model_fingerprint(suite.model), "code": git_commit(),
               "data": dataset_fingerprint(suite.benchmarks, data_dir)}
    reference_path = Path(suite.reference)
    if lmms_eval_reference:
        reference = read_lmms_eval_reference(suite, lmms_eval_reference)
    else:
        reference = None if pin else read_reference(reference_path)
    why = _not_comparable(suite, reference, context)
    if why:
        return _log(suite, Verdict.NOT_COMPARABLE, f"not comparable: {why}; pin a new reference with --pin",
                    [], context, reference, {}, printer)
    started = time.time()
    results, records = evaluate_suite(suite, data_dir)
    worst = max(b[Measure.ERROR_RATE] for r in results.values() for b in r.values())
    if worst > suite.max_error_rate:
        return _log(suite, Verdict.RUN_FAILED, f"run failed: error rate {worst:.1%} > {suite.max_error_rate:.1%}",
                    [], context, reference, results, printer, started, records=records)
    if pin:
        reference_path.parent.mkdir(parents=True, exist_ok=True)
        reference_path.write_text(json.dumps({"format": REFERENCE_FORMAT, "suite": suite.model_dump(),
                                              "context": context, "results": results}, indent=1, sort_keys=True))
        return _log(suite, Verdict.PASSED, f"pinned as the reference: {reference_path}", [], context, None, results,
                    printer, started, pinned=True, records=records)
    why = _other_targets(reference, results)
    if why:
        return _log(suite, Verdict.NOT_COMPARABLE, f"not comparable: {why}", [], context, reference, results,
                    printer, started, records=records)
    comparisons = compare(suite, reference, results)
    verdict, reason = judge(comparisons, suite.level)
    return _log(suite, verdict, reason, comparisons, context, reference, results, printer, started, records=records)


def judge(comparisons: list[Comparison], level: float = 0.95) -> tuple[Verdict, str]:
    failing = [f"{c.config} {c.benchmark}.{c.metric}" for c in comparisons if c.regressed]
    if failing:
        return Verdict.REGRESSED, f"regressed: {'; '.join(failing)}"
    blind = sorted(set(filter(None, (_too_small(c, level) for c in comparisons))))
    return Verdict.PASSED, "passed" + (f" ({'; '.join(blind)})" if blind else "")


def _too_small(comparison: Comparison, level: float) -> str | None:
    """What a benchmark's unit count lets the paired test confirm, when that is coarse (over a tenth of them)."""
    needed = smallest_confirmable_change(comparison.units, level)
    if needed is None:
        return f"{comparison.benchmark}: {comparison.units} units: no change can fail at level {level}"
    if needed / comparison.units > 0.1:
        return (f"{comparison.benchmark}: {comparison.units} units: only a change of at least {needed} of them "
                f"({needed / comparison.units:.0%}) can fail")
    return None


def _not_comparable(suite: Suite, reference: dict | None, context: dict) -> str | None:
    """Why the reference cannot be compared with this suite's run, before anything is evaluated."""
    if reference is None or "lmms_eval" in reference:
        return None  # pinning; lmms-eval files are checked sample by sample after the run
    then = reference["context"]
    if then["data"] != context["data"]:
        return f"the data changed (fingerprint {then['data']} -> {context['data']})"
    model_then = (then.get("model"), then.get("model_fingerprint"))
    if "model" not in suite.compare_across and model_then != (context["model"], context["model_fingerprint"]):
        return (f"the model changed ({then.get('model')} {then.get('model_fingerprint') or '(no fingerprint)'} -> "
                f"{context['model']} {context['model_fingerprint']}); to compare across models, add model to "
                "compare_across (or --across model)")
    if "code" not in suite.compare_across and then.get("code") != context["code"]:
        return (f"the code changed (commit {then.get('code')} -> {context['code']}); to compare across revisions "
                "(a nightly suite's point), add code to compare_across (or --across code)")
    if set(reference["results"]) != set(suite.prune_configs()) or reference["suite"]["samples"] != suite.samples:
        return "the suite's configs or samples changed"
    return None


def _other_targets(reference: dict, results: dict) -> str | None:
    """An lmms-eval reference must be of this data: the same target at every doc_id both scored."""
    if "lmms_eval" not in reference:
        return None
    for key, benchmarks in reference["results"].items():
        for name, then in benchmarks.items():
            now = {s["index"]: s["target"] for s in results[key][name]["samples"]}
            shared = [s for s in then["samples"] if s["index"] in now]
            if not shared:
                return f"the lmms-eval file of {name} shares no doc_id with this suite's samples 0..{len(now) - 1}"
            for sample in shared:
                if str(sample["target"]) != str(now[sample["index"]]):
                    return (f"{name} doc_id {sample['index']}: the lmms-eval file's target {sample['target']!r} is "
                            f"not this data's {now[sample['index']]!r} (another split, order or version of the data)")
    return None


def read_reference(path: Path) -> dict:
    """A pinned reference file, checked: one clear error naming the file for anything else."""
    if not path.exists():
        raise FileNotFoundError(f"no reference at {path}: run the suite once with --pin to record one")
    try:
        reference = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"reference {path} is not JSON ({error}); pin it again with --pin") from None
    if not isinstance(reference, dict) or not {"suite", "context", "results"} <= set(reference):
        raise ValueError(f"reference {path} is not a pinned reference (it needs suite, context and results); "
                         "pin it again with --pin")
    if reference.get("format", 1) != REFERENCE_FORMAT:
        raise ValueError(f"reference {path} was pinned by an older build (format {reference.get('format', 1)}, "
                         f"this build reads {REFERENCE_FORMAT}: it needs each sample's primary-metric result); "
                         "pin it again with --pin")
    return reference


def read_lmms_eval_reference(suite: Suite, files: list) -> dict:
    """lmms-eval samples files (one per benchmark) as the reference of a one-config suite."""
    from gprune.lmms_samples import read_samples

    configs = list(suite.prune_configs())
    if len(configs) != 1:
        raise ValueError(f"an lmms-eval reference is a run of one config; suite {suite.name!r} has {len(configs)}: "
                         "give it the one config the lmms-eval run used")
    results = {}
    for path in files:
        name, records = read_samples(path)
        if name not in suite.benchmarks:
            raise ValueError(f"{path} holds {name}, which suite {suite.name!r} does not run "
                             f"(benchmarks: {', '.join(suite.benchmarks)}); add it or drop the file")
        if name in results:
            raise ValueError(f"two lmms-eval files hold {name}: give one per benchmark")
        results[name] = benchmark_entry(name, records)
    return {"lmms_eval": [str(f) for f in files], "results": {configs[0]: results},
            "context": {"model": "lmms-eval samples files", "code": None,
                        "data": "checked per doc_id (targets)"}}


def slug(config: str) -> str:
    """A config key as a metric or file name: "method=gprune ratio=0.5" -> "method-gprune_ratio-0.5"."""
    return config.replace(" ", "_").replace("=", "-")


def suite_logger(suite: Suite) -> RunLogger:
    return RunLogger(suite.tracking.uri, f"regress-{suite.name}", outage_seconds=suite.tracking.outage_seconds)


def _log(suite, verdict, reason, comparisons, context, reference, results, printer, started=None,
         pinned=False, records=None) -> Outcome:
    """The run in MLflow first (what cron and CI read), then the table and the verdict on the console."""
    from tabulate import tabulate

    then = (reference or {}).get("context", {})
    logger = suite_logger(suite)
    logger.close_abandoned(printer)
    run_id = logger.open("reference" if pinned else verdict.name.lower(), {
        VERDICT: reason, PINNED: str(pinned), "git_commit": context["code"],
        "dataset_fingerprint": context["data"], REFERENCE_CODE: str(then.get("code"))}, started)
    logger.log(run_id, metrics={f"{c.benchmark}.{c.metric}.{slug(c.config)}": c.value for c in comparisons})
    logger.log_json(run_id, {"verdict": reason, "context": context, "reference_context": then,
                             "comparisons": [c.__dict__ for c in comparisons], "results": results}, "regress.json")
    for config, per_benchmark in (records or {}).items():  # every sample, as a sweep's runs hold them
        logger.log_records(run_id, per_benchmark, f"{slug(config)}.parquet")
    logger.close(run_id, "FAILED" if verdict == Verdict.RUN_FAILED else "FINISHED")

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
    return Outcome(verdict, reason, comparisons, run_id, context)
