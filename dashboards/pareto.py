"""The Pareto front of accuracy against cost: the configs no other config beats on both at once."""


def pareto_front(points: list[tuple[float, float]]) -> set[int]:
    """Indices of `points` (cost, value) on the front: lower cost and higher value are better; a point is
    off the front when another is at least as good on both and better on one. NaNs are never on it."""
    front = set()
    for i, (cost, value) in enumerate(points):
        if cost != cost or value != value:
            continue
        dominated = any(c <= cost and v >= value and (c < cost or v > value)
                        for j, (c, v) in enumerate(points) if j != i and c == c and v == v)
        if not dominated:
            front.add(i)
    return front
