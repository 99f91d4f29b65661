"""G-Prune scores (paper Eq. 1-5): graph-based information propagation over visual tokens.

Tokens are nodes; an edge joins two tokens whose cosine similarity is at least `threshold`
(every token keeps its self-edge). Each row of the similarity graph is softmax-normalised
with a temperature over its edges only (a cut edge carries no information), scores start at
each token's L2 norm and are propagated `iterations` times with S <- S @ A, then divided by
the node degree so that large connected regions (background) do not win by size alone.
"""

import math

import torch
import torch.nn.functional as F

from .base import Method, Param, from_scores, integer_in, number_in

# The paper sweeps t <= 10; a hundred steps of a row-stochastic matrix have long converged, and more would only
# cost time (a billion steps ran for minutes, silently).
MAX_ITERATIONS = 100
# 1/temperature scales cosines in float32: far below this the logits overflow and every score is NaN.
MIN_TEMPERATURE = 1e-6
THRESHOLD = Param("threshold", 0.5, "similarity threshold s of the graph", "a number in (0, 1]", number_in(0, 1),
                  short="s")
ITERATIONS = Param("iterations", 5, f"propagation steps t (at most {MAX_ITERATIONS})",
                   f"an integer in [0, {MAX_ITERATIONS}]", integer_in(0, MAX_ITERATIONS), short="t")
TEMPERATURE = Param("temperature", 0.03, "row-softmax temperature (1.0: the paper's text)",
                    f"a finite number >= {MIN_TEMPERATURE:g}", number_in(MIN_TEMPERATURE, math.inf, low_open=False),
                    short="tau")


def similarity_graph(features: torch.Tensor, threshold: float, temperature: float):
    """Row-stochastic transition matrix A [N, N] and the edge mask (Eq. 1 plus the row softmax)."""
    unit = F.normalize(features, dim=-1)
    cosine = unit @ unit.T
    edges = cosine >= threshold
    edges.fill_diagonal_(True)  # cos(x, x) = 1 >= s for any s in (0, 1], whatever the rounding
    logits = (cosine / temperature).masked_fill_(~edges, float("-inf"))
    return torch.softmax(logits, dim=-1), edges


def propagate(initial: torch.Tensor, transition: torch.Tensor, edges: torch.Tensor, iterations: int):
    """Eq. 3-5: `iterations` vector-matrix products (never a dense matrix power), then / degree."""
    scores = initial
    for _ in range(iterations):
        scores = scores @ transition
    degree = edges.sum(dim=-1)
    return scores / degree


def graph_scores(features: torch.Tensor, initial, threshold: float, iterations: int, temperature: float):
    """Propagated, degree-normalised scores [N] from `initial(x)`, all in float32."""
    x = features.float()
    transition, edges = similarity_graph(x, threshold, temperature)
    return propagate(initial(x), transition, edges, iterations)


def score(features: torch.Tensor, threshold: float = 0.5, iterations: int = 5, temperature: float = 0.03):
    """Representativeness of each token [N]; higher is kept first. Initial score: the L2 norm (Eq. 2)."""
    return graph_scores(features, lambda x: x.norm(dim=-1), threshold, iterations, temperature)


def score_steps(features: torch.Tensor, threshold: float = 0.5, iterations: int = 5, temperature: float = 0.03):
    """The degree-normalised score after each propagation step, 0 (the L2 norm alone) to `iterations`
    (equal to score()): what Figure 6 draws. Not on the pruning path, which keeps only the last."""
    x = features.float()
    transition, edges = similarity_graph(x, threshold, temperature)
    degree = edges.sum(dim=-1)
    steps, scores = [], x.norm(dim=-1)
    for step in range(iterations + 1):
        if step:
            scores = scores @ transition
        steps.append(scores / degree)
    return steps


def graph_flops(n: int, d: int, keep: int, iterations: int = 5, **params) -> float:
    """The similarity graph (N x N x d) and `iterations` vector-matrix products (N x N)."""
    return 2 * n * n * d + iterations * 2 * n * n


METHOD = Method("gprune", "G-Prune: L2-norm scores propagated over the similarity graph (the paper)",
                from_scores(score), (THRESHOLD, ITERATIONS, TEMPERATURE), graph_flops)
