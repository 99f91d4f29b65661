"""G-Prune: training-free graph-based visual-token pruning for LLaVA-NeXT (and LLaVA-1.5, Qwen2.5-VL, LLaVA-OneVision),
as a library.

Pure PyTorch + transformers (+ lmms-eval for benchmarks): no Ray, no MLflow, usable in a notebook.
Names are imported on first use, so `import gprune.config` stays light for Ray Tune trials.
"""

import importlib

_EXPORTS = {
    "PruneConfig": "config", "evaluate": "evaluation", "exact_flops": "flops", "fastv_flops": "flops",
    "image_layout": "families", "keep_count": "layout", "load_model": "loading", "select_tokens": "selection",
    "reduce_tokens": "selection",
    "set_prune": "families",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gprune' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
