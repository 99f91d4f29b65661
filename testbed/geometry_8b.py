"""llama3-llava-next-8b's token geometry with random weights, built in seconds (no download): 336 px crops, 14 px
patches, its pinpoints, so one 672x672 image is 2,928 packed visual tokens. FULL is the 8B model's sizes (for a
GPU card), NARROW the same geometry on a 2-layer, 64-wide model (for CPU); with the benches' image and batch.
Used by bench/gpu.py, bench/gpu_grid.py, bench/gpu_profile.py and the GPU test tier."""

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from transformers import LlavaNextConfig, LlavaNextForConditionalGeneration

from gprune import PruneConfig, set_prune
from gprune.answers import AnswerRules
from gprune.decoding import Decoding
from gprune.generation import BatchOutput, PreparedBatch, prepare_batch, run_batch
from gprune.transformers_api import set_attention_implementation
from testbed.tiny import IMAGE_TOKEN, build_processor, build_tokenizer

PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
FULL = {"text": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                     num_key_value_heads=8, vocab_size=128320),
        "vision": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16)}
NARROW = {"text": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=1024),
          "vision": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4)}
RAW = AnswerRules(reasoning_tags="keep")  # answers as generated: stripping tags needs lmms-eval, absent on the card
QUESTION = ("Look at the picture carefully and answer the question about the objects, their colours and their "
            "positions. What is written on the sign in the middle of the image?")  # ~41 tokens with the template


def build(sizes: dict, device: torch.device, dtype: torch.dtype, pruned: bool = True):
    """A random-weight LLaVA-NeXT of the llama3-llava-next-8b token geometry (336 px crops, 14 px patches): the
    project's pruned classes, or with pruned=False transformers' own (the same weights: the seed is fixed)."""
    tokenizer = build_tokenizer()
    # torchvision: the image processor a llava-hf checkpoint loads in transformers 5 (it runs on the model's device)
    processor = build_processor(tokenizer, crop=336, patch=14, pinpoints=PINPOINTS, backend="torchvision")
    config = LlavaNextConfig(
        text_config={"model_type": "llama", "max_position_embeddings": 8192, **sizes["text"],
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={"model_type": "clip_vision_model", "image_size": 336, "patch_size": 14, **sizes["vision"]},
        image_grid_pinpoints=PINPOINTS, vision_feature_layer=-2, vision_feature_select_strategy="default",
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN), tie_word_embeddings=False,
    )
    set_attention_implementation(config, "sdpa")
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # build in the target dtype: 8B in float32 would need 32 GB first
    try:
        with device:
            model = LlavaNextForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = None  # random weights: force every answer to --new-tokens tokens
    processor.tokenizer.padding_side = "left"
    if pruned:
        set_prune(model, processor, PruneConfig())
    return model, processor


def random_image(seed: int = 0) -> Image.Image:
    """The benches' image: 672x672 random pixels, one of llama3-llava-next-8b's pinpoints (2,928 visual tokens)."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (672, 672, 3), dtype=np.uint8))


def prepare_rows(processor, batch: int, new_tokens: int, image=None, device=None) -> PreparedBatch:
    """The inputs of a batch of `batch` rows (the same image and QUESTION), `new_tokens` tokens forced; the image
    work on `device` where the processor can, else on the host (as the evaluation runner's lookahead makes them)."""
    image = image or random_image()
    return prepare_batch(processor, [[image]] * batch, [QUESTION] * batch, {"max_new_tokens": new_tokens},
                         answers=RAW, device=device)


def generate_rows(model, processor, batch: int, new_tokens: int, decoding: Decoding, image=None) -> BatchOutput:
    """One such batch prepared and run, timed as generate_batch times it (processor + generate())."""
    return run_batch(model, processor, prepare_rows(processor, batch, new_tokens, image, model.device), decoding, RAW)


@dataclass
class BenchSetup:
    """What every GPU bench starts from: the model on the card (the 8B sizes) or, with --smoke or no card, the narrow
    one on CPU; the fast path it decodes on; and the words that name them in a printed table."""
    model: LlavaNextForConditionalGeneration
    processor: object
    device: torch.device
    fast: Decoding  # static KV cache, decode step compiled on CUDA
    card: str  # "NVIDIA H200" or "CPU (2 threads)"
    workload: str


def bench_setup(smoke: bool, dtype: torch.dtype = torch.bfloat16) -> BenchSetup:
    cuda = torch.cuda.is_available() and not smoke
    device = torch.device("cuda" if cuda else "cpu")
    model, processor = build(FULL if cuda else NARROW, device, dtype)
    card = torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    workload = "llama3-llava-next-8b geometry" if cuda else "NARROW smoke model, 8b token geometry"
    return BenchSetup(model, processor, device, Decoding(cache="static", compile="auto" if cuda else "off"), card,
                      workload)
