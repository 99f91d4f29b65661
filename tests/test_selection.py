"""select_tokens against a direct, dense transcription of the paper's Eq. 1-6."""

import math

import pytest
import torch

from gprune import select_tokens
from gprune.methods import gprune as gprune_method


def clustered_features(n: int, d: int, clusters: int, seed: int) -> torch.Tensor:
    """Tokens around a few centres (objects/background), so the similarity graph has real edges."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(clusters, d, generator=g)
    labels = torch.randint(0, clusters, (n,), generator=g)
    scale = 0.5 + torch.rand(n, 1, generator=g)  # tokens differ in norm, as real features do
    return scale * (centres[labels] + 0.6 * torch.randn(n, d, generator=g))


def dense_reference_scores(x: torch.Tensor, s: float, t: int, tau: float) -> torch.Tensor:
    """Eq. 1-5 written out entry by entry in float64, with a dense matrix power for Eq. 3."""
    x = x.double()
    n = x.shape[0]
    adjacency = torch.zeros(n, n, dtype=torch.float64)
    edge = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        for j in range(n):
            cosine = float(x[i] @ x[j] / (x[i].norm() * x[j].norm()))
            if cosine >= s or i == j:  # Eq. 1: A_ij = cos(X_i, X_j) when cos >= s, else no edge
                adjacency[i, j], edge[i, j] = cosine, True
    normalised = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):  # row softmax (with temperature) over the edges of node i
        weights = [math.exp(adjacency[i, j] / tau) if edge[i, j] else 0.0 for j in range(n)]
        total = sum(weights)
        for j in range(n):
            normalised[i, j] = weights[j] / total
    initial = torch.tensor([math.sqrt(sum(v * v for v in row.tolist())) for row in x], dtype=torch.float64)  # Eq. 2
    propagated = initial @ torch.linalg.matrix_power(normalised, t)  # Eq. 3
    degree = edge.sum(dim=1).double()  # Eq. 4
    return propagated / degree  # Eq. 5


def reference_topk(scores: torch.Tensor, k: int) -> torch.Tensor:  # Eq. 6
    return torch.tensor(sorted(sorted(range(len(scores)), key=lambda i: (-scores[i].item(), i))[:k]))


@pytest.mark.parametrize("seed,s,t,tau", [(0, 0.5, 5, 0.03), (1, 0.3, 3, 1.0), (2, 0.7, 1, 0.1), (3, 0.5, 0, 0.03)])
def test_gprune_matches_dense_transcription(seed, s, t, tau):
    x = clustered_features(48, 12, clusters=4, seed=seed)
    reference = dense_reference_scores(x, s, t, tau)
    ours = gprune_method.score(x, threshold=s, iterations=t, temperature=tau)
    assert torch.allclose(ours.double(), reference, rtol=1e-4, atol=1e-6)
    for k in (1, 12, 24, 47, 48):
        assert select_tokens(x, k, "gprune", threshold=s, iterations=t, temperature=tau).tolist() == \
            reference_topk(reference, k).tolist()


def test_graph_has_edges_and_degree_matters():
    """Guard the test data: with clustered tokens the degree normalisation changes the choice."""
    x = clustered_features(48, 12, clusters=4, seed=0)
    by_norm = select_tokens(x, 8, "l2norm")
    by_graph = select_tokens(x, 8, "gprune")
    assert by_norm.tolist() != by_graph.tolist()


def test_result_is_sorted_long_and_unique():
    x = clustered_features(64, 8, clusters=3, seed=5)
    for method in ("gprune", "graph", "l2norm", "random"):
        kept = select_tokens(x, 20, method)
        assert kept.dtype == torch.long and len(kept) == 20
        assert kept.tolist() == sorted(set(kept.tolist()))


def test_l2norm_keeps_largest_norms():
    x = clustered_features(30, 6, clusters=2, seed=7)
    expected = sorted(torch.argsort(x.norm(dim=1), descending=True)[:10].tolist())
    assert select_tokens(x, 10, "l2norm").tolist() == expected


def test_graph_ablation_uses_uniform_initial_score():
    x = clustered_features(40, 8, clusters=3, seed=3)
    uniform = x / x.norm(dim=1, keepdim=True)  # equal norms: G-Prune's L2 init becomes uniform
    assert select_tokens(uniform, 10, "graph").tolist() == select_tokens(uniform, 10, "gprune").tolist()
    assert select_tokens(x, 10, "graph").tolist() != select_tokens(x, 10, "gprune").tolist()


def test_random_is_seeded():
    x = torch.randn(100, 4)
    assert select_tokens(x, 10, "random", seed=1).tolist() == select_tokens(x, 10, "random", seed=1).tolist()
    assert select_tokens(x, 10, "random", seed=1).tolist() != select_tokens(x, 10, "random", seed=2).tolist()


def test_ties_break_towards_lower_index():
    x = torch.ones(10, 4)  # every token identical: every score ties
    for method in ("gprune", "graph", "l2norm"):
        assert select_tokens(x, 3, method).tolist() == [0, 1, 2]


def test_computes_graph_in_float32_for_half_inputs():
    x = clustered_features(32, 8, clusters=3, seed=9)
    assert select_tokens(x.bfloat16(), 8).tolist() == select_tokens(x.bfloat16().float(), 8).tolist()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"keep": 0}, "keep=0 must be an integer in \\[1, N=16\\]"),
        ({"keep": 17}, "keep=17"),
        ({"keep": 4, "threshold": 0.0}, "threshold=0.0 must be a number in \\(0, 1\\]"),
        ({"keep": 4, "threshold": 1.5}, "threshold=1.5"),
        ({"keep": 4, "iterations": -1}, "iterations=-1 must be an integer in \\[0, 100\\]"),
        ({"keep": 4, "iterations": 2.5}, "iterations=2.5"),
        ({"keep": 4, "temperature": 0}, "temperature=0 must be a finite number >= 1e-06"),
        ({"keep": 4, "method": "sparsevlm"}, "method='sparsevlm' is unknown"),
    ],
)
def test_bad_parameters_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        select_tokens(torch.randn(16, 4), **kwargs)


def test_non_finite_features_are_rejected():
    x = torch.randn(16, 4)
    x[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        select_tokens(x, 4)
