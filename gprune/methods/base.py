"""What a method module declares once: its parameters, its reduction and its FLOPs.

A method reduces one group of visual tokens (an image's base view, or its high-resolution grid)
from N to exactly `keep` tokens: `reduce(features [N, d], keep, shape, **params)` returns
`(indices, tokens)`, `indices` ascending and unique (each output token's position in the group, for
position ids), `tokens` [keep, d]. A selection method's tokens are rows of `features`; a merging
method's are averages, placed at a representative's position. `shape` is the group's (rows, cols)
arrangement in raster order when it has one (spatial methods need it), else None.

`PruneConfig`, the CLI, sweep-file validation, MLflow params and the FLOPs count all read these
declarations: a method's parameter is written in its own module and nowhere else.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np
import torch


@dataclass(frozen=True)
class Param:
    name: str
    default: object
    help: str
    rule: str  # what a valid value is, as the error message says it
    valid: Callable[[object], bool]
    # what the value must satisfy of the model it prunes, (value, LlavaNextConfig) -> why not, or None
    fits: Callable[[object, object], str | None] | None = None
    short: str = ""  # its symbol in a run's name ("s=0.5"); "" for the name itself

    def check(self, value) -> None:
        if not self.valid(value):
            raise ValueError(f"{self.name}={value!r} must be {self.rule}")


def number_in(low: float, high: float, low_open: bool = True) -> Callable[[object], bool]:
    def valid(value) -> bool:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return ok and (low < value if low_open else low <= value) and value <= high
    return valid


def integer_at_least(least: int) -> Callable[[object], bool]:
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= least


def integer_in(low: int, high: int) -> Callable[[object], bool]:
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _no_flops(n: int, d: int, keep: int, **params) -> float:
    return 0.0


class Stage(Enum):
    """Where a method removes tokens."""
    PROJECTOR = "projector"  # on the projected visual tokens, before the language model
    LANGUAGE_MODEL = "language_model"  # inside it: gprune/lm_pruning.py hands `reduce` each token's attention score


class Needs(Enum):
    """What else a method's reduce takes."""
    VISION_ATTENTION = "vision_attention"  # guide=[N]: the vision tower's [CLS] attention (gprune/vision_attention.py)


@dataclass(frozen=True)
class Method:
    name: str
    summary: str  # one line for --help and `gprune methods`
    reduce: Callable  # (features [N, d], keep, shape, **params) -> (indices [keep], tokens [keep, d])
    params: tuple[Param, ...] = ()
    flops: Callable[..., float] = _no_flops  # (n, d, keep, **params): the reduction's FLOPs, 2 x multiply-adds
    stage: "Stage" = None  # where it acts (Stage.PROJECTOR when not given)
    needs: "Needs | None" = None  # what else its reduce takes, if anything

    def __post_init__(self):
        if self.stage is None:
            object.__setattr__(self, "stage", Stage.PROJECTOR)


def from_scores(score: Callable) -> Callable:
    """A selection method's reduce from its score(features, **params) -> [N]: the top-`keep` tokens,
    ties broken towards the lower index (deterministic), returned in their original order."""
    def reduce(features: torch.Tensor, keep: int, shape=None, **params):
        scores = score(features, **params)
        # a NaN score would make top-k keep the first tokens, silently. Read on the CPU only, where it waits for
        # nothing (numpy: no dispatch); on an accelerator it would wait for the device once per image, so there the
        # parameters' bounds and the batch's finite features (gprune/selection.check_finite) keep scores finite
        if scores.device.type == "cpu" and not np.isfinite(scores.detach().float().numpy()).all():
            raise ValueError(f"scores of {len(scores)} tokens are not all finite (parameters {params}); check the "
                             "method's parameters against their documented ranges (`gprune methods`)")
        indices = torch.sort(scores, descending=True, stable=True).indices[:keep].sort().values
        return indices, features[indices]
    return reduce
