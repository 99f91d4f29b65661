"""A sweep's runs as MLflow holds them: the parent, the baseline and the trials, as one pandas table
(the columns mlflow.search_runs gives, read with an explicit client: no global tracking URI is set), and each run's
per-sample records (its records.json artifact)."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from gprune.benchmarks import PRIMARY
from sweep.reachability import shown
from sweep.tags import LOGGED, PARENT_RUN, ROLE, Role, tag_column

SEARCH_PAGE = 5000  # runs a search returns at once


@dataclass
class Sweep:
    name: str
    tracking_uri: str
    experiment_id: str
    parent_id: str
    runs: pd.DataFrame  # baseline and trials: params.*, metrics.*, tags.*, run_id
    benchmarks: list[str]  # those the sweep ran, in PRIMARY's order
    swept: list[str]  # parameters that vary across the trials
    downloaded: dict = field(default_factory=dict, repr=False)  # run id -> its records, each fetched once

    def primary(self, benchmark: str) -> str:
        return f"metrics.{benchmark}.{PRIMARY[benchmark]}"

    @property
    def baseline(self) -> pd.Series:
        return self.runs[self.runs[tag_column(ROLE)] == Role.BASELINE].iloc[0]

    @property
    def trials(self) -> pd.DataFrame:
        return self.runs[self.runs[tag_column(ROLE)] == Role.TRIAL]

    def records(self, run_id: str) -> dict:
        """benchmark -> [record dicts] as logged with the run ({} for a run logged without records)."""
        return self.logged_records(run_id) or {}

    def logged_records(self, run_id: str) -> dict | None:
        """The run's records, or None when it holds none (a trial that failed before its first result)."""
        if run_id not in self.downloaded:
            try:
                self.downloaded[run_id] = run_records(self.tracking_uri, run_id)
            except NoRecords:
                self.downloaded[run_id] = None
        return self.downloaded[run_id]


class NoRecords(ValueError):
    """A run that exists but holds no records.json (a trial that failed before its first result)."""


def run_records(tracking_uri: str, run_id: str) -> dict:
    """benchmark -> [record dicts] of one run (its records.json artifact)."""
    client = MlflowClient(tracking_uri)
    try:
        client.get_run(run_id)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise ValueError(f"no such run {run_id!r} in {shown(tracking_uri)}; the MLflow UI (`gprune ui`) lists a "
                             "sweep's runs and their ids") from None
        raise
    try:
        path = client.download_artifacts(run_id, "records.json")
    except Exception as error:  # a run without records (a parent, a regression run, a trial that failed early)
        raise NoRecords(f"run {run_id} in {shown(tracking_uri)} has no records.json ({type(error).__name__}); give a "
                        "sweep's trial or baseline run id (the MLflow UI lists them under the sweep)") from None
    return read_records(Path(path))


def read_records(path: Path) -> dict:
    """A records.json as benchmark -> [record dicts], or one line naming the file and what is wrong with it."""
    try:
        records = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is damaged ({error}); it is not the JSON a sweep writes: log the run again "
                         "(`gprune sweep --resume`), or leave the run out") from None
    shaped = isinstance(records, dict) and all(
        isinstance(rows, list) and all(isinstance(r, dict) for r in rows) for rows in records.values())
    if not shaped:
        raise ValueError(f"{path} is not a sweep's records (expected {{benchmark: [record, ...]}}, got "
                         f"{type(records).__name__}); log the run again (`gprune sweep --resume`), or leave it out")
    return records


def runs_frame(client: MlflowClient, experiment_id: str) -> pd.DataFrame:
    """Every run of the experiment, a row each: run_id, status, start_time, and metrics./params./tags. columns."""
    rows, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=SEARCH_PAGE, page_token=token)
        rows += [{"run_id": run.info.run_id, "status": run.info.status,
                  "start_time": pd.to_datetime(run.info.start_time, unit="ms", utc=True),
                  **{f"metrics.{k}": v for k, v in run.data.metrics.items()},
                  **{f"params.{k}": v for k, v in run.data.params.items()},
                  **{f"tags.{k}": v for k, v in run.data.tags.items()}} for run in page]
        token = page.token
        if not token:
            return pd.DataFrame(rows)


def load_sweep(name: str, tracking_uri: str, parent_id: str | None = None) -> Sweep:
    """The newest sweep run under experiment `name` (or the parent run `parent_id`)."""
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        raise ValueError(f"no experiment {name!r} in {shown(tracking_uri)}; `gprune ui --tracking-uri "
                         f"{shown(tracking_uri)}` lists them, or run a sweep first")
    runs = runs_frame(client, experiment.experiment_id)
    if runs.empty or tag_column(ROLE) not in runs:
        raise ValueError(f"experiment {name!r} in {shown(tracking_uri)} holds no sweep runs; run `gprune sweep` first")
    parents = runs[runs[tag_column(ROLE)] == Role.PARENT].sort_values("start_time", ascending=False)
    if parents.empty:
        raise ValueError(f"experiment {name!r} holds no sweep (no run tagged gprune.role=parent)")
    if parent_id is not None and parent_id not in set(parents["run_id"]):
        raise ValueError(f"no such run {parent_id!r} among the sweeps of experiment {name!r} in {shown(tracking_uri)} "
                         f"(its sweeps' parent runs: {', '.join(parents['run_id'][:5])})")
    parent_id = parent_id or parents.iloc[0]["run_id"]
    # whole runs only: a child cut off mid-write (a killed driver) was logged again whole on resume
    whole = runs.get(tag_column(LOGGED), pd.Series(index=runs.index, dtype=object)) == "true"
    parent_of = runs.get(tag_column(PARENT_RUN), pd.Series(index=runs.index, dtype=object))
    children = runs[(parent_of == parent_id) & whole].reset_index(drop=True)
    if Role.BASELINE not in set(children.get(tag_column(ROLE), [])):
        raise ValueError(f"sweep {name!r} (parent run {parent_id}) has no baseline logged, so nothing to report: "
                         "it stopped before its first result; `gprune sweep --resume` continues it")
    trials = children[children[tag_column(ROLE)] == Role.TRIAL]
    benchmarks = [b for b in PRIMARY if f"metrics.{b}.{PRIMARY[b]}" in children.columns
                  and children[f"metrics.{b}.{PRIMARY[b]}"].notna().any()]
    swept = sorted((c.removeprefix("params.") for c in trials.columns
                    if c.startswith("params.") and trials[c].nunique(dropna=True) > 1),
                   key=lambda k: (("method", "ratio").index(k) if k in ("method", "ratio") else 2, k))
    return Sweep(name, tracking_uri, experiment.experiment_id, parent_id, children, benchmarks, swept)
