"""What the paper's Figures 5 and 6 draw of a sample, kept on the records of the first FIGURE_SAMPLES samples
of each benchmark: per image, its token layout, the packed indices of the visual tokens the model kept (the
very tensor it pruned with) and, for G-Prune, every token's score after each propagation step. An
unpruned run records the picture itself (a small JPEG), so the report draws from MLflow alone and pruned runs
do not repeat it. Built after the timed generation, from the references the pruning state's `trace` collected
(gprune.pruning_state)."""

import base64
import io

from .config import PruneConfig
from .methods.gprune import score_steps

FIGURE_SAMPLES = 2  # the first samples of each benchmark (the same ones in every run of a sweep)
PICTURE_SIDE = 336  # longest side of the recorded picture, px


def wanted(index: int) -> bool:
    return index < FIGURE_SAMPLES


def picture(image) -> str:
    """The image as a base64 JPEG, at most PICTURE_SIDE px on its longest side."""
    small = image.convert("RGB")
    small.thumbnail((PICTURE_SIDE, PICTURE_SIDE))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=85)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _rounded(scores) -> list[float]:
    return [float(f"{value:.3g}") for value in scores.float().cpu().tolist()]


def describe_images(images: list, sizes: list, layouts: list, traced: list, prune: PruneConfig) -> list[dict]:
    """One entry per image of a sample. `traced`: its images' (features or scores, kept indices, layout) when
    the model pruned them (at the projector, or inside the language model: FastV's choice at layer K)."""
    entries = []
    for i, (image, size, layout) in enumerate(zip(images, sizes, layouts)):
        entry = {"size": list(size), "base": layout.base, "base_shape": layout.base_shape, "fit": layout.fit,
                 "rows": layout.rows, "cols": layout.cols}
        if not prune.active:
            entry["picture"] = picture(image)
        if i < len(traced):
            features, kept, _ = traced[i]
            entry["kept"] = kept.tolist()
            if prune.method == "gprune":
                params = prune.method_params()
                grid = features[layout.grid_positions().to(features.device)]
                entry["score_steps"] = {"base": [_rounded(s) for s in score_steps(features[: layout.base], **params)],
                                        "grid": [_rounded(s) for s in score_steps(grid, **params)]}
        entries.append(entry)
    return entries
