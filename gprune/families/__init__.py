"""The model families G-Prune prunes: one module each in this folder (its layouts, FLOPs of the vision side, pruned
classes: `family.Family`), listed here once. `set_prune` swaps a loaded model's classes for its family's pruned ones
(the weights are untouched, only the class changes)."""

import importlib

from ..config import PruneConfig
from ..layout import ImageLayout
from ..lm_pruning import set_lm_plan
from ..methods import METHODS
from ..methods.base import Needs
from ..pruning_state import PruningState
from .family import Family

MODULES = ("llava_next", "llava15", "qwen25vl", "onevision")  # a new family: its module, and its name here
FAMILIES: tuple[Family, ...] = tuple(importlib.import_module(f".{name}", __name__).FAMILY for name in MODULES)
MODEL_TYPES = {family.model_type: family for family in FAMILIES}


def family_of_type(model_type: str | None, where: str) -> Family:
    """The family of a config.json's model_type, or one clear error naming `where` it came from."""
    if model_type not in MODEL_TYPES:
        known = ", ".join(f"{f.name} ({f.model_type!r}, e.g. {f.example})" for f in FAMILIES)
        raise ValueError(f"{where} holds a {model_type!r} model (config.json model_type); G-Prune prunes {known}")
    return MODEL_TYPES[model_type]


def family_of_config(config) -> Family:
    return family_of_type(config.model_type, "the model's config")


def image_layout(config, image_info) -> ImageLayout:
    """Where one image's visual tokens sit under `config`, from the processor's geometry of it (its original
    (height, width) for the LLaVA families; Qwen2.5-VL's (time, height, width) patch grid)."""
    return family_of_config(config).layout(config, image_info)


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
    state = getattr(model.model, "pruning", None) or PruningState()
    state.prune, state.layout_config = prune, model.config
    model.model.pruning = processor.pruning = state  # one object: the processor counts what the model keeps
    set_lm_plan(model.model.language_model, None)  # a language-model method plans at its next prefill
