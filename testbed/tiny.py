"""A small LLaVA-NeXT built offline from a config: CLIP-style vision tower, anyres grid, Llama LM.

No weights or tokenizer can be downloaded on the project's machines, so `gprune train-tiny` starts
from this model and tests build it at random init. Every part is the real transformers class
(`LlavaNextForConditionalGeneration`, `LlavaNextProcessor`); only the sizes shrink. The geometry
mirrors llava-hf checkpoints: a base view plus a high-resolution grid of crops, unpadded, with
an `image_newline` at each grid row end.
"""

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaNextImageProcessor,
    LlavaNextImageProcessorPil,
    LlavaNextProcessor,
    LlavaOnevisionConfig,
    LlavaOnevisionForConditionalGeneration,
    LlavaOnevisionImageProcessorPil,
    LlavaOnevisionProcessor,
    LlavaOnevisionVideoProcessor,
    LlavaProcessor,
    MistralConfig,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2_5_VLTextConfig,
    Qwen2Config,
    Qwen2VLImageProcessorPil,
    Qwen2VLVideoProcessor,
    SiglipVisionConfig,
)

from gprune.transformers_api import set_attention_implementation

IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>", IMAGE_TOKEN]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>\n{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% if message['role'] != 'user' %}</s>{% endif %}{{ '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

# Crop size 32 px, patch 4 px: 8x8 = 64 base tokens; a 64x64 image gets a 2x2 grid of crops,
# 16x16 grid tokens + 16 row-end newlines, 336 visual tokens in all.
CROP, PATCH = 32, 4
GRID_PINPOINTS = [[32, 64], [64, 32], [64, 64], [32, 96], [96, 32], [64, 96], [96, 64], [96, 96]]


def _training_corpus() -> list[str]:
    """Text the offline tokenizer learns its merges from: benchmark-style prompts and answers."""
    words = (
        "what which how many is are there the a an of in on to and or color shape image picture "
        "question answer using single word phrase yes no not does this that chart bar value "
        "circle rectangle triangle red green blue black gray yellow teal brown left right top bottom "
        "text say read number percent title document page total year option hint choose USER ASSISTANT"
    ).split()
    digits = [str(i) for i in range(1000)]
    return [" ".join(words), " ".join(digits), "Answer the question using a single word or phrase."]


def build_tokenizer(vocab_size: int = 1024, extra_special: dict | None = None) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained deterministically on a built-in corpus (no download). `extra_special`:
    named special tokens beyond LLaVA's `<image>` (Qwen2.5-VL's vision markers)."""
    extra_special = {"image_token": IMAGE_TOKEN, **(extra_special or {})}
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[*SPECIAL_TOKENS, *(t for t in extra_special.values() if t not in SPECIAL_TOKENS)],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_training_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        padding_side="left",
        extra_special_tokens=extra_special,
    )
    tokenizer.add_bos_token = True
    return tokenizer


def build_processor(tokenizer: PreTrainedTokenizerFast | None = None, crop: int = CROP, patch: int = PATCH,
                    pinpoints=GRID_PINPOINTS, backend: str = "pil") -> LlavaNextProcessor:
    """The real LlavaNextProcessor around the offline tokenizer; crop, patch and pinpoints default to
    the tiny model's (bench/gpu.py passes llama3-llava-next-8b's 336 / 14). `backend`: the image processor's,
    "pil" (the tiny checkpoints were trained on it) or "torchvision" (what a llava-hf checkpoint loads)."""
    tokenizer = tokenizer or build_tokenizer()
    image_processor = {"pil": LlavaNextImageProcessorPil, "torchvision": LlavaNextImageProcessor}[backend](
        size={"shortest_edge": crop},
        crop_size={"height": crop, "width": crop},
        image_grid_pinpoints=pinpoints,
    )
    return LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # the CLIP tower's CLS token, dropped by the "default" strategy
        chat_template=CHAT_TEMPLATE,
    )


# The language models of the LLaVA-NeXT checkpoints, as their text configs say, at tiny sizes: llama3-llava-next-8b
# (Llama 3) and llava-v1.6-34b (Yi, Llama-shaped); llava-v1.6-mistral-7b (Mistral 7B v0.2: no sliding window);
# llava-next-72b / 110b (Qwen2: biased q/k/v projections, no sliding window).
BACKBONES = {
    "llama": lambda **sizes: LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": 500000.0}, **sizes),
    "mistral": lambda **sizes: MistralConfig(sliding_window=None, rope_parameters={"rope_type": "default",
                                                                                   "rope_theta": 1e6}, **sizes),
    "qwen2": lambda **sizes: Qwen2Config(use_sliding_window=False, rope_parameters={"rope_type": "default",
                                                                                     "rope_theta": 1e6}, **sizes),
}


def _vision_config(vision_hidden: int, vision_layers: int) -> CLIPVisionConfig:
    return CLIPVisionConfig(image_size=CROP, patch_size=PATCH, hidden_size=vision_hidden,
                            intermediate_size=2 * vision_hidden, num_hidden_layers=vision_layers,
                            num_attention_heads=4, projection_dim=vision_hidden)


def _text_config(tokenizer: PreTrainedTokenizerFast, hidden: int, layers: int, backbone: str):
    return BACKBONES[backbone](
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,  # grouped-query attention, as in every LLaVA-NeXT language model
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )


def build_config(tokenizer: PreTrainedTokenizerFast, hidden: int = 64, layers: int = 2,
                 vision_hidden: int = 32, vision_layers: int = 2, backbone: str = "llama") -> LlavaNextConfig:
    return LlavaNextConfig(
        vision_config=_vision_config(vision_hidden, vision_layers),
        text_config=_text_config(tokenizer, hidden, layers, backbone),
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_grid_pinpoints=GRID_PINPOINTS,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        tie_word_embeddings=False,
    )


def _random_init(model_class, config, tokenizer, seed: int, attn_implementation: str | None):
    """`model_class(config)` at random init, deterministic under `seed`, generating with the tokenizer's pad/eos."""
    if attn_implementation:
        set_attention_implementation(config, attn_implementation)
    torch.manual_seed(seed)
    model = model_class(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.eval()


def build_model(seed: int = 0, hidden: int = 64, layers: int = 2, vision_hidden: int = 32, vision_layers: int = 2,
                backbone: str = "llama", attn_implementation: str | None = None):
    """(model, processor): a plain LlavaNextForConditionalGeneration at random init, deterministic under
    `seed`, its language model one of BACKBONES. The one builder of the tiny model: `train-tiny` starts from it,
    tests and benches use it."""
    processor = build_processor()
    config = build_config(processor.tokenizer, hidden=hidden, layers=layers, vision_hidden=vision_hidden,
                          vision_layers=vision_layers, backbone=backbone)
    return _random_init(LlavaNextForConditionalGeneration, config, processor.tokenizer, seed,
                        attn_implementation), processor


def build_llava15(seed: int = 0, hidden: int = 64, layers: int = 2, backbone: str = "llama",
                  attn_implementation: str | None = None):
    """(model, processor): a plain LlavaForConditionalGeneration (LLaVA-1.5's architecture: one square view,
    no grid, no newline tokens) at random init, the tiny model's sizes: a 32 px view of 8 x 8 = 64 tokens."""
    tokenizer = build_tokenizer()
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": CROP}, crop_size={"height": CROP, "width": CROP}),
        tokenizer=tokenizer, patch_size=PATCH, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)
    config = LlavaConfig(vision_config=_vision_config(32, 2),
                         text_config=_text_config(tokenizer, hidden, layers, backbone),
                         image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
                         vision_feature_select_strategy="default", vision_feature_layer=-1, tie_word_embeddings=False)
    return _random_init(LlavaForConditionalGeneration, config, tokenizer, seed, attn_implementation), processor


# Qwen2.5-VL's prompt: each image between vision markers, expanded by the processor to one <|image_pad|> per
# merged 2x2 patch group
QWEN_SPECIAL = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"}
QWEN_CHAT_TEMPLATE = CHAT_TEMPLATE.replace("<image>\n", "<|vision_start|><|image_pad|><|vision_end|>")


def build_qwen25vl(seed: int = 0, hidden: int = 64, layers: int = 2, attn_implementation: str | None = None):
    """(model, processor): a plain Qwen2_5_VLForConditionalGeneration at random init, the tiny model's sizes: 4 px
    patches merged 2x2 into one token (a 64x64 image: 8 x 8 = 64 tokens), dynamic resolution between 2x2 and 16x16
    merged tokens, window attention with one full-attention block, M-RoPE over (time, height, width)."""
    tokenizer = build_tokenizer(extra_special=QWEN_SPECIAL)
    image_processor = Qwen2VLImageProcessorPil(patch_size=PATCH, merge_size=2, temporal_patch_size=2,
                                               min_pixels=(4 * PATCH) ** 2, max_pixels=(32 * PATCH) ** 2)
    processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                    video_processor=Qwen2VLVideoProcessor(patch_size=PATCH, merge_size=2),
                                    chat_template=QWEN_CHAT_TEMPLATE)
    text = Qwen2_5_VLTextConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                                num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                                max_position_embeddings=2048, bos_token_id=tokenizer.bos_token_id,
                                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                # M-RoPE: head dim 16 = 2 x (time 2 + height 3 + width 3), as 128 = 2 x (16+24+24)
                                rope_parameters={"rope_type": "default", "rope_theta": 1e6,
                                                 "mrope_section": [2, 3, 3]},
                                tie_word_embeddings=False).to_dict()
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 4, "patch_size": PATCH,
                       "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 4 * PATCH,
                       "fullatt_block_indexes": [1], "out_hidden_size": hidden},
        image_token_id=tokenizer.convert_tokens_to_ids(QWEN_SPECIAL["image_token"]),
        video_token_id=tokenizer.convert_tokens_to_ids(QWEN_SPECIAL["video_token"]),
        vision_start_token_id=tokenizer.convert_tokens_to_ids(QWEN_SPECIAL["vision_start_token"]),
        vision_end_token_id=tokenizer.convert_tokens_to_ids(QWEN_SPECIAL["vision_end_token"]),
        tie_word_embeddings=False)
    return _random_init(Qwen2_5_VLForConditionalGeneration, config, tokenizer, seed, attn_implementation), processor


def build_onevision(seed: int = 0, hidden: int = 64, layers: int = 2, attn_implementation: str | None = None):
    """(model, processor): a plain LlavaOnevisionForConditionalGeneration at random init, the tiny model's sizes: a
    SigLIP tower (no [CLS] token) on 32 px crops of 8 x 8 = 64 tokens, a Qwen2 language model, the tiny LLaVA-NeXT's
    grid pinpoints, and "anyres_max_2": a grid of more than two crops' worth of tokens is scaled down (a 64x64
    image's 16 x 16 grid to 11 x 11), so both of transformers' packing paths run."""
    tokenizer = build_tokenizer(extra_special={"video_token": "<video>"})
    image_processor = LlavaOnevisionImageProcessorPil(size={"height": CROP, "width": CROP},
                                                      image_grid_pinpoints=GRID_PINPOINTS)
    processor = LlavaOnevisionProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                        video_processor=LlavaOnevisionVideoProcessor(size={"height": CROP,
                                                                                           "width": CROP}),
                                        num_image_tokens=(CROP // PATCH) ** 2, vision_feature_select_strategy="full",
                                        vision_aspect_ratio="anyres_max_2", chat_template=CHAT_TEMPLATE)
    vision = SiglipVisionConfig(image_size=CROP, patch_size=PATCH, hidden_size=32, intermediate_size=64,
                                num_hidden_layers=2, num_attention_heads=4, vision_use_head=False)
    config = LlavaOnevisionConfig(vision_config=vision.to_dict(),
                                  text_config=_text_config(tokenizer, hidden, layers, "qwen2").to_dict(),
                                  image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
                                  video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
                                  image_grid_pinpoints=GRID_PINPOINTS, vision_feature_select_strategy="full",
                                  vision_feature_layer=-1, vision_aspect_ratio="anyres_max_2",
                                  tie_word_embeddings=False)
    return _random_init(LlavaOnevisionForConditionalGeneration, config, tokenizer, seed,
                        attn_implementation), processor
