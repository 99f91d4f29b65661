"""The paper's figures from a sweep's runs: accuracy against exact TFLOPs with the Pareto front
(Figure 3) and threshold x iterations heatmaps (Table 3). matplotlib, written as PNG files."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from gprune.measures import Measure
from sweep.tags import RUN_NAME, tag_column

from .pareto import pareto_front  # noqa: E402

FLOPS = f"metrics.{Measure.TFLOPS_EXACT}"  # the cost axis


def label(row, swept: list[str]) -> str:
    return " ".join(str(row[f"params.{k}"]) for k in swept) or row[tag_column(RUN_NAME)]


def baseline_value(base, column: str) -> float:
    """The unpruned run's value of `column`; its retention is 1 by definition (it is what retention divides by)."""
    value = base.get(column, float("nan"))
    return 1.0 if column.endswith(Measure.RETENTION) and value != value else value


def draw_accuracy_vs_flops(sweep, column: str, title: str):
    """Trials as points, one colour per method (configs of a method are not a curve: ordering them by cost
    joins unrelated thresholds and steps), the baseline as a star, and the Pareto front (over the trials and
    the baseline) as a step line through its ringed, labelled points. Returns the figure."""
    trials, base = sweep.trials, sweep.baseline
    figure, axes = plt.subplots(figsize=(7, 4.5))
    by = "params.method" if "method" in sweep.swept else None
    for method, group in (trials.groupby(by) if by else [("trials", trials)]):
        axes.plot(group[FLOPS], group[column], marker="o", linestyle="none", label=method)
    points = [(r[FLOPS], r[column]) for _, r in trials.iterrows()]
    points.append((base[FLOPS], baseline_value(base, column)))
    axes.plot([points[-1][0]], [points[-1][1]], marker="*", markersize=14, color="black", linestyle="none",
              label="unpruned")
    front = sorted(pareto_front(points), key=lambda i: points[i])
    if front:  # cheapest first: each step up is what the next FLOPs buy
        axes.plot([points[i][0] for i in front], [points[i][1] for i in front], drawstyle="steps-post",
                  color="red", linewidth=1, label="Pareto front")
    for i in front:
        x, y = points[i]
        axes.scatter([x], [y], s=160, facecolors="none", edgecolors="red", linewidths=1.5)
        name = "unpruned" if i == len(trials) else label(trials.iloc[i], sweep.swept)
        axes.annotate(name, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=7, color="red")
    axes.set_xlabel("exact TFLOPs per sample (2 x multiply-adds, whole model)")
    axes.set_ylabel(title)
    axes.set_title(f"{sweep.name}: {title} against cost (red: Pareto front)")
    axes.legend(fontsize=7)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def accuracy_vs_flops(sweep, column: str, title: str, path: Path) -> Path:
    figure = draw_accuracy_vs_flops(sweep, column, title)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def heatmap(table, title: str, path: Path) -> Path:
    """`table`: a pivot (rows: threshold, columns: iterations) of one metric."""
    figure, axes = plt.subplots(figsize=(1.2 * len(table.columns) + 2, 0.6 * len(table.index) + 1.8))
    image = axes.imshow(table.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    axes.set_xticks(range(len(table.columns)), [str(c) for c in table.columns])
    axes.set_yticks(range(len(table.index)), [str(i) for i in table.index])
    axes.set_xlabel("iterations t")
    axes.set_ylabel("threshold s")
    for (row, col), value in zip(((r, c) for r in range(len(table.index)) for c in range(len(table.columns))),
                                 table.to_numpy(dtype=float).flatten()):
        axes.text(col, row, f"{value:.3f}", ha="center", va="center", color="white", fontsize=8)
    figure.colorbar(image)
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
