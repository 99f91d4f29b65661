"""The one MLflow writer of sweeps, regression suites and the scheduler: runs of one experiment, created with this
process's context (mlflow.user, mlflow.source.*) and its driver's identity (so the next writer can close a run a
dead one left RUNNING), metrics rounded to DIGITS significant digits, per-sample records as Parquet under
the run's `records/` (gprune.record_files), every call waiting out an unreachable store (sweep/outages.py)."""

import json
import math
import os
import tempfile
import time
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from gprune.record_files import write_records

from . import driver
from .outages import PatientClient
from .tags import DRIVER

DIGITS = 5  # significant digits of a logged metric: readable in the runs table, finer than one sample in 10^4
RECORDS = "records"  # the artifact folder of a run's per-sample records (Parquet files)


def tracking_client(uri: str) -> MlflowClient:
    """An MlflowClient whose store exists: a new SQLite file gets MLflow's schema under a file lock, so
    two sweeps (or reports, suites) starting together on it do not race to create the same tables."""
    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri)
    from filelock import FileLock

    with FileLock(uri.removeprefix("sqlite:///") + ".lock"):
        client = MlflowClient(tracking_uri=uri)  # opening the store creates and migrates the tables
        client.search_experiments(max_results=1)
    return client


def store_client(uri: str, patience: float) -> PatientClient:
    """The client every writer uses: the store's tables created under a lock, every call waiting out an outage."""
    if uri.startswith(("http://", "https://")):
        # MLflow's HTTP client retries a refused connection for about two minutes on its own, silently: ours
        # waits the outage out instead and says so when it starts (an explicit setting is kept)
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    return PatientClient(tracking_client(uri), uri, patience)


def context_tags() -> dict:
    """Who and what started this process, as MLflow's own context says (mlflow.user, mlflow.source.*)."""
    from mlflow.tracking.context.registry import resolve_tags

    return {k: v for k, v in resolve_tags().items() if k.startswith(("mlflow.user", "mlflow.source"))}


class RunLogger:
    def __init__(self, uri: str, experiment: str, artifact_location: str | None = None,
                 outage_seconds: float = 300):
        self.uri, self.experiment, self.outage_seconds = uri, experiment, outage_seconds
        self.artifact_location = artifact_location
        self.context = context_tags()
        self.experiment_id = None
        self._client = None

    @property
    def client(self) -> PatientClient:
        if self._client is None:
            self._client = store_client(self.uri, self.outage_seconds)
        return self._client

    def __getstate__(self):  # Tune pickles callbacks with the experiment state: no live client
        return {**self.__dict__, "_client": None}

    def open_experiment(self) -> str:
        """The experiment, created the first time."""
        if self.experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            self.experiment_id = found.experiment_id if found is not None else self.client.create_experiment(
                self.experiment, artifact_location=self.artifact_location)
        return self.experiment_id

    def open(self, name: str, tags: dict, started: float | None = None) -> str:
        """A new RUNNING run (`started`: unix time, default now); returns its id."""
        run = self.client.create_run(self.open_experiment(), run_name=name,
                                     start_time=None if started is None else int(1000 * started),
                                     tags={**self.context, DRIVER: json.dumps(driver.identity()), **tags})
        return run.info.run_id

    def log(self, run_id: str, params: dict | None = None, metrics: dict | None = None, tags: dict | None = None,
            at: float | None = None, step: int = 0) -> None:
        at_ms = int(1000 * (at or time.time()))
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(f"{v:.{DIGITS}g}"), at_ms, step) for k, v in (metrics or {}).items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isinf(v)],
            params=[Param(k, str(v)) for k, v in (params or {}).items()],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )

    def tag(self, run_id: str, key: str, value: str = "true") -> None:
        self.client.set_tag(run_id, key, value)

    def untag(self, run_id: str, key: str) -> None:
        self.client.delete_tag(run_id, key)

    def log_inputs(self, run_id: str, inputs: list) -> None:
        """MLflow dataset inputs (sweep.fingerprint.dataset_inputs)."""
        if inputs:
            self.client.log_inputs(run_id, inputs)

    def log_folder(self, run_id: str, folder: str, name: str) -> None:
        """Every file under `folder`, as the run's artifacts under `name` (a report)."""
        self.client.log_artifacts(run_id, folder, name)

    def reopen(self, run_id: str) -> None:
        self.client.update_run(run_id, status="RUNNING")

    def log_records(self, run_id: str, records: dict[str, list], name: str = "records.parquet") -> None:
        """{benchmark: [records]} as one Parquet file, `records/<name>` among the run's artifacts."""
        with tempfile.TemporaryDirectory() as folder:
            self.client.log_artifact(run_id, str(write_records(Path(folder) / name, records)), RECORDS)

    def log_json(self, run_id: str, data: dict, name: str) -> None:
        self.client.log_dict(run_id, data, name)

    def log_text(self, run_id: str, text: str, name: str) -> None:
        self.client.log_text(run_id, text, name)

    def close(self, run_id: str, status: str = "FINISHED", ended: float | None = None) -> None:
        self.client.set_terminated(run_id, status, end_time=None if ended is None else int(1000 * ended))

    def close_abandoned(self, printer=print) -> list[str]:
        """Close as KILLED every RUNNING run of the experiment whose writer died before closing it."""
        closed = []
        for run in self.client.search_runs([self.open_experiment()], "attributes.status = 'RUNNING'"):
            try:
                owner = json.loads(run.data.tags.get(DRIVER, "null"))
            except ValueError:
                owner = None
            if not driver.still_running(owner):
                self.close(run.info.run_id, "KILLED")
                printer(f"closed run {run.info.run_id} as KILLED: the process that made it died before closing it")
                closed.append(run.info.run_id)
        return closed
