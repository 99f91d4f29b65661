"""The model families G-Prune prunes, one row each: transformers' classes, and the pruning subclasses that
`set_prune` swaps in (the weights are untouched, only the class changes)."""

from dataclasses import dataclass

from transformers import (
    LlavaForConditionalGeneration,
    LlavaNextForConditionalGeneration,
    LlavaNextProcessor,
    LlavaProcessor,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
)

from .config import PruneConfig
from .llava15 import PrunedLlavaForConditionalGeneration, PrunedLlavaModel, PrunedLlavaProcessor
from .lm_pruning import set_lm_plan
from .methods import METHODS
from .methods.base import Needs
from .model import PrunedLlavaNextForConditionalGeneration, PrunedLlavaNextModel, PrunedLlavaNextProcessor
from .qwen25vl import PrunedQwen2_5_VLForConditionalGeneration, PrunedQwen2_5_VLModel, PrunedQwen2_5_VLProcessor


@dataclass(frozen=True)
class Family:
    name: str
    model_type: str  # config.json's
    example: str  # a checkpoint of it on the hub
    model: type
    processor: type
    pruned_model: type
    pruned_inner: type  # the pruned class of model.model
    pruned_processor: type
    has_cls: bool = True  # the vision tower has a [CLS] token (VisionZip ranks by its attention)


FAMILIES = (
    Family("LLaVA-NeXT", "llava_next", "llava-hf/llama3-llava-next-8b-hf", LlavaNextForConditionalGeneration,
           LlavaNextProcessor, PrunedLlavaNextForConditionalGeneration, PrunedLlavaNextModel,
           PrunedLlavaNextProcessor),
    Family("LLaVA-1.5", "llava", "llava-hf/llava-1.5-7b-hf", LlavaForConditionalGeneration, LlavaProcessor,
           PrunedLlavaForConditionalGeneration, PrunedLlavaModel, PrunedLlavaProcessor),
    Family("Qwen2.5-VL", "qwen2_5_vl", "Qwen/Qwen2.5-VL-7B-Instruct", Qwen2_5_VLForConditionalGeneration,
           Qwen2_5_VLProcessor, PrunedQwen2_5_VLForConditionalGeneration, PrunedQwen2_5_VLModel,
           PrunedQwen2_5_VLProcessor, has_cls=False),
)
MODEL_TYPES = {family.model_type: family for family in FAMILIES}


def family_of_type(model_type: str | None, where: str) -> Family:
    """The family of a config.json's model_type, or one clear error naming `where` it came from."""
    if model_type not in MODEL_TYPES:
        known = ", ".join(f"{f.name} ({f.model_type!r}, e.g. {f.example})" for f in FAMILIES)
        raise ValueError(f"{where} holds a {model_type!r} model (config.json model_type); G-Prune prunes {known}")
    return MODEL_TYPES[model_type]


def methods_of(family: Family) -> list[str]:
    """The methods that can prune this family's models."""
    return [name for name, method in METHODS.items() if family.has_cls or method.needs != Needs.VISION_ATTENTION]


def misfits(prune: PruneConfig, config) -> list[str]:
    """Why `prune` cannot act on a model of this config (its method's parameters against the model, the method
    against the family); empty when it can."""
    why = prune.misfits(config)
    against_family = method_misfit(prune.method, config)
    return why + [against_family] if against_family else why


def method_misfit(method: str, config) -> str | None:
    """Why `method` cannot act on any model of this config's family, or None."""
    family = MODEL_TYPES.get(config.model_type)
    if family and not family.has_cls and METHODS[method].needs == Needs.VISION_ATTENTION:
        return (f"{method} ranks tokens by the vision tower's [CLS] attention, and {family.name}'s vision tower has "
                "no [CLS] token; use another method (e.g. gprune, divprune, random)")
    return None


def set_prune(model, processor, prune: PruneConfig) -> None:
    """Make `model` and `processor` prune visual tokens as `prune` says (ratio=0: not at all)."""
    family = next((f for f in FAMILIES if isinstance(model, f.model)), None)
    if family is None:
        names = " or ".join(f.model.__name__ for f in FAMILIES)
        raise TypeError(f"G-Prune needs a {names}, got {type(model).__name__}")
    if not isinstance(processor, family.processor):
        raise TypeError(f"a {family.name} model needs a {family.processor.__name__}, got {type(processor).__name__}")
    why = misfits(prune, model.config)
    if why:
        raise ValueError("; ".join(why))
    model.__class__ = family.pruned_model
    model.model.__class__ = family.pruned_inner
    processor.__class__ = family.pruned_processor
    processor.layout_config = model.config
    model.model.prune = prune
    processor.prune = prune
    set_lm_plan(model.model.language_model, None)  # a language-model method plans at its next prefill
