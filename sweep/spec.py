"""The sweep file: what to sweep, on which model and benchmarks, how to search, where to log.

pydantic checks each key's type and range; `consistency_problems` checks what spans keys (the
search space against PruneConfig, budgets against benchmarks and the scheduler, the data on disk).
`parse_spec` runs both and raises one SweepSpecError listing every problem with its path in the
file, before anything starts.
"""

import math
import os
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from gprune.answers import AnswerRules
from gprune.benchmarks import TASKS, check_data, resolve_benchmarks
from gprune.config import PruneConfig
from gprune.decoding import Decoding
from gprune.families import method_misfit
from gprune.loading import check_model_source, model_config
from gprune.methods import METHODS, declared_params, users
from gprune.methods.random import MAX_SEED
from gprune.tasks import DataLayoutError

from .presets import PRESETS_DIR, list_presets
from .reachability import SCHEMES_HINT, TRACKING_SCHEMES
from .yaml_input import load_yaml, short

# the methods' declared parameters; seed and positions are fixed per sweep
SWEEPABLE = ("method", "ratio", *(name for name in declared_params() if name != "seed"))
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")

PositiveInt = Annotated[int, Field(strict=True, ge=1)]
NonNegativeInt = Annotated[int, Field(strict=True, ge=0)]
Int = Annotated[int, Field(strict=True)]
Text = Annotated[str, Field(strict=True)]
Finite = Annotated[float, Field(allow_inf_nan=False)]  # .inf and .nan are YAML floats too


class SweepSpecError(ValueError):
    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{source} has {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))


class Section(BaseModel):
    # frozen: a spec is what the user wrote, checked; a changed one is a copy (`with_changes`)
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    def with_changes(self, **changes):
        """A copy with `changes` (dotted keys reach into sections: tracking__uri changes tracking.uri)."""
        update, nested = {}, {}
        for key, value in changes.items():
            section, _, inner = key.partition("__")
            if inner:
                nested.setdefault(section, {})[inner] = value
            else:
                update[key] = value
        update |= {section: getattr(self, section).with_changes(**inner) for section, inner in nested.items()}
        return self.model_copy(update=update)


class Search(Section):
    algorithm: Literal["grid", "optuna"] = "grid"
    num_samples: PositiveInt = 1  # grid: repeats of the whole grid; optuna: number of trials


class Scheduler(Section):
    type: Literal["none", "asha"] = "none"
    slices: PositiveInt = 4  # the sample budget is cut into this many slices; a trial reports after each
    grace_period: PositiveInt = 1
    reduction_factor: Annotated[int, Field(strict=True, ge=2)] = 2


class Workers(Section):
    count: PositiveInt | None = None  # default: one per GPU, else one CPU worker
    cpus_per_worker: Annotated[Finite, Field(gt=0)] = 1
    cache_mb: NonNegativeInt = 512  # vision-feature cache per worker; 0 disables it
    slice_samples: PositiveInt = 1000  # samples per call to a worker: the unit kept on disk, resumed, shown as done


class Tracking(Section):
    # MLflow's own variable names the store where the file does not (the compose stack sets it for every service)
    uri: Text = Field(default_factory=lambda: os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db",
                      validate_default=True)
    artifact_location: Text | None = None  # default: ./mlartifacts
    outage_seconds: Annotated[Finite, Field(ge=0)] = 300  # how long MLflow calls wait out an unreachable store

    @field_validator("uri")
    @classmethod
    def _known_scheme(cls, uri: str) -> str:
        if not uri.startswith(TRACKING_SCHEMES):
            raise ValueError(f"{uri!r}: {SCHEMES_HINT}")
        return uri


class Generation(Section):
    """gprune.decoding.Decoding's settings; validated by Decoding itself in the checks across keys."""
    cache: Text = Decoding.cache
    compile: Text = Decoding.compile
    bucket: PositiveInt = Decoding.bucket

    def decoding(self) -> Decoding:
        return Decoding(**self.model_dump())


class Fixtures(Section):
    n: Annotated[int, Field(strict=True, ge=2)] = 40  # MME needs a question pair per image
    seed: NonNegativeInt = 0


def benchmark_names(value):
    if not isinstance(value, (str, list)):
        raise ValueError(f"{value!r} must be a list of benchmark names or a comma-separated string")
    return resolve_benchmarks(value)


def _limit(value):
    """One sample budget for every benchmark, {benchmark: budget}, or None (whole splits)."""
    budgets = value if isinstance(value, dict) else {"": value}
    for name, budget in budgets.items():
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise ValueError(f"{name + ': ' if name else ''}{budget!r} must be an integer >= 1 (or null for all)")
    return value


class Evaluation(Section):
    """What every evaluation run names, a sweep's (SweepSpec) and a regression suite's (sweep.regress.Suite)."""
    name: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9_-]+$")]  # names the experiment
    model: Text = "tiny"
    benchmarks: Annotated[list[str], BeforeValidator(benchmark_names)] = ["easyvqa"]
    data_dir: Text | None = None
    fixtures: Fixtures | None = None  # generate fixtures as the data dir when data_dir is unset
    batch_size: PositiveInt = 4
    max_new_tokens: PositiveInt | None = None
    max_error_rate: Annotated[Finite, Field(ge=0, le=1)] = 0.05  # above it a trial (a suite's run) failed
    tracking: Tracking = Field(default_factory=Tracking)  # made per file: MLFLOW_TRACKING_URI as it is then


class SweepSpec(Evaluation):
    limit: Annotated[Any, BeforeValidator(_limit)] = 20  # samples per benchmark per trial: n or {benchmark: n}
    seed: Annotated[int, Field(strict=True, ge=0, le=MAX_SEED)] = 0  # random selection's (a 64-bit seed)
    concurrency: PositiveInt = 2
    search_space: dict[str, Any] = {}
    search: Search = Search()
    scheduler: Scheduler = Scheduler()
    workers: Workers = Workers()
    generation: Generation = Generation()
    answers: dict[str, Any] = {}  # gprune.answers.AnswerRules' fields; {} is lmms-eval's llava_hf behaviour
    storage: Text = ".sweeps"  # Ray Tune's experiment folder (for --resume)
    progress_seconds: Annotated[Finite, Field(gt=0)] = 30  # how often running trials' progress is printed and logged

    def limits(self) -> dict:
        """Each benchmark's sample budget (None: the whole split)."""
        if isinstance(self.limit, dict):
            return {name: self.limit.get(name) for name in self.benchmarks}
        return {name: self.limit for name in self.benchmarks}

    def fixed_prune(self) -> dict:
        """Search-space entries that are a single value, not a grid or a distribution."""
        return {k: v for k, v in self.search_space.items() if not isinstance(v, (list, dict))}

    def to_dict(self) -> dict:
        return self.model_dump()

    def answer_rules(self) -> AnswerRules:
        known = [f.name for f in fields(AnswerRules)]
        unknown = sorted(set(self.answers) - set(known))
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return AnswerRules(**self.answers)

    def consistency_problems(self, skip: set, check_files: bool) -> list[str]:
        """What spans keys; checks touching a key in `skip` (already reported) are left out."""
        problems = [] if "search_space" in skip else _space_problems(self.search_space)
        if "model" not in skip and check_files:
            try:
                check_model_source(self.model)  # a folder is checked here, not first inside a Ray worker
                if "search_space" not in skip:
                    problems += _misfits(self.search_space, model_config(self.model))
            except (ValueError, OSError) as error:
                problems.append(f"model: {error}")
        if {"search", "search_space"}.isdisjoint(skip) and self.search.algorithm == "grid" and any(
                isinstance(v, dict) for v in self.search_space.values()):
            problems.append("search.algorithm: grid cannot sample distributions; use lists, or algorithm: optuna")
        if {"limit", "benchmarks"}.isdisjoint(skip) and isinstance(self.limit, dict):
            problems += [f"limit.{name}: not one of this sweep's benchmarks"
                         for name in sorted(set(self.limit) - set(self.benchmarks))]
        asha = "scheduler" not in skip and self.scheduler.type == "asha"
        slices = self.scheduler.slices
        if asha and slices < 2:
            problems.append(f"scheduler.slices: {slices} must be >= 2 for asha (it stops trials between slices)")
        if asha and {"limit", "limit values", "benchmarks"}.isdisjoint(skip):
            for name, budget in self.limits().items():
                if budget is None:
                    problems.append(f"limit: asha needs a finite sample budget for {name} (set limit)")
                elif budget < slices:
                    problems.append(f"limit: {name}: {budget} is smaller than scheduler.slices={slices}")
        if "generation" not in skip:
            try:
                self.generation.decoding()
            except ValueError as error:
                problems.append(f"generation: {error}")
        if "answers" not in skip:
            try:
                self.answer_rules()
            except (TypeError, ValueError) as error:
                problems.append(f"answers: {error}")
        generated = self.data_dir is None and self.fixtures is not None  # fixtures are written at start
        if check_files and not generated and {"benchmarks", "data_dir", "fixtures"}.isdisjoint(skip):
            try:
                check_data(self.benchmarks, self.data_dir)
            except DataLayoutError as error:
                problems.append(f"data: {error}")
        return problems


def _space_problems(space: dict) -> list[str]:
    """Each grid value, distribution bound or fixed value must make a valid PruneConfig."""
    problems = []

    def check(key, value, where):
        try:
            PruneConfig(**{key: value})
        except (ValueError, TypeError) as error:
            problems.append(f"{where}: {error}")

    methods = _methods_of(space)
    for key, value in space.items():
        where = f"search_space.{key}"
        if key not in SWEEPABLE:
            problems.append(f"{where}: unknown parameter; sweepable are {', '.join(SWEEPABLE)}")
            continue
        problems += _unused(key, value, methods, where)
        if isinstance(value, list):
            if not value:
                problems.append(f"{where}: an empty grid")
            for item in value:
                check(key, item, where)
        elif isinstance(value, dict):
            kind, args = next(iter(value.items())) if len(value) == 1 else (None, None)
            if kind not in DISTRIBUTIONS:
                problems.append(f"{where}: a distribution is one of {{{', '.join(DISTRIBUTIONS)}: ...}}, "
                                f"got {short(value)}")
            elif kind == "choice":
                for item in args if isinstance(args, list) and args else [None]:
                    check(key, item, where)
            elif not (isinstance(args, list) and len(args) == 2 and all(isinstance(a, (int, float)) for a in args)
                      and args[0] < args[1]):
                problems.append(f"{where}: {kind} takes [low, high] with low < high, got {short(args)}")
            else:
                for bound in args:
                    check(key, int(bound) if kind == "randint" else bound, where)
        else:
            check(key, value, where)
    return problems


def _methods_of(space: dict) -> list:
    """The methods a search space runs (PruneConfig's default when it names none)."""
    value = space.get("method", PruneConfig.method)
    if isinstance(value, dict):
        value = value.get("choice", [])
    return [m for m in (value if isinstance(value, list) else [value]) if m in METHODS]


def _unused(key: str, value, methods: list, where: str) -> list[str]:
    """A method parameter must be used by the sweep's methods: one no method uses would run identical trials
    logged as different configs; one swept over methods of which only some use it would repeat theirs."""
    if key in ("method", "ratio") or not methods:
        return []
    using = [m for m in methods if key in {p.name for p in METHODS[m].params}]
    if not using:
        return [f"{where}: a parameter of {', '.join(users(key))}, which this sweep does not run (method: "
                f"{', '.join(methods)}); remove it, or add a method that uses it"]
    swept = isinstance(value, dict) or (isinstance(value, list) and len(value) > 1)
    if swept and len(using) < len(methods):
        idle = [m for m in methods if m not in using]
        return [f"{where}: only {', '.join(using)} uses it, so each {', '.join(idle)} trial would run once per value, "
                f"identical; sweep {', '.join(using)} alone, or give {key} one value"]
    return []


def _misfits(space: dict, config) -> list[str]:
    """Each searched value of a parameter that must fit the model (FastV's lm_layer below its depth)."""
    if config is None:
        return []
    problems = [f"search_space.method: {why}" for why in filter(None, (method_misfit(m, config)
                                                                        for m in _methods_of(space)))]
    for key, value in space.items():
        param = declared_params().get(key)
        if param is None or param.fits is None:
            continue
        values = value if isinstance(value, list) else next(iter(value.values()), []) if isinstance(value, dict) \
            else [value]
        for item in values if isinstance(values, list) else []:
            why = param.fits(item, config) if param.valid(item) else None
            if why:
                problems.append(f"search_space.{key}: {why}")
    return problems


def _describe(error: dict) -> str:
    """One pydantic error as `path: value: what is wrong`."""
    path = ".".join(str(part) for part in error["loc"]) or "(the file)"
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key"
    if error["type"] == "missing":
        return f"{path}: required"
    message = error["msg"].removeprefix("Value error, ")
    return f"{path}: {message}" if error["type"] == "value_error" else f"{path}: {short(error['input'])}: {message}"


def parse_spec(data, source: str = "sweep file", check_files: bool = True) -> SweepSpec:
    if not isinstance(data, dict):
        raise SweepSpecError(source, ["the file must be a mapping of keys (name:, benchmarks:, search_space:, ...)"])
    try:
        return _checked(SweepSpec.model_validate(data), source, set(), [], check_files)
    except ValidationError as error:
        problems = [_describe(e) for e in error.errors()]
        unknown = [p for p in problems if p.endswith("unknown key")]
        if unknown:
            problems.append(f"allowed keys: {', '.join(SweepSpec.model_fields)} (search, scheduler, workers, "
                            "tracking and fixtures take their own keys; see README 'Sweeps')")
        skip = {e["loc"][0] for e in error.errors() if e["loc"]}
        # The keys that passed, with defaults for the rest, so checks across keys still run.
        valid = {k: v for k, v in data.items() if k not in skip}
        valid.update(_salvage(data, skip))
        return _checked(SweepSpec.model_validate({"name": "unnamed", **valid}), source, skip, problems, check_files)


def _salvage(data: dict, skip: set) -> dict:
    """From keys that failed, what checks across keys can still use: the known benchmark names, and
    which benchmarks a per-benchmark limit names. Their own problems are already reported."""
    salvaged = {}
    names = data.get("benchmarks")
    names = names.split(",") if isinstance(names, str) else names
    if "benchmarks" in skip and isinstance(names, list) and any(n in TASKS for n in names):
        salvaged["benchmarks"] = [n for n in names if n in TASKS]
        skip.discard("benchmarks")
    if "limit" in skip and isinstance(data.get("limit"), dict):
        salvaged["limit"] = dict.fromkeys(data["limit"])
        skip.discard("limit")
        skip.add("limit values")  # budgets unknown: no asha budget checks
    return salvaged


def _checked(spec: SweepSpec, source: str, skip: set, problems: list[str], check_files: bool) -> SweepSpec:
    problems = problems + spec.consistency_problems(skip, check_files)
    if problems:
        raise SweepSpecError(source, problems)
    return spec


def load_spec(path: str | Path) -> SweepSpec:
    path = Path(path)
    if not path.is_file():
        raise SweepSpecError(str(path), [f"no such file; presets: {', '.join(list_presets())}"])
    try:
        data = load_yaml(path, "sweep file")
    except ValueError as error:
        raise SweepSpecError(str(path), [str(error)]) from None
    return parse_spec(data, str(path))


def preset_path(name: str) -> Path:
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise SweepSpecError(f"preset {name!r}", [f"unknown preset; choose from {', '.join(list_presets())}"])
    return path


def grid_size(spec: SweepSpec) -> int:
    return math.prod(len(v) for v in spec.search_space.values() if isinstance(v, list)) * spec.search.num_samples
