"""Every name of Ray's that is not public API, used in one place: a Ray release that moves one breaks here, and
tests/test_private_names.py fails when code elsewhere reaches a private name of Ray's (or of transformers',
whose adapter is gprune/transformers_api.py)."""

import inspect
import signal

import ray
from ray.tune import tune as tune_module


def init_in_folder(folder, **kwargs) -> None:
    """`ray.init` keeping the sessions and sockets of the node it starts or joins in `folder` (Ray's
    `_temp_dir`: otherwise the host's shared /tmp/ray, where another user's cluster can be found)."""
    ray.init(**kwargs, _temp_dir=str(folder))


def interrupt_tune() -> None:
    """Stop the running `Tuner.fit` as Ctrl-C does: Tune saves its state and the unfinished trials resume with
    `--resume`, which a `Stopper`'s stop_all would not allow (it ends them for good). `fit` installs its stop
    handler for SIGUSR1 (and SIGINT) in the driver's main thread; calling it sets Tune's stop event without
    sending this process a signal. Call it from the main thread while `fit` runs (a Tune callback)."""
    handler = signal.getsignal(signal.SIGUSR1)
    if getattr(handler, "__name__", None) != TUNE_STOP_HANDLER:
        raise RuntimeError(f"Ray Tune's stop handler is not installed (found {handler!r}); interrupt_tune() "
                           "works only inside Tuner.fit, from a callback")
    handler(signal.SIGUSR1, None)


TUNE_STOP_HANDLER = "signal_interrupt_tune_run"  # the handler `_setup_signal_catching` installs (ray 2.60)


def relied_on_problems() -> list[str]:
    """Each private name above that the installed Ray lacks."""
    problems = []
    if 'kwargs.pop("_temp_dir"' not in inspect.getsource(ray.init):  # a keyword ray.init takes from **kwargs
        problems.append("ray.init no longer takes _temp_dir")
    setup = getattr(tune_module, "_setup_signal_catching", None)
    nested = [getattr(const, "co_name", None) for const in setup.__code__.co_consts] if setup else []
    if TUNE_STOP_HANDLER not in nested:
        problems.append(f"ray.tune.tune._setup_signal_catching no longer installs {TUNE_STOP_HANDLER}")
    return problems
