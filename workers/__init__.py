"""Ray actors that hold resident models and answer evaluation calls (see docs/ARCHITECTURE.md)."""

from .eval_worker import EvalWorker
from .pool import Dispatcher, WorkerPool

__all__ = ["Dispatcher", "EvalWorker", "WorkerPool"]
