"""The deployed topology, run as the compose file runs it, on separate hosts (testbed/hosts.py: each its own network
and /tmp): PostgreSQL, `mlflow server --serve-artifacts`, a Ray head, two Ray worker nodes, and the driver
(`gprune sweep FILE --address ray-head:6379`, then `gprune regress SUITE`) on a host that is not a node. Every service
gets the compose file's command and environment (token auth with one token on every host). A worker node is
killed mid-sweep: nothing is lost."""

import glob
import json
import os
import re
import shutil
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from testbed.fixtures import write_fixtures
from testbed.hosts import Hosts

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="separate hosts need root")]

BIN = Path(sys.executable).parent
COMPOSE = yaml.safe_load((Path(__file__).parents[1] / "docker-compose.yml").read_text())
HOSTS = ["postgres", "mlflow", "ray-head", "ray-worker-1", "ray-worker-2", "scheduler"]
TOKEN = "0123456789abcdef" * 4


def expand(text: str, env: dict) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, from `env`."""
    return re.sub(r"\$\{(\w+)(?::([-?])([^}]*))?\}",
                  lambda m: env.get(m[1]) or (m[3] if m[2] == "-" else ""), text)


def compose_command(service: str, env: dict) -> list[str]:
    """The service's command as the compose file gives it (entrypoint first; the image's is `gprune`)."""
    definition = COMPOSE["services"][service]
    return [expand(part, env) for part in [*definition.get("entrypoint", ["gprune"]), *definition["command"]]]


def wait_for(what: str, check, process, log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited ({process.returncode}): {log.read_text()[-3000:]}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"{what} did not come up in {seconds:.0f} s: {log.read_text()[-3000:]}")


@pytest.fixture
def stack():
    """The stack on its hosts: yields (hosts, env, shared folder, logs folder). The shared folder stands for the
    volumes the compose file mounts on several services (data, suites); each host's /tmp is its own."""
    shared = Path("/var/tmp") / f"gprune-topology-{os.getpid()}"  # outside every host's private /tmp
    (shared / "logs").mkdir(parents=True)
    hosts = Hosts(HOSTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_", "PYTEST"))}
    env |= {"PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(shared / "home"), "POSTGRES_PASSWORD": "unused",
            "RAY_AUTH_TOKEN": TOKEN, "MLFLOW_DISABLE_TELEMETRY": "true", "RAY_USAGE_STATS_ENABLED": "0",
            # as a user's .env would: the address the test reaches the server at is one of its host names
            "MLFLOW_ALLOWED_HOSTS": f"localhost,127.0.0.1,mlflow,mlflow:5000,{hosts.address('mlflow')}:5000"}
    env |= {k: expand(str(v), env) for k, v in COMPOSE["x-service"]["environment"].items()}
    env["GPRUNE_DATA_DIR"] = str(shared / "data")  # the data volume's mount point, here
    try:
        start_stack(hosts, env, shared)
        yield hosts, env, shared
    finally:
        hosts.close()
        shutil.rmtree(shared, ignore_errors=True)


def start_stack(hosts: Hosts, env: dict, shared: Path) -> None:
    logs = shared / "logs"
    bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
    data, as_postgres = shared / "pg", ["runuser", "-u", "postgres", "--"]
    data.mkdir()
    shutil.chown(data, "postgres")
    hosts["postgres"].run([*as_postgres, f"{bindir}/initdb", "-D", str(data), "--auth=trust", "-U", "mlflow"],
                          env=env).communicate(timeout=120)
    with open(data / "pg_hba.conf", "a") as hba:
        hba.write("host all all 10.77.0.0/24 trust\n")
    postgres = hosts["postgres"].run([*as_postgres, f"{bindir}/postgres", "-D", str(data), "-k", str(data),
                                      "-c", "listen_addresses=*"], env=env, log=logs / "postgres.log")
    wait_for("PostgreSQL", lambda: hosts["postgres"].run(
        [*as_postgres, f"{bindir}/createdb", "-h", "127.0.0.1", "-U", "mlflow", "mlflow"], env=env).wait(60) == 0,
        postgres, logs / "postgres.log", seconds=60)
    command = compose_command("mlflow", env)  # the artifacts volume's mount point, here:
    command = [f"--artifacts-destination={shared / 'mlartifacts'}" if a.startswith("--artifacts-destination")
               else a for a in command]
    mlflow = hosts["mlflow"].run(command, env=env, log=logs / "mlflow.log")
    server = f"http://{hosts.address('mlflow')}:5000"
    wait_for("mlflow server", lambda: urllib.request.urlopen(f"{server}/health", timeout=5).status == 200, mlflow,
             logs / "mlflow.log")
    head = hosts["ray-head"].run(compose_command("ray-head", env), env=env, log=logs / "ray-head.log")
    wait_for("the Ray head", lambda: nodes(hosts, env) == 1, head, logs / "ray-head.log")
    for name in ("ray-worker-1", "ray-worker-2"):
        hosts[name].run(compose_command("ray-worker", env), env=env, log=logs / f"{name}.log")
    wait_for("the Ray workers", lambda: nodes(hosts, env) == 3, head, logs / "ray-head.log")


def nodes(hosts: Hosts, env: dict) -> int:
    """Alive nodes, as `ray status` on the head counts them."""
    out, _ = hosts["ray-head"].run(["ray", "status", "--address=localhost:6379"], env=env).communicate(timeout=60)
    return sum(bool(re.match(r"\s*1 node_", line)) for line in out.splitlines())


def runs_of(server: str, experiment: str) -> list[dict]:
    """The experiment's runs, read from the tracking server's REST API (an HTTPError while it has none)."""
    api = f"{server}/api/2.0/mlflow"
    query = urllib.parse.urlencode({"experiment_name": experiment})
    found = json.loads(urllib.request.urlopen(f"{api}/experiments/get-by-name?{query}", timeout=10).read())
    search = urllib.request.Request(f"{api}/runs/search", json.dumps({
        "experiment_ids": [found["experiment"]["experiment_id"]], "max_results": 1000}).encode(),
        {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(search, timeout=10).read()).get("runs", [])


def tags_of(run: dict) -> dict:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def test_a_sweep_from_a_host_outside_the_cluster_evaluates_on_the_worker_nodes_and_rides_out_losing_one(stack):
    hosts, env, shared = stack
    doctor = hosts["scheduler"].run(["gprune", "doctor", "--address", "ray-head:6379"], env=env)
    said, _ = doctor.communicate(timeout=300)
    assert doctor.returncode == 0, said
    assert "4 node(s) including this host, joined for the check" in said and "auth token" in said, said
    assert f"node {hosts.address('ray-head')} (head): 0 CPU" in said and said.count(": 2 CPU, 0 GPU") == 2, said
    assert "tracking: http://mlflow:5000 answers" in said and "artifact proxy answers" in said, said
    write_fixtures(shared / "data", n=32, seed=0)
    sweep = shared / "suites" / "topology.yaml"
    sweep.parent.mkdir()
    sweep.write_text(yaml.safe_dump({
        "name": "topology", "model": "tiny", "benchmarks": ["pope"], "limit": 32, "data_dir": str(shared / "data"),
        "batch_size": 2, "max_new_tokens": 4, "concurrency": 2,
        "search_space": {"method": "gprune", "ratio": [0.5, 0.9], "threshold": [0.3, 0.5], "iterations": [1, 5]},
        "workers": {"count": 2, "cpus_per_worker": 1, "cache_mb": 0}}))
    log = shared / "logs" / "driver.log"  # README's command; the image's entrypoint is `gprune`
    driver = hosts["scheduler"].run(["gprune", "sweep", str(sweep), "--address", "ray-head:6379"], env=env, log=log)
    server = f"http://{hosts.address('mlflow')}:5000"

    def baseline_logged() -> bool:
        return any(tags_of(r).get("gprune.role") == "baseline" and tags_of(r).get("gprune.logged")
                   for r in runs_of(server, "topology"))

    wait_for("the baseline", baseline_logged, driver, log, seconds=600)
    hosts["ray-worker-2"].kill()  # a worker node goes away as the trials start
    driver.wait(timeout=600)
    out = log.read_text()
    assert driver.returncode == 0, out[-4000:]

    runs = runs_of(server, "topology")
    trials = [r for r in runs if tags_of(r).get("gprune.role") == "trial" and "gprune.superseded" not in tags_of(r)]
    workers = {hosts.address("ray-worker-1"), hosts.address("ray-worker-2")}
    assert len(trials) == 8 and all(tags_of(r)["gprune.trial_status"] == "finished" for r in trials), out[-3000:]
    for run in trials:  # evaluated on the worker nodes only; the records came through the tracking server
        assert set(tags_of(run)["gprune.worker_nodes"].split(",")) <= workers, tags_of(run)
        listed = urllib.request.urlopen(f"{server}/api/2.0/mlflow/artifacts/list?run_id={run['info']['run_id']}",
                                        timeout=10).read()
        assert b'"records"' in listed  # the folder of its slices' Parquet files
    assert "also on the parent run in MLflow" in out, out[-3000:]
    loads = re.search(r"weight loads \[(\d+), (\d+)\]", out)
    assert sorted(map(int, loads.groups())) == [1, 2], out[-3000:]  # the lost node's worker came back elsewhere

    # the regression suite from the same host: evaluated there, pinned and compared through the tracking server
    suite = shared / "suites" / "nightly.yaml"
    suite.write_text(yaml.safe_dump({"name": "nightly", "model": "tiny", "benchmarks": ["pope"], "samples": 8,
                                     "data_dir": str(shared / "data"), "configs": [{"method": "gprune", "ratio": 0.7}],
                                     "tolerance": 0.0}))
    for extra in (["--pin"], []):
        regress = hosts["scheduler"].run(["gprune", "regress", str(suite), *extra], env=env)
        said, _ = regress.communicate(timeout=600)
        assert regress.returncode == 0, said[-3000:]
    assert len(runs_of(server, "regress-nightly")) >= 2

    # a client without the cluster's token is refused across hosts
    without = {k: v for k, v in env.items() if k != "RAY_AUTH_TOKEN"} | {"RAY_AUTH_MODE": "disabled"}
    refused, _ = hosts["scheduler"].run(["ray", "status", "--address=ray-head:6379"], env=without).communicate(120)
    assert "node_" not in refused and "auth" in refused.lower(), refused


def test_each_host_sees_the_checkout_even_under_the_machines_temp_folder(tmp_path):
    """A checkout (with its venv) under /tmp: each host's private /tmp would hide it; it is bound back, and the
    host's /tmp stays its own."""
    checkout = tmp_path / "checkout"  # pytest's folders live under the machine's /tmp
    checkout.mkdir()
    (checkout / "marker").write_text("the checkout")
    hosts = Hosts(["one"], prefix="gq", shared=(checkout,))
    try:
        out = tmp_path / "out.txt"
        shown = hosts["one"].run(["sh", "-c", f"cat {checkout / 'marker'} && echo private > /tmp/host-file"], log=out)
        assert shown.wait(timeout=60) == 0, out.read_text()
        assert out.read_text().strip() == "the checkout"
        assert not Path("/tmp/host-file").exists()
    finally:
        hosts.close()
