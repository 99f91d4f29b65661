"""MLflow tracking with one writer: the sweep driver.

One experiment per sweep name; one parent run per sweep; one child run per trial (and one for the
unpruned baseline), linked with `mlflow.parentRunId` so the UI nests them. A child run carries the
pruning params, every benchmark's lmms-eval metrics, retention, FLOPs, throughput and speedup, tags
(git commit, device, dataset fingerprint, trial id) and the per-sample records as an artifact.
A trial id already logged (a resumed sweep) is never logged twice.
"""

import copy
import subprocess
import sys
import time
from pathlib import Path

from mlflow.exceptions import MlflowException
from ray import tune
from ray.tune.result import AUTO_RESULT_KEYS

from gprune.config import PruneConfig, own_fields
from gprune.measures import described
from gprune.methods import declared_params

from .outages import TrackingUnavailable
from .progress import TrialRates
from .ray_api import interrupt_tune
from .run_logger import RECORDS, RunLogger
from .storage import drop_ballast, storage_problem
from .tags import ABANDONED, LOGGED, NOTE, PARENT_RUN, ROLE, SUPERSEDED, TRIAL_ID, TRIAL_STATUS, WORKER_NODES, Role
from .trial import trial_folder

DESCRIPTION = (
    "A G-Prune sweep. Child runs: one per trial (named method, ratio removed, its parameters) and one "
    "`baseline` (the unpruned model on the same samples). Metrics: `<benchmark>.<lmms-eval metric>`, and per "
    f"benchmark and over them (rounded to 5 significant digits): {described()}. Each child holds `records/` "
    "(every sample, unrounded: Parquet, a file per slice). The report (Table 1, accuracy against TFLOPs with the "
    "Pareto front, kept-token figures, bootstrap intervals) is under this run's artifacts, report/.")
FINISHED = ("finished", "stopped early")  # trial statuses whose numbers stand


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def default_artifact_location(uri: str, name: str) -> str | None:
    if uri.startswith(("http://", "https://")):
        return None  # the tracking server decides
    return (Path("mlartifacts") / name).resolve().as_uri()


class SweepTracker(RunLogger):
    """A sweep's runs: its parent, and under it one child per trial and the baseline, each logged once, whole."""

    def __init__(self, uri: str, sweep: str, artifact_location: str | None = None, outage_seconds: float = 300):
        super().__init__(uri, sweep, artifact_location or default_artifact_location(uri, sweep), outage_seconds)
        self.sweep = sweep
        self.inputs = []  # MLflow dataset inputs (sweep.fingerprint.dataset_inputs), logged on every run
        self.parent_id = None

    def check_experiment(self) -> None:
        """An experiment of this sweep's name that was deleted (MLflow keeps it in its trash) takes the name."""
        experiment = self.client.get_experiment_by_name(self.sweep)
        if experiment is not None and experiment.lifecycle_stage == "deleted":
            raise ValueError(
                f"the MLflow experiment {self.sweep!r} (id {experiment.experiment_id}) was deleted and still holds "
                f"the name: restore it (`mlflow experiments restore --experiment-id {experiment.experiment_id}`), "
                "remove it for good (`mlflow gc`), or give the sweep another name")

    def start(self, params: dict, tags: dict, parent_id: str | None = None) -> str:
        """Create the experiment (once per sweep name) and a parent run, or reopen `parent_id` (resume)."""
        self.open_experiment()
        if parent_id:
            self.parent_id = parent_id
            self.reopen(parent_id)
        else:
            self.parent_id = self.open(self.sweep, {ROLE: Role.PARENT, NOTE: DESCRIPTION, **tags})
            self.log(self.parent_id, params)
            self.log_inputs(self.parent_id, self.inputs)
        return self.parent_id

    def _child_runs(self) -> list:
        return self.client.search_runs([self.experiment_id], f"tags.`{PARENT_RUN}` = '{self.parent_id}'",
                                       max_results=50000)

    def children(self) -> dict[str, str]:
        """trial id -> run id of every child logged completely under the parent (metrics, records, then the
        LOGGED tag); a run cut off while it was written does not count."""
        return {r.data.tags[TRIAL_ID]: r.info.run_id for r in self._child_runs()
                if TRIAL_ID in r.data.tags and r.data.tags.get(LOGGED) == "true"}

    def close_incomplete(self, trial_id: str | None = None, keep: str | None = None) -> list[str]:
        """Close children cut off mid-write or mid-run (of `trial_id`, or all; not `keep`) as FAILED, marked
        superseded; a child whose driver died after it was whole but before it was closed is closed as what it
        logged."""
        closed = []
        for run in self._child_runs():
            tags = run.data.tags
            if trial_id not in (None, tags.get(TRIAL_ID)) or run.info.run_id == keep:
                continue
            if tags.get(LOGGED) == "true" and run.info.status == "RUNNING":
                whole = tags.get(TRIAL_STATUS) in (*FINISHED, Role.BASELINE)
                self.close(run.info.run_id, "FINISHED" if whole else "FAILED")
                continue
            if tags.get(LOGGED) == "true" or tags.get(SUPERSEDED):
                continue
            self.tag(run.info.run_id, SUPERSEDED)
            self.close(run.info.run_id, "FAILED")
            closed.append(run.info.run_id)
        return closed

    def close_abandoned_sweep(self, parent_id: str) -> bool:
        """Close an earlier sweep's parent run that its dead driver left RUNNING as KILLED (tagged
        gprune.abandoned), with any child it cut off mid-write. False if the run is not RUNNING (or gone)."""
        try:
            run = self.client.get_run(parent_id)
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":  # the store was emptied since
                return False
            raise
        if run.info.status != "RUNNING":
            return False
        earlier = copy.copy(self)
        earlier.experiment_id, earlier.parent_id = run.info.experiment_id, parent_id
        earlier.close_incomplete()
        self.tag(parent_id, ABANDONED)
        earlier.finish("KILLED")
        return True

    def trials(self) -> list[dict]:
        """Every logged trial (not the baseline): its params, metrics and status."""
        runs = self.client.search_runs([self.experiment_id], f"tags.`{PARENT_RUN}` = '{self.parent_id}' "
                                       f"and tags.`{ROLE}` = '{Role.TRIAL}' and tags.`{LOGGED}` = 'true'",
                                       max_results=50000)
        return [{"trial_id": r.data.tags[TRIAL_ID], "run_id": r.info.run_id, "params": r.data.params,
                 "metrics": r.data.metrics, "status": r.data.tags.get(TRIAL_STATUS)} for r in runs]

    def open_trial(self, trial_id: str, name: str, tags: dict, started: float) -> str:
        """A running trial's run, which shows its progress (stepped metrics) until `log_child` makes it whole; an
        earlier one of the trial's that a dead driver left is closed, superseded."""
        self.close_incomplete(trial_id)
        return self.open(name, {PARENT_RUN: self.parent_id, TRIAL_ID: trial_id, ROLE: Role.TRIAL, **tags}, started)

    def log_child(self, trial_id: str, name: str, params: dict, metrics: dict, tags: dict, records: Path | None = None,
                  status: str = "FINISHED", role: str = Role.TRIAL, seconds: tuple[float, float] | None = None,
                  run_id: str | None = None) -> str | None:
        """One child run, or the trial's running one (`run_id`, from open_trial) made whole; `seconds` (start, end,
        unix time) are the trial's own, so the UI's duration and metric times are the evaluation's, not the
        logging's."""
        earlier = self.children().get(trial_id)
        if earlier is not None:
            if tags.get(TRIAL_STATUS) == "error" or not self._errored(earlier):
                return None  # logged once, whole
            self.untag(earlier, LOGGED)  # a rerun (--resume) of a trial that errored: it replaces it
            self.tag(earlier, SUPERSEDED)
        self.close_incomplete(trial_id, keep=run_id)
        started, ended = seconds or (None, None)
        if run_id is None:
            run_id = self.open(name, {PARENT_RUN: self.parent_id, TRIAL_ID: trial_id, ROLE: role, **tags}, started)
        self.log(run_id, params, metrics, tags, at=ended)
        self.log_inputs(run_id, self.inputs)
        if records is not None and any(records.glob("*.parquet")):  # the slice folder: every slice's records
            self.log_folder(run_id, str(records), RECORDS)
        self.tag(run_id, LOGGED)  # last: the run is whole
        self.close(run_id, status, ended)
        return run_id

    def _errored(self, run_id: str) -> bool:
        return self.client.get_run(run_id).data.tags.get(TRIAL_STATUS) == "error"

    def finish(self, status: str = "FINISHED", metrics: dict | None = None) -> None:
        if metrics:
            self.log(self.parent_id, metrics=metrics)
        self.close(self.parent_id, status)


def run_name(config: dict) -> str:
    """A name that fits MLflow's run-name column: "gprune 70% s=0.5 t=5" (each parameter's declared symbol)."""
    params = declared_params()
    parts = [str(config["method"])] if "method" in config else []
    if "ratio" in config:
        parts.append(f"{config['ratio']:.0%}" if isinstance(config["ratio"], (int, float)) else str(config["ratio"]))
    symbol = {name: param.short or name for name, param in params.items()}
    parts += [f"{symbol.get(k, k)}={v:.3g}" if isinstance(v, float) else f"{symbol.get(k, k)}={v}"
              for k, v in config.items() if k not in ("method", "ratio")]
    return " ".join(parts)


def trial_error(trial) -> str:
    """The last line of a failed trial's error. Tune writes the trace on the driver first (`trial.error_file`) and
    copies it to the sweep's storage later, so `trial.get_error()` (storage) is only the fallback."""
    try:
        local = Path(trial.error_file) if trial.error_file else None
        text = local.read_text() if local and local.exists() else str(trial.get_error() or "")
    except Exception:  # the error file could not be read back
        text = ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no error text (see the trial's folder under the sweep's storage)"


class MLflowCallback(tune.Callback):
    """Logs each finished, stopped or failed trial as a child run, from the driver only."""

    def __init__(self, tracker: SweepTracker, params: dict, tags: dict, slices: int, records_dir: str, fixed: dict,
                 progress_seconds: float = 30):
        self.tracker, self.params, self.tags, self.slices = tracker, params, tags, slices
        self.fixed = fixed  # the pruning parameters every trial shares; Tune's config holds the searched ones
        self.records_dir = records_dir  # where each trial leaves its records (sweep/trial.py)
        self.rates = TrialRates(records_dir, progress_seconds)
        self.running: dict[str, tuple[str, int]] = {}  # trial id -> (its open run, progress steps logged)
        self.started: dict[str, float] = {}  # trial id -> when it started (unix time)
        self.seconds = 0.0  # spent logging (it blocks Tune's driver loop)
        self.outage = None  # the full or read-only disk that stopped the sweep, once seen
        self.unavailable = None  # the TrackingUnavailable that stopped the sweep, once raised

    def log_result(self, trial_id: str, config: dict, last: dict, status: str) -> None:
        """Log one trial from its last reported result (Tune's `trial.last_result`, or a restored Result's
        metrics when a resumed sweep finds a trial whose run was cut off)."""
        start = time.perf_counter()
        try:
            result = {k: v for k, v in last.items() if k not in AUTO_RESULT_KEYS or k == "time_total_s"}
            records = trial_folder(self.records_dir, trial_id).path
            prune = own_fields(PruneConfig(**{**self.fixed, **config}).to_dict())  # as the trial made it
            reason = result.pop("failure", "")
            status = f"failed: {reason}" if reason else status
            tags = {**self.tags, "device": result.pop("device", "unknown"), TRIAL_STATUS: status,
                    WORKER_NODES: result.pop("nodes", "")}
            end = last.get("timestamp") or time.time()  # Tune's own clock: when the trial reported last
            if end <= self.started.get(trial_id, 0):  # whole seconds, before the run opened for its progress
                end = time.time()
            seconds = (end - last.get("time_total_s", 0.0), end)
            self.tracker.log_child(trial_id, run_name(config) or trial_id, {**self.params, **prune}, result, tags,
                                   records, "FINISHED" if status in FINISHED else "FAILED", seconds=seconds,
                                   run_id=self.running.pop(trial_id, (None, 0))[0])
        finally:
            self.seconds += time.perf_counter() - start

    def status(self, last: dict, errored: bool = False) -> str:
        if errored:
            return "error"
        return "finished" if last.get("slice", 0) >= self.slices else "stopped early"

    def log_trial(self, trial, status: str) -> None:
        """Tune marks a trial failed when a callback raises, so logging never raises into Tune: a store away past
        its patience stops the sweep as on Ctrl-C (runner raises TrackingUnavailable after Tune has saved its
        state); any other logging error is said in one line and leaves the trial to `backfill`, which logs it
        from Tune's saved result once the trials are done."""
        try:
            self.log_result(trial.trial_id, trial.config, trial.last_result or {}, status)
        except TrackingUnavailable as error:
            if self.unavailable is None:
                self.unavailable = error
                interrupt_tune()  # as Ctrl-C: Tune saves its state, trials resume
        except Exception as error:
            print(f"trial {trial.trial_id} ran but could not be logged ({type(error).__name__}: {str(error)[:300]}); "
                  "it is logged from Tune's result after the trials", file=sys.stderr, flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started[trial.trial_id] = time.time()

    def on_step_end(self, iteration, trials, **info):
        """Every `progress_seconds`: each running trial's samples done on its run, a step each time, so the UI
        shows it while the trial runs (its run is opened at its first finished slice)."""
        if not self.rates.due():
            return
        try:
            for trial_id, rate in self.rates.update(trials).items():
                if rate.done == 0:
                    continue
                if trial_id not in self.running:
                    trial = next(t for t in trials if t.trial_id == trial_id)
                    run_id = self.tracker.open_trial(trial_id, run_name(trial.config) or trial_id,
                                                     {**self.tags, TRIAL_STATUS: "running"},
                                                     self.started.get(trial_id, time.time()))
                    self.running[trial_id] = (run_id, 0)
                run_id, step = self.running[trial_id]
                self.tracker.log(run_id, metrics=rate.metrics(), step=step)
                self.running[trial_id] = (run_id, step + 1)
        except Exception as error:  # progress is a view: a store away now is said once the trial ends
            print(f"progress not logged ({type(error).__name__}: {str(error)[:200]})", file=sys.stderr, flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.log_trial(trial, self.status(trial.last_result or {}))

    def on_trial_error(self, iteration, trials, trial, **info):
        problem = storage_problem(Path(self.records_dir))
        if problem:  # an outage, not the trial's fault: not logged, so `--resume` runs it again
            if self.outage is None:
                self.outage = problem
                drop_ballast(Path(self.records_dir).parent)  # room for the state Tune writes as it stops
                print(f"records folder {problem}: the sweep stops as on Ctrl-C (what finished is logged); once the "
                      "disk is back, `gprune sweep --resume NAME` runs the rest", file=sys.stderr, flush=True)
                interrupt_tune()  # as Ctrl-C: Tune saves its state, trials resume
            return
        print(f"trial {trial.trial_id} failed: {trial_error(trial)}", file=sys.stderr, flush=True)
        self.log_trial(trial, "error")

    def __getstate__(self):  # Tune saves callbacks with its state: a resumed sweep starts without an outage, and
        # opens its trials' runs anew (those a dead driver left running are closed, superseded)
        return {**self.__dict__, "outage": None, "unavailable": None, "running": {},
                "rates": TrialRates(self.records_dir, self.rates.every)}
