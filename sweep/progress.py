"""A one-line live view of the sweep: trials done / running / failed, best so far, elapsed."""

import math
import time

from ray import tune

from gprune.measures import Measure


class ProgressLine(tune.Callback):
    def __init__(self, total: int, metric: str = Measure.OBJECTIVE, printer=print):
        self.total, self.metric, self.printer = total, metric, printer
        self.start = time.monotonic()
        self.best = None  # (value, config)
        self.done = self.failed = 0

    def __getstate__(self):
        return {**self.__dict__, "printer": None}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.printer = print

    def _show(self, trials) -> None:
        running = sum(t.status == "RUNNING" for t in trials)
        best = "-" if self.best is None else f"{self.metric}={self.best[0]:.4f} {self.best[1]}"
        elapsed = time.monotonic() - self.start
        self.printer(f"[{elapsed:6.0f}s] trials done {self.done}/{self.total}, running {running}, "
                     f"failed {self.failed} | best {best}", flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        value = (trial.last_result or {}).get(self.metric)
        if value is not None and not math.isnan(value) and (self.best is None or value > self.best[0]):
            self.best = (value, trial.config)
        self._show(trials)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.failed += 1
        self._show(trials)
