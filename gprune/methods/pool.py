"""Average pooling to the budget: the cheap spatial baseline (VTC-Bench found it beating many methods).

A group with a (rows, cols) arrangement is cut into horizontal bands and each band into windows, as
evenly as the budget allows, and each window is averaged; a group without one (a base view with a CLS
token) is pooled in raster order. Exactly `keep` tokens, each at its window's first position."""

import math

import torch

from .base import Method


def _split(total: int, parts: int) -> list[int]:
    """`parts` near-equal positive sizes summing to `total`."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def reduce(features: torch.Tensor, keep: int, shape=None):
    n = features.shape[0]
    rows, cols = shape if shape is not None and shape[0] * shape[1] == n else (1, n)
    bands = max(1, min(rows, round(math.sqrt(keep * rows / cols))))
    per_band = _split(keep, bands)
    while any(k > cols for k in per_band):  # a band cannot hold more windows than it has columns
        bands += 1
        per_band = _split(keep, bands)
    grid = features.reshape(rows, cols, -1)
    tokens, indices, row = [], [], 0
    for band_rows, windows in zip(_split(rows, bands), per_band):
        band = grid[row : row + band_rows].float().mean(dim=0)  # [cols, d]
        col = 0
        for width in _split(cols, windows):
            tokens.append(band[col : col + width].mean(dim=0))
            indices.append(row * cols + col)
            col += width
        row += band_rows
    return torch.tensor(indices, device=features.device), torch.stack(tokens).to(features.dtype)


def flops(n: int, d: int, keep: int, **params) -> float:
    return 0.0  # additions only


METHOD = Method("pool", "average pooling of each view's 2-D grid to the budget (a cheap baseline)", reduce,
                flops=flops)
