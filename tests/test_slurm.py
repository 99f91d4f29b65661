"""deploy/slurm/gprune-sweep.sbatch on a real one-machine Slurm (testbed/slurm.py: munged, slurmctld, slurmd):
a Ray head on task 0, a worker node on task 1, the sweep driven from the batch script, and nothing of the job's
Ray cluster left running once it ends."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from testbed.fixtures import write_fixtures

REPO = Path(__file__).parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="the Slurm daemons need root")]


@pytest.fixture
def slurm():
    from testbed.slurm import Slurm

    missing = [daemon for daemon in ("slurmctld", "slurmd", "munged") if not shutil.which(daemon)]
    assert not missing, f"{', '.join(missing)} not installed: `make test` installs slurm-wlm and munge"

    cluster = Slurm(Path(tempfile.mkdtemp(prefix="gprune-slurm-", dir="/var/tmp")))  # short socket paths
    yield cluster
    cluster.close()


def test_the_sbatch_script_runs_a_sweep_on_its_allocation_and_tears_its_cluster_down(slurm, tmp_path):
    write_fixtures(tmp_path / "data", n=8, seed=0)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "name": "slurm", "model": "tiny", "benchmarks": ["pope"], "limit": 4, "data_dir": str(tmp_path / "data"),
        "batch_size": 2, "max_new_tokens": 4, "search_space": {"method": "gprune", "ratio": [0.5, 0.9]},
        "workers": {"count": 1, "cpus_per_worker": 1, "cache_mb": 0}, "tracking": {"uri": uri},
        "storage": str(tmp_path / "sweeps")}))
    log = tmp_path / "job.log"
    env = {**{k: v for k, v in slurm.env.items() if not k.startswith("RAY_")},
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "MLFLOW_DISABLE_TELEMETRY": "true"}
    done = subprocess.run(["sbatch", "--wait", "--parsable", "--ntasks=2", "--cpus-per-task=1", f"--output={log}",
                           "deploy/slurm/gprune-sweep.sbatch", str(sweep)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    out = log.read_text() if log.exists() else ""
    assert done.returncode == 0, done.stderr + out[-4000:]
    assert "sweep slurm: 2 trials logged" in out, out[-4000:]

    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("slurm").experiment_id])
    trials = [r for r in runs if r.data.tags.get("gprune.role") == "trial"]
    assert len(trials) == 2 and all(r.data.tags["gprune.trial_status"] == "finished" for r in trials)
    job = done.stdout.strip().split(";")[0]
    left = subprocess.run(["pgrep", "-af", f"ray-{job}-"], capture_output=True, text=True).stdout
    assert not left, left  # the job's Ray nodes stopped with it
