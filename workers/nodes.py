"""Which Ray node this process runs on, by the cluster's own node table."""

import ray


def node_address() -> str:
    """This process's node's address. `ray.util.get_node_ip_address()` guesses from the host's routes, and on a
    host that joined from outside it can name another node's address; the node table cannot."""
    node = ray.get_runtime_context().get_node_id()
    return next(n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node)
