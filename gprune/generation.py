"""Batched greedy generation on a (pruned) LLaVA-NeXT, shared by the evaluation runner and the
lmms-eval model: prompt formatting, lmms-eval generation kwargs, stop strings, token accounting and
timing. Left padding and original position ids make a batch answer exactly as its samples alone."""

import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from PIL import Image
from transformers import BatchFeature, TorchvisionBackend

from .answers import AnswerRules
from .budget import prunes_at
from .config import PruneConfig
from .decoding import Decoding
from .feature_cache import FeatureCache, processor_settings
from .measures import Measure
from .methods.base import Stage


@dataclass
class BatchOutput:
    texts: list[str]
    stats: list[dict]  # per sample: prefill_tokens, visual_tokens_kept, generated_tokens, image_sizes
    seconds: float  # processor + generate(), wall clock
    processor_seconds: float  # prompts, processor and the inputs on the model's device
    prefill_seconds: float  # generate() start to the end of the first language-model forward
    decode_seconds: float  # the end of that forward to the end of generate()
    decode_steps: int  # forwards after the first: one token each for every row still generating


def format_prompt(processor, text: str, images: int = 1) -> str:
    """The user turn: one image placeholder per image, then the task's text (as lmms-eval's llava_hf)."""
    image_token = processor.image_token
    if image_token in text:
        content = [{"type": "text", "text": text}]
    else:
        content = [{"type": "image"}] * images + [{"type": "text", "text": text}]
    if processor.chat_template:
        return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    return "".join(f"{image_token}\n" if part["type"] == "image" else part["text"] for part in content)


def decoding_that_runs(decoding: Decoding, prune: PruneConfig | None) -> Decoding:
    """The decoding a batch really gets: a method pruning inside the language model keeps KV caches of two
    lengths in its layers, which only a dynamic, uncompiled cache holds."""
    if prune is not None and prunes_at(prune, Stage.LANGUAGE_MODEL):
        return Decoding(cache="dynamic", compile="off")
    return decoding


def generate_kwargs(gen_kwargs: dict, max_new_tokens: int | None = None, answers: AnswerRules | None = None
                    ) -> tuple[dict, list[str]]:
    """transformers generate() kwargs and stop strings from an lmms-eval task's generation_kwargs.
    `max_new_tokens`, when given, caps the task's own value (or the answer rules' default where the
    task sets none). Generation itself runs to EOS, so token counts are what was computed; what the
    stop strings do to the scored text is the answer rules' choice."""
    until = gen_kwargs.get("until") or []
    until = [until] if isinstance(until, str) else [u for u in until if u]
    limit = gen_kwargs.get("max_new_tokens") or (answers or AnswerRules()).default_max_new_tokens
    limit = min(limit, max_new_tokens) if max_new_tokens else limit
    temperature = float(gen_kwargs.get("temperature") or 0)
    sample = bool(gen_kwargs.get("do_sample")) and temperature > 0
    kwargs = {"max_new_tokens": limit, "do_sample": sample, "num_beams": gen_kwargs.get("num_beams") or 1}
    if sample:
        kwargs.update(temperature=temperature, top_p=gen_kwargs.get("top_p") or 1.0)
    return kwargs, until


def image_device(processor, device: torch.device) -> dict:
    """Where the image processor resizes and normalises: a torchvision-backed one (what a llava-hf or Qwen
    checkpoint loads by default) on the model's device, so a GPU does that work instead of the host's
    cores; the PIL one (the tiny checkpoints, trained on it) on the host, as it must."""
    if isinstance(getattr(processor, "image_processor", None), TorchvisionBackend):
        return {"device": device}
    return {}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def prefill_clock(model):
    """Yields a dict that gets 'prefill_end' (perf_counter) when the first LM forward finishes."""
    marks = {}

    def on_forward(module, args, output):
        _synchronize(model.device)
        marks["prefill_end"] = time.perf_counter()
        handle.remove()  # gone before any decode step, so a compiled step never traces it

    handle = model.model.language_model.register_forward_hook(on_forward)
    try:
        yield marks
    finally:
        handle.remove()


def _generated_length(new_ids: list[int], eos_ids: set[int]) -> int:
    """New tokens computed for this sample: up to and including its EOS (a batch pads after it)."""
    for i, token in enumerate(new_ids):
        if token in eos_ids:
            return i + 1
    return len(new_ids)


@dataclass
class PreparedBatch:
    """One batch's processor output and generate() settings, made before the model runs (on another thread
    while the batch before generates, in the evaluation runner)."""
    images: list[list]
    inputs: BatchFeature  # the processor's tensors, on the device `prepare_batch` was given (else the host)
    kwargs: dict  # generate() kwargs from the task's generation_kwargs
    stops: list[str]
    processor_seconds: float
    cache_keys: list[str]  # each image's feature-cache key, made here on the host (gprune.feature_cache)


def prepare_batch(processor, images: list[list], texts: list[str], gen_kwargs: dict,
                  max_new_tokens: int | None = None, answers: AnswerRules | None = None,
                  device: torch.device | None = None) -> PreparedBatch:
    """Prompts and the processor's tensors for one batch: `images[i]` are sample i's PIL images, `texts[i]` its
    task text. With `device`, a torchvision image processor does its image work there (see image_device)."""
    kwargs, stops = generate_kwargs(gen_kwargs, max_new_tokens, answers or AnswerRules())
    start = time.perf_counter()
    prompts = [format_prompt(processor, text, len(imgs)) for text, imgs in zip(texts, images)]
    flat = [image for sample in images for image in sample]
    placement = image_device(processor, device) if device is not None else {}
    inputs = processor(images=flat or None, text=prompts, return_tensors="pt", padding=True, **placement)
    settings = processor_settings(processor) if flat else ""
    keys = [FeatureCache.image_key(image, settings) for image in flat]
    return PreparedBatch(images, inputs, kwargs, stops, time.perf_counter() - start, keys)


@contextmanager
def cache_keys(state, keys: list[str]):
    """The batch's feature-cache keys on the model's pruning state while it generates."""
    if state is None:
        yield
        return
    state.cache_keys = keys
    try:
        yield
    finally:
        state.cache_keys = None


@torch.inference_mode()
def run_batch(model, processor, batch: PreparedBatch, decoding: Decoding | None = None,
              answers: AnswerRules | None = None) -> BatchOutput:
    """Answers for a prepared batch; its seconds are the batch's processor time + this call's."""
    answers, decoding = answers or AnswerRules(), decoding or Decoding()
    start = time.perf_counter()
    images, kwargs = batch.images, dict(batch.kwargs)
    inputs = batch.inputs.to(model.device)
    if "pixel_values" in inputs:
        inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    _synchronize(model.device)
    processor_seconds = batch.processor_seconds + time.perf_counter() - start  # the inputs' move included
    # A batch holding one over-long prompt fails here; the runner then isolates that sample as an error.
    context = model.config.text_config.max_position_embeddings
    if inputs["input_ids"].shape[1] + kwargs["max_new_tokens"] > context:
        raise ValueError(f"prompt of {inputs['input_ids'].shape[1]} tokens + {kwargs['max_new_tokens']} new tokens "
                         f"exceeds the model's context of {context} positions; shorten the question or the cap")
    state = getattr(model.model, "pruning", None)
    prune = state.prune if state is not None else None
    in_lm = prune is not None and prunes_at(prune, Stage.LANGUAGE_MODEL)
    decoding = decoding_that_runs(decoding, prune)
    kwargs.update(decoding.generate_kwargs(model.device, inputs["input_ids"].shape[1], kwargs["max_new_tokens"]))
    with prefill_clock(model) as marks, cache_keys(state, batch.cache_keys):
        generate_start = time.perf_counter()
        output = model.generate(**inputs, **kwargs)
        _synchronize(model.device)
    end = time.perf_counter()
    seconds = batch.processor_seconds + end - start
    new_ids = output[:, inputs["input_ids"].shape[1]:]
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
    stats, layouts = [], model.model.input_layouts(inputs)  # every image's, in prompt order
    # read back from the device in one go: each read waits for it
    placeholders = (inputs["input_ids"] == model.config.image_token_id).sum(1).tolist()
    prompt_tokens, generated = inputs["attention_mask"].sum(1).tolist(), new_ids.tolist()
    for row, sample in enumerate(images):
        sample_layouts, layouts = layouts[:len(sample)], layouts[len(sample):]
        visual = placeholders[row]
        if in_lm:  # the prompt holds every visual token; the language model keeps these past layer K
            visual = sum(layout.kept(prune.ratio) for layout in sample_layouts)
        stats.append({
            "prefill_tokens": prompt_tokens[row],
            Measure.VISUAL_TOKENS_KEPT: visual,
            "generated_tokens": _generated_length(generated[row], eos_ids),
            "image_sizes": [[image.height, image.width] for image in sample],  # as given, before any resizing
            "layouts": sample_layouts,
        })
    decoded = processor.batch_decode(new_ids, skip_special_tokens=True)
    return BatchOutput([answers.finish(t, batch.stops) for t in decoded], stats, seconds, processor_seconds,
                       marks["prefill_end"] - generate_start, end - marks["prefill_end"], new_ids.shape[1] - 1)


def generate_batch(model, processor, images: list[list], texts: list[str], gen_kwargs: dict,
                   max_new_tokens: int | None = None, decoding: Decoding | None = None,
                   answers: AnswerRules | None = None) -> BatchOutput:
    """Answers for one batch: `images[i]` are sample i's PIL images, `texts[i]` its task text (prepared, with
    the image work on the model's device where the processor can, then run)."""
    prepared = prepare_batch(processor, images, texts, gen_kwargs, max_new_tokens, answers, model.device)
    return run_batch(model, processor, prepared, decoding, answers)


def warm_up(model, processor, decoding: Decoding | None = None, max_new_tokens: int = 4) -> float:
    """One short generation on a blank image, so compilation (and allocator warm-up) happens before
    anything is timed. Returns its wall-clock seconds, to be reported on their own."""
    start = time.perf_counter()
    blank = Image.new("RGB", (64, 64), "white")
    generate_batch(model, processor, [[blank]], ["What is in the image?"], {"max_new_tokens": max_new_tokens},
                   decoding=decoding)
    return time.perf_counter() - start
