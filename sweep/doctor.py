"""`gprune doctor`: what a sweep started here would use, checked: the Ray cluster (its nodes, their CPUs and
GPUs, whether this host must join it, token auth), and the tracking store (for an MLflow server, its artifact
proxy too). One line per finding; a problem says what to do."""

import json
import os
import urllib.request
from dataclasses import dataclass

from .reachability import (
    RAY_TEMP,
    TIMEOUT_S,
    UnreachableError,
    check_ray_address,
    check_tracking_store,
    current_cluster,
    shown,
)


@dataclass
class Finding:
    ok: bool
    line: str


def private_cluster_findings() -> list[Finding]:
    """What a sweep without --address starts: its own cluster, whatever RAY_ADDRESS or a `ray start` on this host
    says (sweep/cluster.py: PrivateCluster), with the auth cli.main.private_ray_auth will give it."""
    lines = [Finding(True, "Ray: no --address: a sweep starts its own private cluster on this host, in a temp "
                           "folder of its own")]
    if os.environ.get("RAY_ADDRESS"):
        lines.append(Finding(True, f"Ray: RAY_ADDRESS={os.environ['RAY_ADDRESS']} is ignored without --address "
                                   "(give --address auto to join that cluster)"))
    running = current_cluster()
    if running:
        lines.append(Finding(True, f"Ray: the cluster at {running} that `ray start` left in {RAY_TEMP} is not "
                                   "joined (give --address auto to join it)"))
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is None:
        lines.append(Finding(True, "Ray: auth token, with a fresh random token for this sweep"))
    elif mode == "token":
        lines.append(Finding(bool(os.environ.get("RAY_AUTH_TOKEN")), "Ray: auth token (RAY_AUTH_MODE=token), "
                             + ("with RAY_AUTH_TOKEN from the environment" if os.environ.get("RAY_AUTH_TOKEN") else
                                "but RAY_AUTH_TOKEN is not set: set it, or unset RAY_AUTH_MODE for a fresh one")))
    else:
        lines.append(Finding(False, f"Ray: auth {mode} (RAY_AUTH_MODE={mode} in the environment): the private "
                                    "cluster's ports listen on every interface, and anyone who reaches them can run "
                                    "code on it; unset RAY_AUTH_MODE (a sweep then uses a fresh token)"))
    return lines


def ray_findings(address: str | None) -> list[Finding]:
    auth = os.environ.get("RAY_AUTH_MODE", "disabled")
    if address in (None, "local"):
        return private_cluster_findings()
    try:
        check_ray_address(address)
    except UnreachableError as error:
        return [Finding(False, f"Ray: {error}")]
    import ray

    from .cluster import connect, is_node_of

    joined = not is_node_of(address)
    try:
        node = connect(address)
    except ConnectionError as error:
        return [Finding(False, f"Ray: {error}")]
    try:
        me = ray.get_runtime_context().get_node_id()
        alive = [n for n in ray.nodes() if n.get("Alive")]
        lines = [Finding(True, f"Ray: cluster at {address}, {len(alive)} node(s)"
                               + (" including this host, joined for the check as a sweep would join it (no CPUs, "
                                  "no GPUs)" if joined else ", this host one of them"))]
        for n in alive:
            resources = n["Resources"]
            role = " (head)" if "node:__internal_head__" in resources else " (this host)" if n["NodeID"] == me else ""
            lines.append(Finding(True, f"  node {n['NodeManagerAddress']}{role}: {resources.get('CPU', 0):g} CPU, "
                                       f"{resources.get('GPU', 0):g} GPU"))
        gpus = sum(n["Resources"].get("GPU", 0) for n in alive)
        lines.append(Finding(True, f"Ray: {gpus:g} GPU(s) in all: " + (
            f"a sweep starts one worker per GPU ({gpus:g})" if gpus else "workers run on CPUs (workers.count)")))
        lines.append(Finding(auth == "token", f"Ray: auth {auth}" + (
            " (every node and driver presents RAY_AUTH_TOKEN)" if auth == "token" else
            ": anyone who reaches the cluster's ports can run code on it; set RAY_AUTH_MODE=token and the same "
            "RAY_AUTH_TOKEN on every node (.env.example)")))
        return lines
    finally:
        ray.shutdown()
        if node is not None:
            node.leave()


def tracking_findings(uri: str) -> list[Finding]:
    try:
        check_tracking_store(uri)
    except UnreachableError as error:
        return [Finding(False, f"tracking: {error}")]
    found = [Finding(True, f"tracking: {shown(uri)} answers")]
    if uri.startswith(("http://", "https://")):
        try:  # the artifact proxy (`mlflow server --serve-artifacts`) lists the artifact root
            with urllib.request.urlopen(f"{uri.rstrip('/')}/api/2.0/mlflow-artifacts/artifacts",
                                        timeout=TIMEOUT_S) as answer:
                json.loads(answer.read())
            found.append(Finding(True, "tracking: its artifact proxy answers (records and reports go through it)"))
        except (OSError, ValueError) as error:
            found.append(Finding(False, f"tracking: no artifact proxy at {shown(uri)} ({error}); start the server with "
                                        "--serve-artifacts, or every client must reach its artifact store itself"))
    return found


def diagnose(address: str | None, tracking_uri: str) -> list[Finding]:
    return [*ray_findings(address), *tracking_findings(tracking_uri)]
