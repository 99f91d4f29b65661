"""The Ray cluster a sweep runs on, and the driver's place in it.

A Ray driver talks to a raylet on its own host (a Unix socket under the host's /tmp/ray), so on a host that is
not a node of the cluster `ray.init(address=...)` aborts the process. A sweep given `--address HOST:PORT` on such
a host (the compose file's scheduler container, the submitting node of a Slurm job, a laptop) joins the cluster
for its lifetime as a node with no CPUs and no GPUs: nothing but the sweep's trials, which need neither, is placed
there, and the records they write stay on the driver's disk. The node keeps its sessions and sockets in a folder
of its own (`--temp-dir`), so a later join from the same host never finds a gone node's sockets. When the sweep
ends the node leaves (its `ray start --block` is ended by signal, which stops what it started; never `ray stop`,
which would end every Ray process on the host).
"""

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray

from .ray_api import init_in_folder
from .reachability import RAY_TEMP, current_cluster

JOIN_TIMEOUT_S = 120


def _resolved(address: str) -> str:
    host, _, port = address.rpartition(":")
    try:
        return f"{socket.gethostbyname(host)}:{port}"
    except OSError:
        return address


def is_node_of(address: str) -> bool:
    """Whether this host is a live node of the cluster at `address`: `ray start` left its address in Ray's
    bootstrap file, and that node's raylet answers on its socket (a file left by a node that is gone does not)."""
    here = current_cluster()
    if here is None or _resolved(here) != _resolved(address):
        return False
    return _answers(RAY_TEMP / "session_latest" / "sockets" / "raylet")


def _answers(unix_socket: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(unix_socket))
        return True
    except OSError:
        return False


class DriverNode:
    """This host as a node of the cluster at `address`, with no CPUs and no GPUs, until `leave()`."""

    def __init__(self, address: str):
        self.address = address
        # its own temp folder (sessions, sockets, bootstrap file): a node that joined from here and left keeps its
        # sockets in its own folder, where no later node or driver looks
        self.folder = Path(tempfile.mkdtemp(prefix="gprune-node-"))
        self.log = self.folder / "ray-start.log"
        ray_cli = Path(sys.executable).with_name("ray")  # the one installed with this Ray, else the PATH's
        command = [str(ray_cli) if ray_cli.exists() else shutil.which("ray") or "ray", "start", f"--address={address}",
                   "--num-cpus=0",
                   "--num-gpus=0", f"--temp-dir={self.folder}", "--block"]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while not _answers(self.folder / "session_latest" / "sockets" / "raylet"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace").strip().splitlines()[-3:]
                self.leave()
                raise ConnectionError(f"this host could not join the Ray cluster at {address} as the sweep's driver "
                                      f"node ({' | '.join(tail) or 'no output'}); is RAY_AUTH_TOKEN the cluster's?")
            time.sleep(0.5)

    def leave(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # `ray start --block` stops the processes it started
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def quiet_tune() -> None:
    # Our MLflow callback is the one writer; Tune's own CSV/JSON/TensorBoard loggers would only
    # duplicate it (and choke on the per-sample records).
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our progress line replaces Tune's tables
    logging.getLogger("ray.tune").setLevel(logging.ERROR)  # e.g. "no result.json": those loggers are off
    # a failed trial's traceback: our callback says it in one line (the whole trace stays in the trial's folder)
    logging.getLogger("ray.tune.execution.tune_controller").setLevel(logging.CRITICAL)
    logging.getLogger("ray.tune.execution.experiment_state").addFilter(one_line)  # e.g. state not saved: disk full


def one_line(record: logging.LogRecord) -> bool:
    """A logging filter: the error's own line instead of its traceback."""
    if record.exc_info and record.exc_info[1] is not None:
        record.msg, record.args = f"{record.getMessage()} {record.exc_info[1]}", ()
        record.exc_info = record.exc_text = None
    return True


class PrivateCluster:
    """A cluster of this sweep's own on this host, until `leave()`: started with `address="local"`, so neither
    RAY_ADDRESS nor the cluster a `ray start` on this host left in Ray's shared temp folder (world-writable, one
    for every user) is joined, and with a temp folder of its own, so no later `ray.init()` on the host finds it."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="gp-ray-"))  # short: Ray's socket paths live under it
        init_in_folder(self.folder, address="local", include_dashboard=False, log_to_driver=False)

    def leave(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def describe(handle: DriverNode | PrivateCluster | None) -> str:
    """The cluster this process is connected to, for the sweep's first lines."""
    where = ray.get_runtime_context().gcs_address
    auth = os.environ.get("RAY_AUTH_MODE", "disabled")
    if isinstance(handle, PrivateCluster):
        return f"this sweep's own private cluster at {where} (auth {auth}, temp folder {handle.folder})"
    return f"the cluster at {where} (auth {auth})" + (", this host joined as a driver node" if handle else "")


def connect(address: str | None) -> DriverNode | PrivateCluster | None:
    """Ray, for a sweep: a private local cluster (no address), or the cluster at `address`, joined as a driver
    node when this host is not one of its nodes. Returns what the caller ends when the sweep ends (ray.shutdown(),
    then `leave()`), or None when Ray was already initialised by the caller."""
    quiet_tune()
    if ray.is_initialized():
        return None
    if address in (None, "local"):
        return PrivateCluster()
    node = None
    if address != "auto" and "://" not in address and not is_node_of(address):
        node = DriverNode(address)
    # A private cluster's auth mode is decided before Ray is first imported: cli.main.private_ray_auth.
    if node:  # where that node's sockets are
        init_in_folder(node.folder, address=address, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    return node
