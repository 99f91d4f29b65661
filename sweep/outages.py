"""Riding out a tracking store that is away for a while (PostgreSQL restarting, an MLflow server redeployed,
a SQLite file locked): every MLflow call a sweep makes is retried with exponential backoff for up to
`tracking.outage_seconds`, with one line when the store goes away and one when it is back. Past that, the
sweep stops with TrackingUnavailable: Tune has saved its state, so `--resume` continues once the store is up."""

import logging
import sys
import time

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE, ErrorCode
from tenacity import RetryError, Retrying, retry_if_exception, stop_after_delay, wait_exponential

from .reachability import shown

# MLflow's SQL store logs a full traceback for every failed connection before it raises; the retry says it once
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)

UNREACHABLE = ("Max retries exceeded", "Connection refused", "connection refused", "could not connect",
               "server closed the connection", "database is locked", "Connection aborted", "timed out",
               "Connection reset", "connection is closed", "connection failed",  # PostgreSQL stopping or starting:
               "the database system is shutting down", "the database system is starting up",
               "the database system is in recovery mode", "terminating connection due to administrator command")


def brief(error: BaseException) -> str:
    """An error's first line (SQLAlchemy adds a hint line and a link): fits the one line said about it."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


class TrackingUnavailable(ConnectionError):
    """The store stayed away past the patience: the CLI prints this one message (exit 2) instead of a traceback."""


def transient(error: BaseException) -> bool:
    """A store that is away (worth waiting for), not a request it refuses (worth failing on at once)."""
    if isinstance(error, MlflowException) and error.error_code == ErrorCode.Name(TEMPORARILY_UNAVAILABLE):
        return True
    if isinstance(error, (MlflowException, OSError)) or type(error).__name__ == "OperationalError":
        return any(sign in str(error) for sign in UNREACHABLE)
    return False


class PatientClient:
    """An MlflowClient whose calls wait out outages (see the module doc)."""

    def __init__(self, client, uri: str, patience: float, say=None):
        self.client, self.uri, self.patience = client, uri, patience
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self.away_since = None

    def __getattr__(self, name):
        attribute = getattr(self.client, name)
        return self._patient(attribute) if callable(attribute) else attribute

    def _patient(self, call):
        def waiting(state):
            if self.away_since is None:
                self.away_since = time.monotonic()
                self.say(f"tracking store {shown(self.uri)} unreachable ({brief(state.outcome.exception())}); "
                         f"retrying for up to {self.patience:.0f} s")

        def patient_call(*args, **kwargs):
            retrying = Retrying(retry=retry_if_exception(transient), before_sleep=waiting, reraise=False,
                                wait=wait_exponential(multiplier=0.5, max=10), stop=stop_after_delay(self.patience))
            try:
                result = retrying(call, *args, **kwargs)
            except RetryError as error:
                raise TrackingUnavailable(
                    f"the tracking store {shown(self.uri)} was unreachable for {self.patience:.0f} s "
                    f"({brief(error.last_attempt.exception())}); the sweep stopped and can be resumed with "
                    "`gprune sweep --resume NAME` once the store is back") from None
            if self.away_since is not None:
                self.say(f"tracking store back after {time.monotonic() - self.away_since:.0f} s")
                self.away_since = None
            return result

        return patient_call
