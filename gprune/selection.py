"""The public token-reduction entry point: validate, run the method, return (indices, tokens)."""

import torch

from .methods import METHODS


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method={method!r} is unknown; choose one of {sorted(METHODS)}")


def check_finite(*features: torch.Tensor) -> None:
    """One check over every tensor given: reading its answer waits for the device, so a batch asks once."""
    if features and not torch.stack([torch.isfinite(f).all() for f in features]).all():
        raise ValueError("features contain NaN or infinite values; check the vision tower's output")


def reduce_tokens(features: torch.Tensor, keep: int, method: str = "gprune", shape=None, guide=None,
                  finite_checked: bool = False, **params):
    """`keep` tokens for `features` [N, d]: (indices LongTensor[keep] ascending, tokens [keep, d]).

    `params` are the method's own (others are ignored, so one PruneConfig fits every method);
    `shape` is the group's (rows, cols) raster arrangement, for spatial methods; `guide` [N] is what a
    method that `needs` more than the features gets (the vision tower's [CLS] attention).
    `finite_checked`: the caller has run `check_finite` on these features (the model does, once a batch).
    """
    check_method(method)
    needs = METHODS[method].needs
    if needs and (guide is None or guide.shape != features.shape[:1]):
        raise ValueError(f"method={method!r} needs {needs.value} for each of the {features.shape[0]} tokens (guide=)")
    declared = METHODS[method].params
    for param in declared:
        param.check(params.get(param.name, param.default))
    if features.dim() != 2 or features.shape[0] == 0:
        raise ValueError(f"features must have shape [N, d] with N >= 1, got {tuple(features.shape)}")
    n = features.shape[0]
    if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= n:
        raise ValueError(f"keep={keep!r} must be an integer in [1, N={n}]")
    if not finite_checked:
        check_finite(features)
    given = {p.name: params.get(p.name, p.default) for p in declared}
    if needs:
        given["guide"] = guide
    return METHODS[method].reduce(features, keep, shape, **given)


def select_tokens(features: torch.Tensor, keep: int, method: str = "gprune", **params) -> torch.Tensor:
    """Indices (LongTensor[keep], ascending) of the tokens `method` keeps (a merging method: the
    positions its merged tokens take). Ties in score break towards the lower index."""
    return reduce_tokens(features, keep, method, **params)[0]
