"""Figures 5 and 6 of the paper for a user's own sweep: on a few fixed samples, which visual tokens each
method kept at each ratio (base view and high-resolution grid), and G-Prune's score map after each
propagation step. Drawn from the runs' records (gprune.figure_samples): the baseline's carry the picture,
each trial's the packed indices its model kept and, for G-Prune, the scores."""

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from gprune.figure_samples import FIGURE_SAMPLES
from gprune.measures import Measure
from sweep.tags import RUN_NAME, tag_column

from .figures import label  # noqa: E402

DROPPED = (0.0, 0.0, 0.0, 0.7)  # RGBA laid over a dropped token's patch


def base_shape(entry: dict) -> tuple[int, int] | None:
    """The base view's token grid of a record's image ("base_side": records written before Qwen2.5-VL's
    non-square views)."""
    if entry.get("base_shape"):
        return tuple(entry["base_shape"])
    return (entry["base_side"],) * 2 if entry.get("base_side") else None


def kept_masks(entry: dict) -> tuple[np.ndarray | None, np.ndarray]:
    """The kept indices of one image's record as masks: base view [side, side] (None when the base view has a
    CLS token and no square), grid [rows, cols] (its row-end newline tokens, always kept, left out)."""
    base, rows, cols, shape = entry["base"], entry["rows"], entry["cols"], base_shape(entry)
    kept = np.asarray(entry["kept"], dtype=int)
    base_mask = np.zeros(base, dtype=bool)
    base_mask[kept[kept < base]] = True
    row, col = np.divmod(kept[kept >= base] - base, cols + 1)
    grid_mask = np.zeros((rows, cols), dtype=bool)
    grid_mask[row[col < cols], col[col < cols]] = True
    return (base_mask.reshape(shape) if shape else None), grid_mask


def views(picture: str, fit: str = "squash") -> tuple[np.ndarray, np.ndarray]:
    """The recorded picture as the processor shows it to the model: the base view (squashed to a square,
    centre-cropped to one, or whole: the layout's `fit`), and the grid (once unpadded) covering the whole image at
    its own aspect."""
    image = Image.open(io.BytesIO(base64.b64decode(picture))).convert("RGB")
    width, height = image.size
    if fit == "whole":
        base = image
    elif fit == "crop":
        side = min(width, height)
        base = image.crop(((width - side) // 2, (height - side) // 2, (width + side) // 2, (height + side) // 2))
    else:
        base = image.resize((max(width, height),) * 2)
    return np.asarray(base), np.asarray(image)


def rank(scores) -> np.ndarray:
    """Each score's rank in [0, 1] (1: the highest): the order top-k selection uses, whatever the spread."""
    scores = np.asarray(scores)
    return np.argsort(np.argsort(scores, kind="stable"), kind="stable") / max(len(scores) - 1, 1)


def _overlay(axes, image: np.ndarray, mask: np.ndarray | None, title: str) -> None:
    axes.imshow(image)
    if mask is not None:
        shade = np.zeros((*mask.shape, 4))
        shade[~mask] = DROPPED
        axes.imshow(shade, extent=(0, image.shape[1], image.shape[0], 0), interpolation="nearest")
    axes.set_title(title, fontsize=7)
    axes.axis("off")


def figure_records(sweep, run_id: str, benchmark: str) -> list[dict]:
    """The run's records of `benchmark` that can carry a figure sample (gprune.figure_samples): a few rows read."""
    return sweep.records(run_id, [benchmark], ["images"], below_index=FIGURE_SAMPLES).get(benchmark, [])


def _entry(sweep, run_id: str, benchmark: str, index: int) -> dict | None:
    record = next((r for r in figure_records(sweep, run_id, benchmark) if r["index"] == index), None)
    return record["images"][0] if record and record.get("images") else None


def picks(sweep) -> list:
    """One trial per (method, ratio): the one with the best objective (ties: the first)."""
    trials = sweep.trials.copy()
    if "params.method" not in trials:
        trials["params.method"] = "gprune"
    trials = trials.sort_values(f"metrics.{Measure.OBJECTIVE}", ascending=False, kind="stable")
    return [group.iloc[0] for _, group in trials.groupby(["params.method", "params.ratio"], sort=True)]


def figure5(sweep, benchmark: str, index: int, path: Path) -> Path | None:
    base_record = _entry(sweep, sweep.baseline["run_id"], benchmark, index)
    if not base_record or "picture" not in base_record:
        return None
    base_image, grid_image = views(base_record["picture"], base_record.get("fit", "squash"))
    rows = [(trial, _entry(sweep, trial["run_id"], benchmark, index)) for trial in picks(sweep)]
    rows = [(trial, entry) for trial, entry in rows if entry and "kept" in entry]
    has_grid = base_record["rows"] > 0  # LLaVA-1.5: one view, no grid
    figure, axes = plt.subplots(len(rows) + 1, 1 + has_grid, figsize=(5.5 if has_grid else 4, 2.4 * (len(rows) + 1)),
                                squeeze=False, layout="constrained")
    _overlay(axes[0, 0], base_image, None, "unpruned: base view" if has_grid else "unpruned: the one view")
    if has_grid:
        _overlay(axes[0, 1], grid_image, None, "unpruned: high-resolution grid")
    for (trial, entry), (left, *right) in zip(rows, axes[1:]):
        base_mask, grid_mask = kept_masks(entry)
        name = f"{trial.get('params.method', 'gprune')} {float(trial['params.ratio']):.0%} removed"
        extra = label(trial, [k for k in sweep.swept if k not in ("method", "ratio")])
        name += f" ({extra})" if extra and extra != trial[tag_column(RUN_NAME)] else ""
        _overlay(left, base_image, base_mask, f"{name}: base, {int(base_mask.sum()) if base_mask is not None else '-'}"
                 f" of {entry['base']} kept")
        if has_grid:
            _overlay(right[0], grid_image, grid_mask, f"grid, {int(grid_mask.sum())} of {grid_mask.size} kept")
    figure.suptitle(f"{benchmark} sample {index}: kept visual tokens (dark: dropped)", fontsize=9)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def figure6(sweep, benchmark: str, index: int, path: Path) -> Path | None:
    """G-Prune's degree-normalised score after each propagation step, for its best trial."""
    gprune = [t for t in picks(sweep) if t.get("params.method", "gprune") == "gprune"]
    best = max(gprune, key=lambda t: t[f"metrics.{Measure.OBJECTIVE}"], default=None)
    entry = best is not None and _entry(sweep, best["run_id"], benchmark, index)
    if not entry or "score_steps" not in entry:
        return None
    steps = entry["score_steps"]
    shapes = {"base": base_shape(entry),
              "grid": (entry["rows"], entry["cols"]) if entry["rows"] else None}  # LLaVA-1.5 has no grid
    shown = [view for view in ("base", "grid") if shapes[view]]
    count = max(len(steps[view]) for view in shown)
    figure, axes = plt.subplots(len(shown), count, figsize=(1.9 * count, 2.1 * len(shown)), squeeze=False,
                                layout="constrained")
    for row, view in zip(axes, shown):
        for step, (axis, scores) in enumerate(zip(row, steps[view])):
            axis.imshow(rank(scores).reshape(shapes[view]), cmap="magma", interpolation="nearest", vmin=0, vmax=1)
            axis.set_title(f"{view}, step {step}" + (" (L2 norm)" if step == 0 else ""), fontsize=7)
            axis.axis("off")
    figure.suptitle(f"{benchmark} sample {index}: G-Prune scores per propagation step, "
                    f"{label(best, sweep.swept) or best[tag_column(RUN_NAME)]}; colour: each score's rank in its "
                    "map (top-k keeps the brightest)", fontsize=8)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def kept_token_figures(sweep, out: Path) -> list[Path]:
    """Figures 5 and 6 for every benchmark's figure samples the baseline recorded a picture of."""
    paths = []
    for benchmark in sweep.benchmarks:
        for record in figure_records(sweep, sweep.baseline["run_id"], benchmark):
            if record.get("images"):
                index = record["index"]
                paths += [figure5(sweep, benchmark, index, out / f"figure5-{benchmark}-{index}.png"),
                          figure6(sweep, benchmark, index, out / f"figure6-{benchmark}-{index}.png")]
    return [p for p in paths if p]
