"""The model families G-Prune prunes, one row each: transformers' classes, and the pruning subclasses that
`set_prune` swaps in (the weights are untouched, only the class changes)."""

from dataclasses import dataclass

from transformers import (
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaNextProcessor,
    LlavaProcessor,
)

from .config import PruneConfig
from .llava15 import PrunedLlavaForConditionalGeneration, PrunedLlavaModel, PrunedLlavaProcessor
from .lm_pruning import set_lm_plan
from .model import PrunedLlavaNextForConditionalGeneration, PrunedLlavaNextModel, PrunedLlavaNextProcessor


@dataclass(frozen=True)
class Family:
    name: str
    model_type: str  # config.json's
    example: str  # a checkpoint of it on the hub
    config: type
    model: type
    processor: type
    pruned_model: type
    pruned_inner: type  # the pruned class of model.model
    pruned_processor: type


FAMILIES = (
    Family("LLaVA-NeXT", "llava_next", "llava-hf/llama3-llava-next-8b-hf", LlavaNextConfig,
           LlavaNextForConditionalGeneration, LlavaNextProcessor, PrunedLlavaNextForConditionalGeneration,
           PrunedLlavaNextModel, PrunedLlavaNextProcessor),
    Family("LLaVA-1.5", "llava", "llava-hf/llava-1.5-7b-hf", LlavaConfig, LlavaForConditionalGeneration,
           LlavaProcessor, PrunedLlavaForConditionalGeneration, PrunedLlavaModel, PrunedLlavaProcessor),
)
MODEL_TYPES = {family.model_type: family for family in FAMILIES}


def family_of_type(model_type: str | None, where: str) -> Family:
    """The family of a config.json's model_type, or one clear error naming `where` it came from."""
    if model_type not in MODEL_TYPES:
        known = ", ".join(f"{f.name} ({f.model_type!r}, e.g. {f.example})" for f in FAMILIES)
        raise ValueError(f"{where} holds a {model_type!r} model (config.json model_type); G-Prune prunes {known}")
    return MODEL_TYPES[model_type]


def set_prune(model, processor, prune: PruneConfig) -> None:
    """Make `model` and `processor` prune visual tokens as `prune` says (ratio=0: not at all)."""
    family = next((f for f in FAMILIES if isinstance(model, f.model)), None)
    if family is None:
        names = " or ".join(f.model.__name__ for f in FAMILIES)
        raise TypeError(f"G-Prune needs a {names}, got {type(model).__name__}")
    if not isinstance(processor, family.processor):
        raise TypeError(f"a {family.name} model needs a {family.processor.__name__}, got {type(processor).__name__}")
    misfits = prune.misfits(model.config)
    if misfits:
        raise ValueError("; ".join(misfits))
    model.__class__ = family.pruned_model
    model.model.__class__ = family.pruned_inner
    processor.__class__ = family.pruned_processor
    processor.layout_config = model.config
    model.model.prune = prune
    processor.prune = prune
    set_lm_plan(model.model.language_model, None)  # a language-model method plans at its next prefill
