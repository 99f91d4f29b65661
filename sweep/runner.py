"""Run a sweep: validate, start (or join) Ray, build the worker pool, evaluate the unpruned
baseline once per benchmark, let Ray Tune schedule the trials, log every trial to MLflow from the
driver (the one writer), and return a summary. `resume=True` continues a sweep from its Tune
experiment folder: finished trials are neither rerun nor logged twice."""

import json
import math
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import ray
from ray import tune

from gprune.config import PruneConfig, own_fields
from gprune.feature_cache import WINDOW_IMAGES
from gprune.measures import Measure
from gprune.records import BenchmarkResult
from workers import WorkerPool
from workers.nodes import node_address
from workers.pool import start_error

from . import driver
from .cluster import DriverNode, PrivateCluster, connect, describe
from .data_dir import prepare_data
from .fingerprint import dataset_fingerprint, dataset_inputs
from .metrics import nodes_of
from .outages import TrackingUnavailable
from .progress import ProgressLine
from .reachability import check_ray_address, check_tracking_store
from .slices import SliceFolder
from .spec import SweepSpec, grid_size, parse_spec
from .stopping import StopRequests
from .storage import check_storage, lay_ballast, storage_problem
from .tags import SWEEP, TRIAL_STATUS, WORKER_NODES, Role
from .tracking import MLflowCallback, SweepTracker, git_commit
from .trial import evaluate_slices, run_trial

# Trials only wait on the pool: no CPU, and on the driver's node, where their records are written (a driver outside
# the cluster joins it as a node with no CPUs: sweep/cluster.py)
TRIAL_RESOURCES = {"cpu": 0}


@dataclass
class SweepOutcome:
    name: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    baseline: dict
    swept: list[str]  # the search-space parameters that vary
    trials: list[dict] = field(default_factory=list)  # as logged in MLflow: params, metrics, status
    workers: list[dict] = field(default_factory=list)
    experiment_path: str = ""
    interrupted: bool = False
    seconds: dict = field(default_factory=dict)  # wall time: baseline, fit (Tune), logging (MLflow, in fit)
    batch_size: int = 1


def param_space(spec: SweepSpec) -> dict:
    grid = spec.search.algorithm == "grid"
    space = {}
    for key, value in spec.search_space.items():
        if isinstance(value, list):
            space[key] = tune.grid_search(value) if grid else tune.choice(value)
        elif isinstance(value, dict):
            kind, args = next(iter(value.items()))
            space[key] = {"uniform": lambda a: tune.uniform(*a), "loguniform": lambda a: tune.loguniform(*a),
                          "randint": lambda a: tune.randint(a[0], a[1] + 1), "choice": tune.choice}[kind](args)
    return space


def tune_config(spec: SweepSpec) -> tune.TuneConfig:
    search_alg = scheduler = None
    if spec.search.algorithm == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        # multi-objective: keep accuracy (retention), spend as few FLOPs as possible
        search_alg = OptunaSearch(metric=[Measure.OBJECTIVE, Measure.TFLOPS_EXACT], mode=["max", "min"], seed=spec.seed)
    if spec.scheduler.type == "asha":
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(time_attr="slice", metric=Measure.OBJECTIVE, mode="max", max_t=spec.scheduler.slices,
                                  grace_period=spec.scheduler.grace_period,
                                  reduction_factor=spec.scheduler.reduction_factor)
    # reuse_actors: a trial process imports torch and Ray once, not once per trial (~3 s each)
    return tune.TuneConfig(search_alg=search_alg, scheduler=scheduler, num_samples=spec.search.num_samples,
                           max_concurrent_trials=spec.concurrency, reuse_actors=True)


def sample_sizes(spec: SweepSpec, pool) -> dict[str, int]:
    """Samples each trial evaluates per benchmark: its limit, or its whole split (asked of a worker)."""
    limits = spec.limits()
    splits = dict(zip(limits, ray.get([pool.dispatcher.size.remote(name) for name in limits])))
    return {name: splits[name] if limit is None else min(limit, splits[name]) for name, limit in limits.items()}


def evaluate_baseline(run: "SweepRun", fixed: dict) -> dict:
    """The unpruned model on every benchmark, once per sweep: what retention and speedup compare to. Its slices are
    kept as a trial's are (a driver killed during the baseline resumes it), all at the workers at once."""
    spec, pool = run.spec, run.pool
    run.printer(f"evaluating the unpruned baseline on {', '.join(spec.benchmarks)} ...", flush=True)
    prune = PruneConfig(**{**fixed, "ratio": 0.0})
    slice_samples = spec.workers.slice_samples
    if run.cached:  # a first, discarded pass fills the vision-feature caches, so the baseline is
        # timed as the trials after it are (their images cached), not charged the vision tower alone
        warm = run.path / "warm-up"
        shutil.rmtree(warm, ignore_errors=True)  # a pass cut short before: run whole, or it fills nothing
        list(evaluate_slices(pool.dispatcher, prune, run.sizes, 1, slice_samples, None, SliceFolder(warm), pool.count))
        shutil.rmtree(warm)
    merged, flat = list(evaluate_slices(pool.dispatcher, prune, run.sizes, 1, slice_samples, None,
                                        run.baseline_folder, pool.count))[-1]
    return {"prune": prune.to_dict(), "metrics": flat, "results": merged}


def backfill(grid, tracker, callback) -> None:
    """Exactly once: a trial Tune finished whose MLflow run is missing or was cut off mid-write (the driver
    died while logging it) is logged now from Tune's saved result; a half-written run is closed FAILED."""
    logged = tracker.children()
    for result in grid:
        last = result.metrics or {}
        trial_id = last.get("trial_id")
        if trial_id and trial_id not in logged and Measure.OBJECTIVE in last:
            callback.log_result(trial_id, result.config or {}, last, callback.status(last, result.error is not None))
    tracker.close_incomplete()


def read_state(path: Path) -> dict:
    """A sweep's own state file (spec, parent run, driver), or one error naming it."""
    try:
        state = json.loads(path.read_text())
        state["spec"], state["parent_run_id"]  # noqa: B018  (both must be there)
        return state
    except FileNotFoundError:
        raise
    except (ValueError, KeyError, TypeError, OSError) as error:
        raise ValueError(f"{path} is damaged ({type(error).__name__}: {error}); the sweep cannot be resumed from "
                         "it: start it again under its name (the old state is set aside)") from None


def has_tune_state(experiment_path: Path) -> bool:
    """Whether Tune saved its state: a sweep stopped before its trials started (Ray, the workers, the baseline
    and its run) has none, and resumes by starting its search, under the parent run it had."""
    return any(experiment_path.glob("experiment_state-*.json"))


def check_tune_state(experiment_path: Path) -> None:
    """Tune's saved state must be whole: restoring from a damaged one would silently start a fresh search."""
    for path in sorted(experiment_path.glob("experiment_state-*.json")):
        try:
            json.loads(path.read_text())
        except (ValueError, OSError) as error:
            raise ValueError(f"Tune's state {path} is damaged ({error}), e.g. written when the disk was full; "
                             "--resume would start a fresh search. Free space and start the sweep again under its "
                             "name (finished trials stay in MLflow)") from None


def set_aside(path: Path, tracker: SweepTracker, printer=print) -> None:
    """A new sweep reusing a name keeps the old one's state, renamed, instead of mixing with it. The old
    sweep's driver must be gone (see sweep/driver.py); a parent run it left RUNNING is closed KILLED, since
    nothing can resume it once its state is set aside."""
    if not path.exists():
        return
    state = path / "sweep.json"
    try:
        saved = json.loads(state.read_text()) if state.exists() else {}
    except ValueError:  # damaged: nothing in it can be resumed or closed
        saved = {}
    if driver.still_running(saved.get("driver")):
        raise ValueError(f"a sweep named {path.name!r} is running now (pid {saved['driver']['pid']} on this "
                         "machine): wait for it, stop it, or give this sweep another name")
    parent = saved.get("parent_run_id")
    if parent and saved["spec"]["tracking"]["uri"] == tracker.uri and tracker.close_abandoned_sweep(parent):
        printer(f"closed run {parent} of the earlier sweep {path.name!r} as KILLED: its driver died and left it "
                "RUNNING, and a new sweep under the name cannot resume it")
    path.rename(path.with_name(f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}"))


@dataclass
class SweepRun:
    """What the steps of one sweep share."""
    spec: SweepSpec
    resume: bool
    printer: Callable
    path: Path  # Tune's experiment folder: its state, the sweep's state file, the records, the baseline
    data_dir: str | None
    slices: int  # reports per trial (ASHA's rungs), else 1
    tracker: SweepTracker
    params: dict  # what every run of the sweep logs as params
    tags: dict
    stops: StopRequests = field(default_factory=StopRequests)
    pool: WorkerPool | None = None
    node: DriverNode | PrivateCluster | None = None  # the sweep's own cluster, or this host joined to one
    sizes: dict = field(default_factory=dict)  # benchmark -> samples each trial evaluates (sample_sizes)
    cached: bool = False  # whether the workers' vision-feature caches hold every image of the sweep

    @property
    def fixed(self) -> dict:
        """The pruning parameters every trial shares."""
        return {"seed": self.spec.seed, **self.spec.fixed_prune()}

    @property
    def records_dir(self) -> str:
        return str(self.path / "records")  # a slice folder per trial, on this machine: trials run here

    @property
    def baseline_folder(self) -> SliceFolder:
        return SliceFolder(self.path / "records" / Role.BASELINE)

    @property
    def in_flight(self) -> int:
        """Slices each trial keeps at the workers: enough that the running trials keep every worker busy."""
        return max(1, math.ceil(self.pool.count / self.spec.concurrency))

    def callback(self) -> MLflowCallback:
        return MLflowCallback(self.tracker, self.params, self.tags, self.slices, self.records_dir, self.fixed,
                              self.spec.progress_seconds)


def preflight(spec: SweepSpec, address: str | None, resume: bool, printer) -> SweepRun:
    """Everything the sweep needs answers first, in seconds: no MLflow run is created for a sweep that cannot run."""
    check_tracking_store(spec.tracking.uri)
    check_ray_address(address)
    path = Path(spec.storage).resolve() / spec.name
    check_storage(path.parent)
    if resume:
        check_tune_state(path)
    data_dir = prepare_data(spec)
    tracker = SweepTracker(spec.tracking.uri, spec.name, spec.tracking.artifact_location,
                           spec.tracking.outage_seconds)
    tracker.check_experiment()
    tracker.inputs = dataset_inputs(spec.benchmarks, data_dir)
    slices = spec.scheduler.slices if spec.scheduler.type == "asha" else 1
    params = {"model": spec.model, "benchmarks": ",".join(spec.benchmarks), "limit": spec.limit,
              "seed": spec.seed, "batch_size": spec.batch_size, "slices": slices,
              **{f"answers.{k}": v for k, v in spec.answer_rules().to_dict().items()}}
    tags = {"git_commit": git_commit(), "dataset_fingerprint": dataset_fingerprint(spec.benchmarks, data_dir),
            SWEEP: spec.name}
    if not resume:
        set_aside(path, tracker, printer)
    return SweepRun(spec, resume, printer, path, data_dir, slices, tracker, params, tags)


def start(run: SweepRun, address: str | None) -> None:
    """Ray, then the workers (placed and loaded), then the parent run and the sweep's state file."""
    spec = run.spec
    parent = read_state(run.path / "sweep.json")["parent_run_id"] if run.resume else None
    run.node = connect(address)
    run.printer(f"Ray: {describe(run.node)}", flush=True)
    run.stops.listen()
    run.stops.check()
    # workers that could never be placed are refused here, in one line, before any run exists
    run.pool = WorkerPool(spec.model, spec.workers.count, spec.workers.cpus_per_worker, name=spec.name,
                          data_dir=run.data_dir, batch_size=spec.batch_size,
                          max_new_tokens=spec.max_new_tokens, cache_mb=spec.workers.cache_mb,
                          decoding=spec.generation.decoding(), answers=spec.answer_rules())
    run.printer(f"starting {run.pool.count} evaluation worker(s) ...", flush=True)
    run.pool.info()  # every worker has loaded its model, or the reason one cannot is said in one line
    run.sizes = sample_sizes(spec, run.pool)
    run.cached = bool(spec.workers.cache_mb) and run.pool.expect_images(sum(run.sizes.values()))
    if spec.workers.cache_mb and not run.cached:
        run.printer(f"vision-feature cache: {sum(run.sizes.values()):,} images per trial do not fit workers.cache_mb "
                    f"{spec.workers.cache_mb}, so each worker keeps its last {WINDOW_IMAGES} (an image asked about "
                    "again soon still hits) and no pass fills the caches before the baseline", flush=True)
    run.stops.check()
    run.tracker.start({**run.params, "search": spec.search.algorithm, "scheduler": spec.scheduler.type}, run.tags,
                      parent)
    run.path.mkdir(parents=True, exist_ok=True)
    lay_ballast(run.path)
    (run.path / "sweep.json").write_text(json.dumps({"spec": spec.to_dict(), "parent_run_id": run.tracker.parent_id,
                                                     "driver": driver.identity()}))
    run.stops.check()


def baseline_of(run: SweepRun) -> dict:
    """The unpruned baseline, evaluated and logged once per sweep (a resumed sweep reads its own back): its
    prune config, flat metrics, and results per benchmark without their records (logged with its run)."""
    saved = run.path / "baseline.json"
    if not saved.exists():
        began = time.time()
        try:
            baseline = evaluate_baseline(run, run.fixed)
        except ray.exceptions.RayError as error:  # a worker died for good: its reason, not Ray's chain
            if isinstance(error, ray.exceptions.RayActorError) or "ActorDiedError" in str(error):
                raise start_error(error) from None
            raise
        results = baseline["results"]
        run.tracker.log_child(Role.BASELINE, Role.BASELINE, {**run.params, **own_fields(baseline["prune"])},
                              baseline["metrics"], {**run.tags, TRIAL_STATUS: Role.BASELINE,
                                                    "device": next(iter(results.values())).throughput["device"],
                                                    WORKER_NODES: nodes_of(results.values())},
                              run.baseline_folder.path,
                              role=Role.BASELINE, seconds=(began, time.time()))
        saved.write_text(json.dumps({**baseline, "results": {n: r.to_dict(records=False) for n, r in results.items()}},
                                    default=str))
    baseline = json.loads(saved.read_text())
    return {**baseline, "results": {n: BenchmarkResult.from_dict(r) for n, r in baseline["results"].items()}}


def run_trials(run: SweepRun, baseline: dict, total: int) -> dict:
    """Ray Tune runs the trials (each logged by the callback as it ends); returns the seconds of fit and logging."""
    spec = run.spec
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, dispatcher=run.pool.dispatcher, sizes=run.sizes, steps=run.slices,
                             slice_samples=spec.workers.slice_samples, in_flight=run.in_flight, fixed=run.fixed,
                             baseline=baseline["results"], max_error_rate=spec.max_error_rate,
                             records_dir=run.records_dir),
        {**TRIAL_RESOURCES, f"node:{node_address()}": 0.001})
    callbacks = [run.callback(), ProgressLine(total, run.records_dir, sum(run.sizes.values()), spec.progress_seconds,
                                              printer=run.printer)]
    restore = run.resume and has_tune_state(run.path)
    if restore:  # Tune restores its own copy of the callbacks, with the same tracker settings
        tuner = tune.Tuner.restore(str(run.path), trainable, resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(trainable, param_space=param_space(spec), tune_config=tune_config(spec),
                           run_config=tune.RunConfig(name=spec.name, storage_path=str(run.path.parent),
                                                     callbacks=callbacks, verbose=0))
    started = time.perf_counter()
    try:
        grid = tuner.fit()
    except Exception:  # Tune reading back what a full disk cut short (a trial's error file): an outage,
        if storage_problem(run.path) is None:  # said by the callback, that stopped the sweep
            raise
        grid = []  # `--resume` logs what finished once the disk is back
    run.stops.listen()
    if callbacks[0].unavailable is not None:  # the store stayed away: Tune has saved its state for `--resume`
        raise callbacks[0].unavailable
    fit = time.perf_counter() - started
    backfill(grid, run.tracker, run.callback())
    return {"fit": fit, "logging": float("nan") if restore else callbacks[0].seconds}


def conclude(run: SweepRun, baseline: dict, total: int, seconds: dict) -> SweepOutcome:
    """The trials as MLflow holds them, and the parent run closed: KILLED when some are still to run."""
    spec, tracker = run.spec, run.tracker
    trials = tracker.trials()
    interrupted = len(trials) < total  # Ctrl-C or a disk outage: Tune saved its state, `--resume` continues
    swept = [k for k in spec.search_space if k not in spec.fixed_prune()]
    objectives = [t["metrics"].get(Measure.OBJECTIVE, float("nan")) for t in trials]
    tracker.finish("KILLED" if interrupted else "FINISHED",
                   {"trials_logged": len(trials), "best_objective": max(objectives, default=float("nan"))})
    return SweepOutcome(spec.name, spec.tracking.uri, tracker.experiment_id, tracker.parent_id, baseline["metrics"],
                        swept, trials, run.pool.info(), str(run.path), interrupted, seconds, spec.batch_size)


def run_sweep(spec: SweepSpec, tracking_uri: str | None = None, address: str | None = None, resume: bool = False,
              printer=print) -> SweepOutcome:
    if tracking_uri:
        spec = spec.with_changes(tracking__uri=tracking_uri)
    run = preflight(spec, address, resume, printer)
    run.stops.listen()  # Ctrl-C or `kill` ends the sweep as KILLED and resumable, whenever it comes
    try:  # from here on, whatever ends the sweep closes the parent run, once there is one
        start(run, address)
        began = time.perf_counter()
        baseline = baseline_of(run)
        seconds = {"baseline": time.perf_counter() - began}
        run.stops.check()
        total = grid_size(spec) if spec.search.algorithm == "grid" else spec.search.num_samples
        seconds.update(run_trials(run, baseline, total))
        return conclude(run, baseline, total, seconds)
    except TrackingUnavailable:
        raise  # the store is away: the parent run stays RUNNING until `--resume` reopens it
    except BaseException:
        if run.tracker.parent_id:
            run.tracker.finish("KILLED")
        raise
    finally:
        run.stops.restore()
        if run.pool is not None:
            run.pool.shutdown()
        if run.node is not None:
            ray.shutdown()
            run.node.leave()


def load_saved_spec(name: str, storage: str = ".sweeps") -> SweepSpec:
    """The spec a sweep started with, for `gprune sweep --resume NAME`. NAME is a plain sweep name: state is
    read from the storage folder only (Tune unpickles it, so that folder must be trusted)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ValueError(f"--resume {name!r}: give a sweep's name (letters, digits, _ and -), not a path")
    path = Path(storage).resolve() / name / "sweep.json"
    if not path.exists():
        raise FileNotFoundError(f"no sweep {name!r} to resume under {Path(storage).resolve()} (missing {path.name})")
    return parse_spec(read_state(path)["spec"], str(path), check_files=False).with_changes(storage=storage)
