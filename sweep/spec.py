"""The sweep file: what to sweep, on which model and benchmarks, how to search, where to log.

`load_spec` validates the whole file before anything starts and raises one SweepSpecError that
lists every problem (unknown keys, methods or benchmarks, out-of-range values, missing data).
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gprune.benchmarks import TASKS, check_data
from gprune.config import PruneConfig
from gprune.tasks.local import DataLayoutError

PRUNE_KEYS = ("method", "ratio", "threshold", "iterations", "temperature")
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
ALGORITHMS = ("grid", "optuna")
SCHEDULERS = ("none", "asha")
PRESETS_DIR = Path(__file__).parent / "presets"


class SweepSpecError(ValueError):
    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{source} has {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))


@dataclass
class Search:
    algorithm: str = "grid"
    num_samples: int = 1  # grid: repeats of the whole grid; optuna: number of trials


@dataclass
class Scheduler:
    type: str = "none"
    slices: int = 4  # the sample budget is cut into this many slices; a trial reports after each
    grace_period: int = 1
    reduction_factor: int = 2


@dataclass
class Workers:
    count: int | None = None  # default: one per GPU, else one CPU worker
    cpus_per_worker: float = 1
    cache_mb: int = 512  # vision-feature cache per worker; 0 disables it


@dataclass
class Tracking:
    uri: str = "sqlite:///mlflow.db"
    artifact_location: str | None = None  # default: ./mlartifacts


@dataclass
class SweepSpec:
    name: str
    model: str = "tiny"
    benchmarks: list[str] = field(default_factory=lambda: ["easyvqa"])
    limit: int | dict | None = 20  # samples per benchmark per trial: one number, or {benchmark: n}
    data_dir: str | None = None
    fixtures: dict | None = None  # {n, seed}: generate fixtures as the data dir when data_dir is unset
    batch_size: int = 4
    max_new_tokens: int | None = None
    seed: int = 0
    concurrency: int = 2
    search_space: dict = field(default_factory=dict)
    search: Search = field(default_factory=Search)
    scheduler: Scheduler = field(default_factory=Scheduler)
    workers: Workers = field(default_factory=Workers)
    tracking: Tracking = field(default_factory=Tracking)
    storage: str = ".sweeps"  # Ray Tune's experiment folder (for --resume)

    def limits(self) -> dict:
        """Each benchmark's sample budget (None: the whole split)."""
        if isinstance(self.limit, dict):
            return {name: self.limit.get(name) for name in self.benchmarks}
        return {name: self.limit for name in self.benchmarks}

    def fixed_prune(self) -> dict:
        """Search-space entries that are a single value, not a grid or a distribution."""
        return {k: v for k, v in self.search_space.items() if not isinstance(v, (list, dict))}

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


SECTIONS = {"search": Search, "scheduler": Scheduler, "workers": Workers, "tracking": Tracking}


def _known(cls) -> set[str]:
    return set(cls.__dataclass_fields__)


def _check_value(key: str, value, problems: list[str], where: str) -> None:
    try:
        PruneConfig(**{key: value})
    except (ValueError, TypeError) as error:
        problems.append(f"{where}: {error}")


def _check_space(space: dict, problems: list[str]) -> None:
    for key, value in space.items():
        where = f"search_space.{key}"
        if key not in PRUNE_KEYS:
            problems.append(f"{where}: unknown parameter; sweepable are {', '.join(PRUNE_KEYS)}")
            continue
        if isinstance(value, list):
            if not value:
                problems.append(f"{where}: an empty grid")
            for item in value:
                _check_value(key, item, problems, where)
        elif isinstance(value, dict):
            if len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
                problems.append(f"{where}: a distribution is one of {{{', '.join(DISTRIBUTIONS)}: ...}}, got {value}")
                continue
            kind, args = next(iter(value.items()))
            if kind == "choice":
                for item in args if isinstance(args, list) else [None]:
                    _check_value(key, item, problems, where)
            elif not (isinstance(args, list) and len(args) == 2 and args[0] < args[1]):
                problems.append(f"{where}: {kind} takes [low, high] with low < high, got {args}")
            else:
                for bound in args:
                    _check_value(key, bound if kind != "randint" else int(bound), problems, where)
        else:
            _check_value(key, value, problems, where)


def _build(cls, data: dict, where: str, problems: list[str]):
    unknown = set(data) - _known(cls)
    for key in sorted(unknown):
        problems.append(f"{where}{key}: unknown key; allowed: {', '.join(sorted(_known(cls)))}")
    return cls(**{k: v for k, v in data.items() if k not in unknown})


def parse_spec(data: dict, source: str = "sweep file", check_files: bool = True) -> SweepSpec:
    problems: list[str] = []
    if not isinstance(data, dict) or "name" not in data:
        raise SweepSpecError(source, ["the file must be a mapping with at least `name:`"])
    sections = {}
    for key, cls in SECTIONS.items():
        section = data.get(key) or {}
        if not isinstance(section, dict):
            problems.append(f"{key}: must be a mapping")
            section = {}
        sections[key] = _build(cls, section, f"{key}.", problems)
    spec = _build(SweepSpec, {**{k: v for k, v in data.items() if k not in SECTIONS}}, "", problems)
    for key, value in sections.items():
        setattr(spec, key, value)

    if not isinstance(spec.name, str) or not spec.name.replace("-", "").replace("_", "").isalnum():
        problems.append(f"name: {spec.name!r} must be letters, digits, - and _ (it names the experiment)")
    if isinstance(spec.benchmarks, str):
        spec.benchmarks = [b.strip() for b in spec.benchmarks.split(",")]
    if spec.benchmarks == ["all"]:
        spec.benchmarks = list(TASKS)
    for name in spec.benchmarks:
        if name not in TASKS:
            problems.append(f"benchmarks: {name!r} unknown; choose from {', '.join(TASKS)}")
    if not spec.benchmarks:
        problems.append("benchmarks: at least one")
    for key in ("batch_size", "concurrency"):
        value = getattr(spec, key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            problems.append(f"{key}: {value!r} must be an integer >= 1")
    if isinstance(spec.limit, dict):
        for name in sorted(set(spec.limit) - set(spec.benchmarks)):
            problems.append(f"limit.{name}: not one of this sweep's benchmarks")
    for name, value in (spec.limits().items() if isinstance(spec.benchmarks, list) else []):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            problems.append(f"limit: {name}: {value!r} must be an integer >= 1")
    if not isinstance(spec.search_space, dict):
        problems.append("search_space: must be a mapping of parameter -> value, [grid] or {distribution: ...}")
        spec.search_space = {}
    _check_space(spec.search_space, problems)
    if spec.search.algorithm not in ALGORITHMS:
        problems.append(f"search.algorithm: {spec.search.algorithm!r} must be one of {', '.join(ALGORITHMS)}")
    if spec.search.algorithm == "grid" and any(isinstance(v, dict) for v in spec.search_space.values()):
        problems.append("search.algorithm: grid cannot sample distributions; use lists, or algorithm: optuna")
    if not isinstance(spec.search.num_samples, int) or spec.search.num_samples < 1:
        problems.append(f"search.num_samples: {spec.search.num_samples!r} must be an integer >= 1")
    if spec.scheduler.type not in SCHEDULERS:
        problems.append(f"scheduler.type: {spec.scheduler.type!r} must be one of {', '.join(SCHEDULERS)}")
    if spec.scheduler.type == "asha":
        if not isinstance(spec.scheduler.slices, int) or spec.scheduler.slices < 2:
            problems.append(f"scheduler.slices: {spec.scheduler.slices!r} must be an integer >= 2 for asha")
        for name, value in spec.limits().items():
            if value is None:
                problems.append(f"limit: asha needs a finite sample budget for {name} (set limit)")
            elif isinstance(value, int) and value < spec.scheduler.slices:
                problems.append(f"limit: {name}: {value} is smaller than scheduler.slices={spec.scheduler.slices}")
    if spec.workers.count is not None and (not isinstance(spec.workers.count, int) or spec.workers.count < 1):
        problems.append(f"workers.count: {spec.workers.count!r} must be an integer >= 1")
    if not (isinstance(spec.workers.cpus_per_worker, (int, float)) and 0 < spec.workers.cpus_per_worker):
        problems.append(f"workers.cpus_per_worker: {spec.workers.cpus_per_worker!r} must be > 0")
    uri = spec.tracking.uri or ""
    if not uri.startswith(("sqlite:///", "postgresql", "mysql", "http://", "https://", "file:")):
        problems.append(f"tracking.uri: {uri!r}: use sqlite:///FILE, postgresql+psycopg://..., or http(s)://")
    if spec.fixtures is not None and not (isinstance(spec.fixtures, dict) and set(spec.fixtures) <= {"n", "seed"}):
        problems.append(f"fixtures: {spec.fixtures!r} must be a mapping with n and/or seed")
    generated = spec.data_dir is None and spec.fixtures is not None  # fixtures are written at start
    if check_files and not generated:
        try:
            check_data([b for b in spec.benchmarks if b in TASKS], spec.data_dir)
        except DataLayoutError as error:
            problems.append(f"data: {error}")
    if problems:
        raise SweepSpecError(source, problems)
    return spec


def load_spec(path: str | Path) -> SweepSpec:
    path = Path(path)
    if not path.is_file():
        raise SweepSpecError(str(path), [f"no such file; presets: {', '.join(list_presets())}"])
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SweepSpecError(str(path), [f"not valid YAML: {error}"]) from error
    return parse_spec(data, str(path))


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise SweepSpecError(f"preset {name!r}", [f"unknown preset; choose from {', '.join(list_presets())}"])
    return path


def grid_size(spec: SweepSpec) -> int:
    return math.prod(len(v) for v in spec.search_space.values() if isinstance(v, list)) * spec.search.num_samples
