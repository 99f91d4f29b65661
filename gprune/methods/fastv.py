"""FastV (Chen et al., ECCV 2024): prune inside the language model. Its first K = `lm_layer` layers run on
the whole prompt; each visual token is scored by the attention weight the last prompt token gives it in the
last of them (layer K-1, averaged over heads, as FastV's reference code reads `output_attentions`); the top
share is kept and the rest leave the hidden states and the KV cache of layers K.., for the prefill and every
decode step.

This module declares the method and its choice (the top-k of the scores); gprune/lm_pruning.py runs the
language model around it and hands it the scores, one value per visual token.
"""

from .base import Method, Param, Stage, from_scores, integer_at_least


def _below_depth(lm_layer: int, config) -> str | None:
    depth = config.text_config.num_hidden_layers
    if lm_layer < depth:
        return None
    return (f"lm_layer={lm_layer} must be below the language model's depth ({depth} layers): from layer "
            f"{lm_layer} on nothing would run pruned; use 1..{depth - 1} (the paper's K=2)")


LM_LAYER = Param("lm_layer", 2, "FastV: language-model layers run on the whole prompt before pruning (K)",
                 "an integer >= 1", integer_at_least(1), fits=_below_depth, short="K")


def score(attention, lm_layer: int = 2):
    return attention[:, 0]  # [N, 1]: the last prompt token's attention to each visual token


METHOD = Method("fastv", "FastV: inside the language model, after layer K keep the visual tokens the last "
                "prompt token attends to most", from_scores(score), (LM_LAYER,), stage=Stage.LANGUAGE_MODEL)
