"""Token-selection methods: each module has `score(features[N, d], **params) -> Tensor[N]`.

Higher scores are kept first. Methods are pure tensor functions; they know nothing of models,
datasets, Ray or MLflow. `gprune.selection.select_tokens` turns scores into kept indices.
"""

from . import gprune, graph, l2norm, random

SCORERS = {
    "gprune": gprune.score,
    "random": random.score,
    "l2norm": l2norm.score,
    "graph": graph.score,
}

# The keyword parameters each method accepts (others are ignored, so one config fits all methods).
PARAMETERS = {
    "gprune": ("threshold", "iterations", "temperature"),
    "graph": ("threshold", "iterations", "temperature"),
    "l2norm": (),
    "random": ("seed",),
}
