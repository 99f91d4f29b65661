"""The transformers this project is tested against, and what it relies on inside it. The pruned LLaVA-NeXT reaches
into transformers' internals (gprune/model.py swaps classes and overrides private methods; gprune/lm_pruning.py
hooks the decoder layers and calls each backbone's rotary and eager attention; gprune/layout.py reuses the anyres
helpers), so another minor release may compute
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
    # llava15.py: LLaVA-1.5's placeholders per image, its vision tower + projector, its prefill
    "transformers.models.llava.processing_llava:LlavaProcessor.replace_image_token": ("image_inputs", "image_idx"),
    "transformers.models.llava.modeling_llava:LlavaModel.get_image_features":
        ("pixel_values", "vision_feature_layer", "vision_feature_select_strategy", "image_sizes"),
    "transformers.models.llava.modeling_llava:LlavaModel.forward":
        ("input_ids", "pixel_values", "attention_mask", "position_ids"),
    # qwen25vl.py: Qwen2.5-VL's placeholders, vision tower + merger, its M-RoPE positions and their generate() setup
    "transformers.models.qwen2_5_vl.processing_qwen2_5_vl:Qwen2_5_VLProcessor.replace_image_token":
        ("image_inputs", "image_idx"),
    "transformers.models.qwen2_5_vl.modeling_qwen2_5_vl:Qwen2_5_VLModel.get_image_features":
        ("pixel_values", "image_grid_thw"),
    "transformers.models.qwen2_5_vl.modeling_qwen2_5_vl:Qwen2_5_VLModel.get_rope_index":
        ("input_ids", "mm_token_type_ids", "image_grid_thw", "video_grid_thw", "second_per_grid_ts",
         "attention_mask"),
    "transformers.models.qwen2_5_vl.modeling_qwen2_5_vl:Qwen2_5_VLModel.forward":
        ("input_ids", "attention_mask", "position_ids"),
    f"{LLAVA_NEXT}.modeling_llava_next:get_anyres_image_grid_shape": ("image_size", "grid_pinpoints", "patch_size"),
    f"{LLAVA_NEXT}.modeling_llava_next:unpad_image": ("tensor", "original_size"),  # layout.py
    # lm_pruning.py: the masks for the reduced sequence (it passes layer_idx by name)
    "transformers.masking_utils:create_causal_mask": ("config", "inputs_embeds", "attention_mask", "cache",
                                                      "position_ids"),
    "transformers.masking_utils:create_sliding_window_causal_mask": ("config", "inputs_embeds", "attention_mask",
                                                                     "cache", "position_ids"),
}
# lm_pruning.py, for each language model a LLaVA-NeXT checkpoint ships with: the keyword arguments its hooks
# replace on the decoder layers and read on the attention modules, and the functions it scores with
for _backbone, _name in (("llama", "Llama"), ("mistral", "Mistral"), ("qwen2", "Qwen2")):
    _module = f"transformers.models.{_backbone}.modeling_{_backbone}"
    RELIED_ON |= {
        f"{_module}:{_name}DecoderLayer.forward": ("hidden_states", "attention_mask", "position_ids", "cache",
                                                   "use_cache", "position_embeddings"),
        f"{_module}:{_name}Attention.forward": ("hidden_states", "position_embeddings", "attention_mask"),
        f"{_module}:apply_rotary_pos_emb": ("q", "k", "cos", "sin"),
        f"{_module}:eager_attention_forward": ("module", "query", "key", "value", "attention_mask", "scaling"),
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
