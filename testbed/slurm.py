"""A real one-machine Slurm for tests: munged, slurmctld and one slurmd (this host, its CPUs), from Debian's
`slurm-wlm` and `munge`, each with its own key, sockets, ports, spool and logs in a private folder; commands
reach it through SLURM_CONF. Needs root (the daemons run as root here)."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SLURM_CONF = """\
ClusterName=gprunetest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={controller_port}
SlurmdPort={node_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge.socket
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slurm:
    """Up on construction (raises with the daemons' logs if the node does not come up); `close()` stops it."""

    def __init__(self, root: Path, cpus: int = 2):
        self.root, self.host = root, socket.gethostname().split(".")[0]
        for folder in ("state", "spool"):
            (root / folder).mkdir(parents=True)
        (root / "munge.key").write_bytes(os.urandom(1024))
        os.chmod(root / "munge.key", 0o400)
        (root / "slurm.conf").write_text(SLURM_CONF.format(host=self.host, root=root, cpus=cpus,
                                                           controller_port=_free_port(), node_port=_free_port()))
        self.env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}
        self.daemons = [
            subprocess.Popen(["munged", "--foreground", "--force", f"--socket={root}/munge.socket",
                              f"--key-file={root}/munge.key", f"--pid-file={root}/munged.pid",
                              f"--log-file={root}/munged.log", f"--seed-file={root}/munged.seed"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        self._wait(lambda: (root / "munge.socket").exists(), "munged")
        self.daemons.append(subprocess.Popen(["slurmctld", "-D", "-i"], env=self.env, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL))
        self.daemons.append(subprocess.Popen(["slurmd", "-D", "-N", self.host], env=self.env,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self._wait(self._idle, "the Slurm node")

    def _idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=self.env, capture_output=True, text=True).stdout
        return out.strip() == "idle"

    def _wait(self, ready, what: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.5)
        logs = {name: (self.root / name).read_text()[-1500:] for name in ("munged.log", "slurmctld.log", "slurmd.log")
                if (self.root / name).exists()}
        self.close()
        raise RuntimeError(f"{what} did not come up in {seconds:.0f} s: {logs}")

    def close(self) -> None:
        for daemon in reversed(self.daemons):
            daemon.terminate()
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
        shutil.rmtree(self.root, ignore_errors=True)
