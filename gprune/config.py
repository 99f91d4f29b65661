"""PruneConfig: what to prune, how much, and with which method's parameters.

`method`, `ratio` and `positions` are written here; every method parameter (threshold, iterations,
temperature, seed, ...) becomes a field from its method module's declaration (gprune/methods), so a
new parameter is one edit in its own module. A frozen dataclass: it crosses Ray as it is, and it is
validated once, where it is made.
"""

from dataclasses import asdict, field, make_dataclass

from .methods import METHODS, declared_params, users
from .selection import check_method

POSITION_MODES = ("original", "compact")

DOC = """`ratio` is the fraction of visual tokens REMOVED (the paper's 50/70/90%); 0 disables pruning.
    Every method gets the same budget per image (see gprune/model.py). `positions="original"` keeps each
    surviving token's original position id, as the published implementation does; `"compact"` renumbers
    the shortened sequence. The method parameters are declared in gprune/methods (`gprune methods`)."""

CORE = [
    ("method", str, field(default="gprune", metadata={"help": "token-reduction method", "choices": tuple(METHODS)})),
    ("ratio", float, field(default=0.0, metadata={"help": "fraction of visual tokens removed, in [0, 1); 0 = none"})),
    ("positions", str, field(default="original", metadata={
        "help": "position ids of surviving tokens: their original ones, or renumbered", "choices": POSITION_MODES})),
]
METHOD_FIELDS = [
    (p.name, type(p.default), field(default=p.default, metadata={"help": f"{p.help} ({', '.join(users(p.name))})"}))
    for p in declared_params().values()
]


def _post_init(self):
    check_method(self.method)
    if not (isinstance(self.ratio, (int, float)) and not isinstance(self.ratio, bool) and 0 <= self.ratio < 1):
        raise ValueError(f"ratio={self.ratio!r} must be a number in [0, 1) (the fraction of visual tokens removed)")
    if self.positions not in POSITION_MODES:
        raise ValueError(f"positions={self.positions!r} must be one of {POSITION_MODES}")
    for param in declared_params().values():
        param.check(getattr(self, param.name))


def _misfits(self, model_config) -> list[str]:
    """Why this config cannot act on a model of `model_config` (its method's parameters against the model)."""
    return [why for p in METHODS[self.method].params if p.fits and (why := p.fits(getattr(self, p.name), model_config))]


def _method_params(self) -> dict:
    """This config's values of its method's declared parameters."""
    return {p.name: getattr(self, p.name) for p in METHODS[self.method].params}


PruneConfig = make_dataclass("PruneConfig", CORE + METHOD_FIELDS, frozen=True, namespace={
    "__doc__": DOC,
    "__post_init__": _post_init,
    "active": property(lambda self: self.ratio > 0),
    "method_params": _method_params,
    "misfits": _misfits,
    "to_dict": asdict,
})
PruneConfig.__module__ = __name__  # pickling (Ray) finds the class here


def own_fields(values: dict) -> dict:
    """`values` (a PruneConfig's fields, perhaps among other keys) without the parameters of methods other than its
    own: what a run's params say (a ToMe trial shows no G-Prune threshold)."""
    own = {p.name for p in METHODS[values.get("method", PruneConfig.method)].params}
    return {k: v for k, v in values.items() if k in own or k not in declared_params()}
