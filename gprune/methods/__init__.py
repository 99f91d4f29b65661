"""Visual-token reduction methods, one module each (see `base.py` for what a module declares).

Methods are pure tensor functions; they know nothing of models, datasets, Ray or MLflow.
`gprune.selection.reduce_tokens` validates and runs one; `PruneConfig` is built from the parameters
declared here.
"""

from . import divprune, fastv, gprune, graph, l2norm, pool, random, tome, visionzip
from .base import Method, Param

METHODS: dict[str, Method] = {m.name: m for m in (
    gprune.METHOD, random.METHOD, l2norm.METHOD, graph.METHOD, tome.METHOD, divprune.METHOD, pool.METHOD,
    fastv.METHOD, visionzip.METHOD)}


def declared_params() -> dict[str, Param]:
    """Every method parameter by name, once; methods sharing a name share its declaration."""
    params: dict[str, Param] = {}
    for method in METHODS.values():
        for param in method.params:
            if params.setdefault(param.name, param) is not param:
                raise TypeError(f"{method.name} redeclares {param.name!r}: import the existing Param instead")
    return params


def users(name: str) -> list[str]:
    """The methods that take parameter `name`."""
    return [m.name for m in METHODS.values() if any(p.name == name for p in m.params)]
