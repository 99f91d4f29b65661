"""PruneConfig: what to prune, how much, and with which method's parameters."""

from dataclasses import asdict, dataclass, field

from .methods import SCORERS
from .selection import validate_selection_params

POSITION_MODES = ("original", "compact")


@dataclass(frozen=True)
class PruneConfig:
    """`ratio` is the fraction of visual tokens REMOVED (the paper's 50/70/90%); 0 disables pruning.

    `threshold` (s), `iterations` (t) and `temperature` are G-Prune's (defaults: the paper's s=0.5,
    t=5 and the published implementation's softmax temperature 0.03; 1.0 reproduces the paper's
    text). `positions="original"` keeps each surviving token's original position id, as the
    published implementation does; `"compact"` renumbers the shortened sequence.
    """

    # metadata: the one description of each parameter (the CLI's help and choices read it)
    method: str = field(default="gprune", metadata={"help": "token-selection method", "choices": tuple(SCORERS)})
    ratio: float = field(default=0.0, metadata={"help": "fraction of visual tokens removed, in [0, 1); 0 = none"})
    threshold: float = field(default=0.5, metadata={"help": "similarity threshold s of the graph, in (0, 1]"})
    iterations: int = field(default=5, metadata={"help": "propagation steps t, >= 0"})
    temperature: float = field(default=0.03, metadata={"help": "row-softmax temperature (1.0: the paper's text)"})
    positions: str = field(default="original", metadata={
        "help": "position ids of surviving tokens: their original ones, or renumbered", "choices": POSITION_MODES})
    seed: int = field(default=0, metadata={"help": "seed of the random method"})

    def __post_init__(self):
        validate_selection_params(self.method, self.threshold, self.iterations, self.temperature)
        if not (isinstance(self.ratio, (int, float)) and 0 <= self.ratio < 1):
            raise ValueError(f"ratio={self.ratio!r} must be a number in [0, 1) (the fraction of visual tokens removed)")
        if self.positions not in POSITION_MODES:
            raise ValueError(f"positions={self.positions!r} must be one of {POSITION_MODES}")

    @property
    def active(self) -> bool:
        return self.ratio > 0

    def selection_params(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k in ("threshold", "iterations", "temperature", "seed")}

    def to_dict(self) -> dict:
        return asdict(self)
