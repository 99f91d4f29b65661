"""FLOPs per sample from the model config and the actual token counts, in two conventions.

`exact`: floating-point operations actually executed, counted as 2 x multiply-adds of every
matrix product (the convention of torch.utils.flop_counter): vision tower and projector (each family counts its
own: gprune/families/), token reduction (each method declares its own), language-model
prefill (grouped-query attention projections, full n x n attention score and value products as
eager/SDPA compute them, SwiGLU MLP),
lm_head, and one KV-cache decode step per generated token after the first. Norms, softmax,
rotary and element-wise ops are not counted (neither does FlopCounterMode).

`fastv`: the multiply-accumulate count pruning papers report (FastV, G-Prune's Table 1), prefill of
the language model only: L * (4 n d^2 + 2 n^2 d + 2 n d m), with n the prefill tokens, d the hidden
size and m the MLP size. It assumes full multi-head attention and a two-matrix MLP, so it is neither
exact for Llama-3 (GQA, SwiGLU) nor a FLOP count (it counts MACs); it is what the paper compares.
"""

from dataclasses import asdict, dataclass

from .config import PruneConfig
from .families import family_of_config
from .layout import ImageLayout, keep_count
from .methods import METHODS
from .methods.base import Needs, Stage


@dataclass(frozen=True)
class Flops:
    vision: float
    projector: float
    selection: float
    prefill: float
    decode: float

    @property
    def total(self) -> float:
        return self.vision + self.projector + self.selection + self.prefill + self.decode

    def to_dict(self) -> dict:
        return {**asdict(self), "total": self.total}


def _selection_flops(layout: ImageLayout, hidden: int, prune: PruneConfig) -> float:
    """The method's own FLOPs (declared in its module), base view and grid apart."""
    if not prune.active or METHODS[prune.method].stage != Stage.PROJECTOR:
        return 0.0
    flops = METHODS[prune.method].flops
    return sum(flops(n, hidden, keep_count(n, prune.ratio), **prune.method_params())
               for n in (layout.base, layout.rows * layout.cols))


def _lm_layer_flops(text, new_tokens: int, context: int) -> float:
    """One decoder layer for `new_tokens` queries attending over `context` keys."""
    h, m = text.hidden_size, text.intermediate_size
    head_dim = getattr(text, "head_dim", None) or h // text.num_attention_heads
    q_dim, kv_dim = text.num_attention_heads * head_dim, text.num_key_value_heads * head_dim
    projections = 2 * new_tokens * h * (2 * q_dim + 2 * kv_dim)  # q, o and k, v
    attention = 2 * 2 * new_tokens * context * q_dim  # scores and weighted values
    mlp = 3 * 2 * new_tokens * h * m  # SwiGLU: gate, up, down
    return projections + attention + mlp


def layer_split(config, prefill_tokens: int, images: list[ImageLayout], prune: PruneConfig) -> tuple[int, int]:
    """(language-model layers that see the whole prompt, prompt tokens the other layers see). A
    language-model method (FastV) runs its first `lm_layer` layers on every token, the rest on the
    survivors; every other method prunes before the language model (prefill_tokens is already reduced)."""
    layers = config.text_config.num_hidden_layers
    if not (prune.active and METHODS[prune.method].stage == Stage.LANGUAGE_MODEL):
        return layers, prefill_tokens
    dropped = sum(layout.full - layout.kept(prune.ratio) for layout in images)
    return min(prune.lm_layer, layers), prefill_tokens - dropped


def _attention_row_flops(text, prefill_tokens: int) -> float:
    """FastV's score: the k projection of every prompt token, one q projection, one row of scores."""
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    q_dim, kv_dim = text.num_attention_heads * head_dim, text.num_key_value_heads * head_dim
    return 2 * prefill_tokens * text.hidden_size * kv_dim + 2 * text.hidden_size * q_dim + 2 * prefill_tokens * q_dim


def exact_flops(
    config,
    prefill_tokens: int,
    generated_tokens: int,
    images: list[ImageLayout],
    prune: PruneConfig | None = None,
    all_logits: bool = False,
) -> Flops:
    """Exact FLOPs of one sample: `prefill_tokens` prompt tokens (no padding; after pruning, for a method
    that prunes before the language model) and `generated_tokens` new tokens. generate() computes logits
    for the last prompt position only; a plain forward (`all_logits=True`) computes them for every
    position the last layer sees."""
    prune = prune or PruneConfig()
    text = config.text_config
    crops = sum(layout.crops for layout in images)
    lm_head = 2 * text.hidden_size * text.vocab_size
    full_layers, reduced = layer_split(config, prefill_tokens, images, prune)
    later_layers = text.num_hidden_layers - full_layers
    prefill = (full_layers * _lm_layer_flops(text, prefill_tokens, prefill_tokens)
               + later_layers * _lm_layer_flops(text, reduced, reduced))
    prefill += lm_head * (reduced if all_logits else 1)
    decode = 0.0
    for step in range(1, generated_tokens):  # the first new token comes out of the prefill
        decode += (full_layers * _lm_layer_flops(text, 1, prefill_tokens + step)
                   + later_layers * _lm_layer_flops(text, 1, reduced + step) + lm_head)
    selection = sum(_selection_flops(layout, text.hidden_size, prune) for layout in images)
    if later_layers and reduced != prefill_tokens:
        selection += _attention_row_flops(text, prefill_tokens)
    family = family_of_config(config)
    if prune.active and METHODS[prune.method].needs == Needs.VISION_ATTENTION:
        selection += family.cls_attention_flops(config, crops)
    vision, projector = family.vision_flops(config, images)
    return Flops(
        vision=vision,
        projector=projector,
        selection=selection,
        prefill=prefill,
        decode=decode,
    )


def fastv_flops(config, prefill_tokens: int, images: list[ImageLayout] = (), prune: PruneConfig | None = None
                ) -> float:
    """The pruning papers' prefill cost, per layer 4nd^2 + 2n^2d + 2ndm multiply-accumulates, n being
    the tokens that layer sees (FastV's own count: K layers at full length, the rest reduced)."""
    text = config.text_config
    d, m = text.hidden_size, text.intermediate_size
    full_layers, reduced = layer_split(config, prefill_tokens, images, prune or PruneConfig())

    def layer(n):
        return 4 * n * d * d + 2 * n * n * d + 2 * n * d * m

    return full_layers * layer(prefill_tokens) + (text.num_hidden_layers - full_layers) * layer(reduced)
