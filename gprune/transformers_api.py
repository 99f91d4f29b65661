"""The transformers this project is tested against, and what it relies on inside it. The pruned LLaVA-NeXT reaches
into transformers' internals (gprune/model.py swaps classes and overrides private methods; gprune/lm_pruning.py
runs the decoder layers; gprune/layout.py reuses the anyres helpers), so another minor release may compute
something else without an error: outside the tested range a warning says so, and tests/test_transformers_api.py
fails, as it does when a name below is gone or its parameters changed."""

import importlib
import inspect
import warnings

import transformers
from packaging.specifiers import SpecifierSet
from packaging.version import Version

TESTED = SpecifierSet(">=5.24,<5.25")  # keep in step with pyproject.toml's transformers pin

LLAVA_NEXT = "transformers.models.llava_next"
# Internal names the pruned model uses or overrides, with the parameters it passes or receives, in order.
RELIED_ON = {
    "transformers.generation.utils:GenerationMixin._prepare_position_ids_for_generation":  # model.py: original ids
        ("inputs_tensor", "model_kwargs"),
    f"{LLAVA_NEXT}.processing_llava_next:LlavaNextProcessor._get_number_of_features":  # model.py: kept placeholders
        ("orig_height", "orig_width", "height", "width"),
    f"{LLAVA_NEXT}.modeling_llava_next:LlavaNextModel.get_image_features":  # model.py: vision tower + projector
        ("pixel_values", "image_sizes"),
    f"{LLAVA_NEXT}.modeling_llava_next:LlavaNextModel.pack_image_features":  # model.py: packing (VisionZip's guide)
        ("image_features", "image_sizes", "vision_feature_select_strategy", "image_newline"),
    f"{LLAVA_NEXT}.modeling_llava_next:LlavaNextModel.forward":  # model.py: the prefill with encoded images
        ("input_ids", "pixel_values", "image_sizes", "attention_mask", "position_ids"),
    f"{LLAVA_NEXT}.modeling_llava_next:get_anyres_image_grid_shape": ("image_size", "grid_pinpoints", "patch_size"),
    f"{LLAVA_NEXT}.modeling_llava_next:unpad_image": ("tensor", "original_size"),  # layout.py
}


def relied_on_problems() -> list[str]:
    """Each relied-on name that the installed transformers lacks, or whose parameters differ."""
    problems = []
    for path, wanted in RELIED_ON.items():
        module, _, name = path.partition(":")
        try:
            target = importlib.import_module(module)
            for part in name.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as error:
            problems.append(f"{path}: gone ({error})")
            continue
        found = [p for p in inspect.signature(target).parameters if p != "self"][:len(wanted)]
        if tuple(found) != wanted:
            problems.append(f"{path}: parameters {found}, relied on as {list(wanted)}")
    return problems


def tested(version: str = transformers.__version__) -> bool:
    return Version(version) in TESTED


def warn_if_untested() -> None:
    if not tested():
        warnings.warn(f"transformers {transformers.__version__} is outside the range G-Prune is tested with "
                      f"({TESTED}): the pruned model reaches into transformers' internals and may compute something "
                      f"else; install transformers{TESTED}", stacklevel=2)
