"""The process that drives a sweep, as recorded in the sweep's state (`.sweeps/NAME/sweep.json`).

A new sweep under a name in use checks it: a driver still alive on this machine means two sweeps would write
one folder, so the new one is refused; a dead one (SIGKILL, a crash, a store given up on) left its parent run
RUNNING, and the new sweep closes it. A process is identified by pid and start time, so a reused pid is not
mistaken for the driver.
"""

import os
import socket

import psutil


def identity() -> dict:
    """This process, as a sweep's state records its driver."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": psutil.Process().create_time()}


def still_running(driver: dict | None) -> bool:
    """Whether `driver` (an `identity()`) is another process alive on this machine. A driver on another
    machine cannot be checked from here and counts as gone."""
    if not driver or driver.get("host") != socket.gethostname() or driver.get("pid") == os.getpid():
        return False
    try:
        return psutil.Process(driver["pid"]).create_time() == driver["started"]
    except (psutil.Error, KeyError):
        return False
