"""The family interface: everything that differs between model families, so shared code calls these and names no
family. One module of this folder per family builds its `Family` and its pruned classes; `__init__.py` lists them."""

from collections.abc import Callable
from dataclasses import dataclass, field

from ..layout import ImageLayout


@dataclass(frozen=True)
class Family:
    name: str
    model_type: str  # config.json's
    example: str  # a checkpoint of it on the hub
    lmms_name: str  # its model name in lmms-eval's CLI (`--model`), besides the generic "gprune"
    model: type  # transformers' ...ForConditionalGeneration
    processor: type
    pruned_model: type  # the family's pruned classes (gprune.model's mixins before transformers' own)
    pruned_inner: type  # the pruned class of model.model
    pruned_processor: type
    # one image's layout (where its visual tokens sit: views, grid, newlines) from the config and the processor's
    # geometry of it (the name of that processor output: the pruned inner class's IMAGE_INFO)
    layout: Callable[..., ImageLayout]
    # (vision tower, projector) exact FLOPs of a prompt's images, from their layouts (gprune/vision_flops.py)
    vision_flops: Callable[..., tuple[float, float]]
    # FLOPs of VisionZip's [CLS] row for `crops` crops; None: the vision tower has no [CLS] token (VisionZip refused)
    cls_attention_flops: Callable[..., float] | None = None
    relied_on: dict = field(default_factory=dict)  # transformers internals the module relies on (transformers_api)

    @property
    def has_cls(self) -> bool:
        return self.cls_attention_flops is not None
