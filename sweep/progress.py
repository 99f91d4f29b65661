"""A sweep's live view: trials done / running / failed and the best so far when a trial ends; and, every
`progress_seconds` while trials run, each running trial's samples done / planned, samples/s and ETA, and the same
for the sweep. Read from the trials' slice folders (sweep/slices.py), on the driver: nothing travels through Tune."""

import math
import time
from dataclasses import dataclass
from pathlib import Path

from ray import tune

from gprune.measures import Measure

from .slices import progress


@dataclass
class Rate:
    """Samples done over time since first seen (a resumed trial's earlier slices are not counted as speed)."""
    first_done: int
    first_seen: float
    done: int = 0
    planned: int | None = None

    def update(self, done: int, planned: int | None) -> None:
        self.done, self.planned = done, planned

    @property
    def per_second(self) -> float:
        elapsed = time.monotonic() - self.first_seen
        return (self.done - self.first_done) / elapsed if elapsed > 0 else float("nan")

    @property
    def eta_seconds(self) -> float:
        rate = self.per_second
        return (self.planned - self.done) / rate if self.planned is not None and rate > 0 else float("nan")

    def describe(self) -> str:
        planned = "?" if self.planned is None else f"{self.planned:,}"
        share = f" ({self.done / self.planned:.1%})" if self.planned else ""
        return (f"{self.done:,}/{planned} samples{share}, {self.per_second:.1f}/s, "
                f"ETA {duration(self.eta_seconds)}")

    def metrics(self) -> dict:
        """As MLflow gets it on the trial's run, a step per update."""
        return {"progress.samples_done": self.done,
                "progress.fraction": self.done / self.planned if self.planned else float("nan"),
                "progress.samples_per_second": self.per_second}


def duration(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class TrialRates:
    """Each running trial's Rate, read from its slice folder under `records_dir`."""

    def __init__(self, records_dir: str, every: float):
        self.records_dir, self.every = records_dir, every
        self.rates: dict[str, Rate] = {}
        self.last = 0.0

    def due(self) -> bool:
        """Whether `every` seconds have passed since the last update (and take this one)."""
        now = time.monotonic()
        if now - self.last < self.every:
            return False
        self.last = now
        return True

    def update(self, trials) -> dict[str, Rate]:
        """The running trials' rates, updated now."""
        running = {}
        for trial in trials:
            if trial.status != "RUNNING":
                continue
            done, planned = progress(Path(self.records_dir) / trial.trial_id)
            rate = self.rates.setdefault(trial.trial_id, Rate(done, time.monotonic()))
            rate.update(done, planned)
            running[trial.trial_id] = rate
        return running


class ProgressLine(tune.Callback):
    def __init__(self, total: int, records_dir: str, samples_per_trial: int, every: float = 30,
                 metric: str = Measure.OBJECTIVE, printer=print):
        self.total, self.metric, self.printer = total, metric, printer
        self.start = time.monotonic()
        self.best = None  # (value, config)
        self.done = self.failed = 0
        self.rates = TrialRates(records_dir, every)
        self.sweep: Rate | None = None  # from the first update: a resumed sweep's earlier work is not speed
        self.samples_planned = total * samples_per_trial  # less when a scheduler stops trials early

    def __getstate__(self):  # a resumed sweep measures its speed anew (times are this process's monotonic clock)
        return {**self.__dict__, "printer": None, "rates": TrialRates(self.rates.records_dir, self.rates.every),
                "sweep": None}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.printer = print

    def _show(self, trials) -> None:
        running = sum(t.status == "RUNNING" for t in trials)
        best = "-" if self.best is None else f"{self.metric}={self.best[0]:.4f} {self.best[1]}"
        elapsed = time.monotonic() - self.start
        self.printer(f"[{elapsed:6.0f}s] trials done {self.done}/{self.total}, running {running}, "
                     f"failed {self.failed} | best {best}", flush=True)

    def on_step_end(self, iteration, trials, **info):
        if not self.rates.due():
            return
        running = self.rates.update(trials)
        if not running:
            return
        elapsed = time.monotonic() - self.start
        for trial in trials:
            if trial.trial_id in running:
                self.printer(f"[{elapsed:6.0f}s]   trial {trial.trial_id}: {running[trial.trial_id].describe()}",
                             flush=True)
        done = sum(progress(Path(self.rates.records_dir) / t.trial_id)[0] for t in trials)
        if self.sweep is None:
            self.sweep = Rate(done, time.monotonic())
        self.sweep.update(done, self.samples_planned)
        self.printer(f"[{elapsed:6.0f}s]   sweep: {self.sweep.describe()}", flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        value = (trial.last_result or {}).get(self.metric)
        if value is not None and not math.isnan(value) and (self.best is None or value > self.best[0]):
            self.best = (value, trial.config)
        self._show(trials)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.failed += 1
        self._show(trials)
