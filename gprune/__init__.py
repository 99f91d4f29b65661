"""G-Prune: training-free graph-based visual-token pruning for LLaVA-NeXT, as a library.

Pure PyTorch + transformers (+ lmms-eval for benchmarks): no Ray, no MLflow, usable in a notebook.
"""

from .config import PruneConfig
from .evaluation import evaluate
from .flops import exact_flops, fastv_flops
from .layout import image_layout, keep_count
from .loading import load_model
from .model import set_prune
from .selection import select_tokens

__all__ = [
    "PruneConfig", "evaluate", "exact_flops", "fastv_flops", "image_layout", "keep_count",
    "load_model", "select_tokens", "set_prune",
]
