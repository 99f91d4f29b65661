"""Do a checkpoint folder's files fit each other? Checked before any benchmark, so a folder that would fail every
sample with transformers' words (or two chained tracebacks) fails once, naming the file and the key at fault.

Three steps: `read_config` (config.json as transformers reads it, its own validation in one line),
`check_folder` (keys that must fit the rest of the config, and the processor's files: both without loading
weights, so a sweep runs them before Ray), and `check_runs` (one blank image through the loaded processor and
model: whatever the first two cannot foresee)."""

import json
from pathlib import Path

import torch
from PIL import Image
from transformers import AutoConfig

from .generation import format_prompt

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


def read_config(path: Path):
    """config.json as transformers reads it; its validation (e.g. `layer_types` against `num_hidden_layers`) as
    one line naming the file."""
    try:
        return AutoConfig.from_pretrained(path, local_files_only=True)
    except OSError:
        raise
    except Exception as error:  # transformers' strict-dataclass validators raise their own error classes
        reason = str(error).strip().splitlines()[-1].strip()
        raise ValueError(f"{path / 'config.json'}: {reason}; fix that key, or copy the checkpoint again") from None


def config_problems(config) -> list[str]:
    """Keys of config.json that do not fit the rest of it."""
    problems = []
    layer = getattr(config, "vision_feature_layer", None)
    vision_layers = getattr(getattr(config, "vision_config", None), "num_hidden_layers", None)
    if layer is not None and vision_layers is not None:  # hidden states: the embeddings and one per layer
        for index in layer if isinstance(layer, list) else [layer]:
            if not -(vision_layers + 1) <= index <= vision_layers:
                problems.append(f"vision_feature_layer {index} is outside the vision tower's {vision_layers + 1} "
                                f"hidden states ({-(vision_layers + 1)}..{vision_layers})")
    text = config.get_text_config()
    token = getattr(config, "image_token_id", None)
    token = getattr(config, "image_token_index", None) if token is None else token
    vocab = getattr(text, "vocab_size", None)
    if token is not None and vocab is not None and not 0 <= token < vocab:
        problems.append(f"image_token_id {token} is outside the vocabulary (text_config.vocab_size {vocab})")
    rope = getattr(text, "rope_parameters", None) or getattr(text, "rope_scaling", None) or {}
    section = rope.get("mrope_section") if isinstance(rope, dict) else None
    if section is not None:
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        if 2 * sum(section) != head_dim:
            problems.append(f"text_config mrope_section {section} sums to {sum(section)}; the rotary halves of a "
                            f"{head_dim}-wide attention head need {head_dim // 2}")
    return problems


def check_folder(path: Path, family) -> None:
    """config.json's keys, and the processor's files against the family, before any weight loads."""
    problems = [f"config.json: {p}" for p in config_problems(read_config(path))]
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        problems.append(f"no tokenizer (none of {', '.join(TOKENIZER_FILES)})")
    for name in PROCESSOR_FILES:
        file = path / name
        named = json.loads(file.read_text(encoding="utf-8")).get("processor_class") if file.is_file() else None
        if named and named not in (family.processor.__name__, family.pruned_processor.__name__):
            problems.append(f"{name}: processor_class {named} is another family's; a {family.name} checkpoint "
                            f"needs {family.processor.__name__}'s files")
    if problems:
        raise ValueError(f"model folder {path}: {'; '.join(problems)}. Copy the checkpoint folder again "
                         "(config, weights, tokenizer and processor files come together)")


@torch.inference_mode()
def check_runs(model, processor, source: str) -> None:
    """One blank image through the processor and one forward of the model (prefill only: no compiled decode)."""
    try:
        token = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
        expected = getattr(model.config, "image_token_id", None)
        if expected is not None and token != expected:
            raise ValueError(f"the tokenizer's {processor.image_token} is token {token}, config.json's "
                             f"image_token_id is {expected}")
        inputs = processor(images=[Image.new("RGB", (64, 64), "white")], text=[format_prompt(processor, "What?")],
                           return_tensors="pt").to(model.device)
        model(**inputs)
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "no message"
        raise ValueError(f"model {source}: one blank image through its processor and model fails "
                         f"({type(error).__name__}: {reason}); the checkpoint's files do not fit each other: check "
                         "config.json, the processor files and the tokenizer, or copy the checkpoint again") from None
