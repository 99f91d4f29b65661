"""The public token-selection entry point: validate, score, take the top-k, return sorted indices."""

import math

import torch

from .methods import PARAMETERS, SCORERS


def validate_selection_params(
    method: str, threshold: float = 0.5, iterations: int = 5, temperature: float = 0.03
) -> None:
    """Raise ValueError naming the parameter and its allowed range (shared by PruneConfig)."""
    if method not in SCORERS:
        raise ValueError(f"method={method!r} is unknown; choose one of {sorted(SCORERS)}")
    if not (isinstance(threshold, (int, float)) and 0 < threshold <= 1):
        raise ValueError(f"threshold={threshold!r} must be a number in (0, 1]")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations={iterations!r} must be an integer >= 0")
    if not (isinstance(temperature, (int, float)) and temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature={temperature!r} must be a finite number > 0")


def select_tokens(
    features: torch.Tensor,
    keep: int,
    method: str = "gprune",
    *,
    threshold: float = 0.5,
    iterations: int = 5,
    temperature: float = 0.03,
    seed: int = 0,
) -> torch.Tensor:
    """Indices (LongTensor[keep], ascending) of the `keep` tokens of `features` [N, d] to retain.

    Ties in score are broken towards the lower index, so the choice is deterministic.
    """
    validate_selection_params(method, threshold, iterations, temperature)
    if features.dim() != 2 or features.shape[0] == 0:
        raise ValueError(f"features must have shape [N, d] with N >= 1, got {tuple(features.shape)}")
    n = features.shape[0]
    if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= n:
        raise ValueError(f"keep={keep!r} must be an integer in [1, N={n}]")
    if not torch.isfinite(features).all():
        raise ValueError("features contain NaN or infinite values; check the vision tower's output")

    given = {"threshold": threshold, "iterations": iterations, "temperature": temperature, "seed": seed}
    scores = SCORERS[method](features, **{name: given[name] for name in PARAMETERS[method]})
    order = torch.sort(scores, descending=True, stable=True).indices
    return order[:keep].sort().values
