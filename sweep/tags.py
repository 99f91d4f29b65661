"""Every MLflow tag this project writes or reads, and the values it gives them: the one place their names are spelled
(tests/test_measures.py reads the rest of the source)."""

from enum import StrEnum

# ours
ROLE = "gprune.role"  # what a run is: a Role
TRIAL_ID = "gprune.trial_id"  # Tune's trial id (the baseline's: "baseline"); a trial is logged once
TRIAL_STATUS = "gprune.trial_status"  # finished, stopped early, failed: ..., error, baseline
WORKER_NODES = "gprune.worker_nodes"  # the Ray nodes that evaluated it
LOGGED = "gprune.logged"  # written after a child's metrics and artifacts: a run without it was cut off
SUPERSEDED = "gprune.superseded"  # a cut-off or errored run that a later one of the same trial replaces
ABANDONED = "gprune.abandoned"  # a sweep whose driver died, closed by the next sweep under its name
SWEEP = "gprune.sweep"  # the sweep's name
DRIVER = "gprune.driver"  # the process writing a run: a dead one's RUNNING run is closed
VERDICT = "gprune.regress.verdict"  # a regression run's verdict, in words
PINNED = "gprune.regress.pinned"  # whether the run pinned the suite's reference
REFERENCE_CODE = "gprune.regress.reference_code"  # the code the reference was pinned with

# MLflow's own
PARENT_RUN = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"
NOTE = "mlflow.note.content"
DATA_CONTEXT = "mlflow.data.context"


class Role(StrEnum):
    PARENT = "parent"
    BASELINE = "baseline"
    TRIAL = "trial"


def tag_column(tag: str) -> str:
    """The tag's column in mlflow.search_runs' table (and dashboards.runs.runs_frame's)."""
    return f"tags.{tag}"
