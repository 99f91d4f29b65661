"""A sweep's runs as MLflow holds them: the parent, the baseline and the trials, as one pandas table
(the columns mlflow.search_runs gives, read with an explicit client: no global tracking URI is set), and each run's
per-sample records (its `records/` artifacts, Parquet; a records.json before them), read by column and benchmark."""

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from gprune.benchmarks import PRIMARY
from gprune.record_files import read_records
from sweep.reachability import shown
from sweep.run_logger import RECORDS
from sweep.tags import LOGGED, PARENT_RUN, ROLE, Role, tag_column

SEARCH_PAGE = 5000  # runs a search returns at once
RECENT_READS = 3  # a trial, its two references: at VQAv2's full size about 150 MB each


@dataclass
class Sweep:
    name: str
    tracking_uri: str
    experiment_id: str
    parent_id: str
    runs: pd.DataFrame  # baseline and trials: params.*, metrics.*, tags.*, run_id
    benchmarks: list[str]  # those the sweep ran, in PRIMARY's order
    swept: list[str]  # parameters that vary across the trials
    downloaded: dict = field(default_factory=dict, repr=False)  # run id -> its records' local path, fetched once
    recent: dict = field(default_factory=dict, repr=False)  # the last RECENT_READS reads of records
    folder: tempfile.TemporaryDirectory | None = field(default=None, repr=False)  # where the records are downloaded

    def primary(self, benchmark: str) -> str:
        return f"metrics.{benchmark}.{PRIMARY[benchmark]}"

    @property
    def baseline(self) -> pd.Series:
        return self.runs[self.runs[tag_column(ROLE)] == Role.BASELINE].iloc[0]

    @property
    def trials(self) -> pd.DataFrame:
        return self.runs[self.runs[tag_column(ROLE)] == Role.TRIAL]

    def records(self, run_id: str, benchmarks=None, columns=None, below_index: int | None = None) -> dict:
        """benchmark -> [record dicts] as logged with the run, only what is asked (gprune.record_files.iter_records);
        {} for a run logged without records. The last few reads are kept: the report pairs each trial with the
        same references, a benchmark at a time."""
        path = self.logged_records(run_id)
        if path is None:
            return {}
        key = (run_id, tuple(benchmarks or ()), tuple(columns or ()), below_index)
        if key not in self.recent:
            if len(self.recent) >= RECENT_READS:
                self.recent.pop(next(iter(self.recent)))
            self.recent[key] = read_records(path, benchmarks, columns, below_index)
        return self.recent[key]

    def logged_records(self, run_id: str) -> Path | None:
        """Where the run's records were downloaded, or None when it holds none (a trial that failed before its
        first result)."""
        if run_id not in self.downloaded:
            try:
                self.downloaded[run_id] = records_path(self.tracking_uri, run_id, self.scratch())
            except NoRecords:
                self.downloaded[run_id] = None
        return self.downloaded[run_id]

    def scratch(self) -> str:
        """A folder for the runs' records, removed with this object."""
        if self.folder is None:
            self.folder = tempfile.TemporaryDirectory(prefix="gprune-records-")
        return self.folder.name


class NoRecords(ValueError):
    """A run that exists but holds no records (a trial that failed before its first result)."""


def records_path(tracking_uri: str, run_id: str, into: str | None = None) -> Path:
    """The run's records, downloaded: its `records/` folder of Parquet files, or the records.json of a sweep
    logged before them."""
    client = MlflowClient(tracking_uri)
    try:
        client.get_run(run_id)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise ValueError(f"no such run {run_id!r} in {shown(tracking_uri)}; the MLflow UI (`gprune ui`) lists a "
                             "sweep's runs and their ids") from None
        raise
    logged = {artifact.path for artifact in client.list_artifacts(run_id)}
    name = next((n for n in (RECORDS, "records.json") if n in logged), None)
    if name is None:  # a run without records (a parent, a trial that failed early)
        raise NoRecords(f"run {run_id} in {shown(tracking_uri)} has no records; give a sweep's trial or baseline "
                        "run id (the MLflow UI lists them under the sweep)")
    into = into and str(Path(into) / run_id)
    if into:
        Path(into).mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, name, into))


def run_records(tracking_uri: str, run_id: str, benchmarks=None, columns=None) -> dict:
    """benchmark -> [record dicts] of one run, only `benchmarks` and `columns` when given."""
    return read_records(records_path(tracking_uri, run_id), benchmarks, columns)


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
