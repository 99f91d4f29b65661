"""The evaluation runner: batched greedy generation over a benchmark, scored per sample, with
FLOPs per sample in both conventions and throughput that names its device, batch size and what
was timed. A sample that cannot be read or run becomes an error record; the others still count."""

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from PIL import Image

from .benchmarks import get_benchmark
from .config import PruneConfig
from .flops import exact_flops, fastv_flops
from .layout import image_layout
from .model import set_prune

TIMED = "processor + generate() per batch, wall clock; image file decoding and scoring excluded"
PREFILL_TIMED = "generate() start to the end of the first language-model forward (vision tower, projector, selection, LM prefill), per batch"


@dataclass
class SampleRecord:
    id: str
    target: str
    prediction: str | None = None
    score: float | None = None
    visual_tokens_kept: int | None = None
    visual_tokens_full: int | None = None
    prefill_tokens: int | None = None
    generated_tokens: int | None = None
    tflops_exact: float | None = None
    tflops_fastv: float | None = None
    error: str | None = None


@dataclass
class BenchmarkResult:
    benchmark: str
    metrics: dict
    prune: dict
    samples: int
    errors: int
    visual_tokens_kept: float
    visual_tokens_full: float
    tflops_exact: float  # mean per sample, exact FLOPs (2 x multiply-adds), whole model
    tflops_fastv: float  # mean per sample, FastV/paper convention (LM prefill MACs)
    samples_per_s: float
    prefill_latency_ms: float
    throughput: dict  # device, dtype, batch_size, timed
    records: list[SampleRecord] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def build_prompt(processor, question: str) -> str:
    if processor.chat_template:
        message = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}
        return processor.apply_chat_template([message], add_generation_prompt=True)
    return f"{processor.image_token}\n{question}"


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def prefill_clock(model):
    """Yields a dict that gets 'prefill_end' (perf_counter) when the first LM forward finishes."""
    marks = {}

    def on_forward(module, args, output):
        if "prefill_end" not in marks:
            _synchronize(model.device)
            marks["prefill_end"] = time.perf_counter()

    handle = model.model.language_model.register_forward_hook(on_forward)
    try:
        yield marks
    finally:
        handle.remove()


def _generated_length(new_ids: torch.Tensor, eos_ids: set[int]) -> int:
    for i, token in enumerate(new_ids.tolist()):
        if token in eos_ids:
            return i + 1
    return len(new_ids)


def _eos_ids(model) -> set[int]:
    eos = model.generation_config.eos_token_id
    return set(eos if isinstance(eos, list) else [eos]) - {None}


@torch.inference_mode()
def generate_batch(model, processor, images, prompts, max_new_tokens):
    """Greedy answers for one batch; returns (texts, per-sample token stats, seconds, prefill seconds)."""
    start = time.perf_counter()
    inputs = processor(images=images, text=prompts, return_tensors="pt", padding=True).to(model.device)
    inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    with prefill_clock(model) as marks:
        generate_start = time.perf_counter()
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        _synchronize(model.device)
    seconds = time.perf_counter() - start
    prefill_seconds = marks["prefill_end"] - generate_start
    new_ids = output[:, inputs["input_ids"].shape[1] :]
    eos = _eos_ids(model)
    stats = []
    for row in range(len(prompts)):
        stats.append({
            "prefill_tokens": int(inputs["attention_mask"][row].sum()),
            "visual_tokens_kept": int((inputs["input_ids"][row] == model.config.image_token_id).sum()),
            "generated_tokens": _generated_length(new_ids[row], eos),
            "image_size": inputs["image_sizes"][row].tolist(),
        })
    texts = processor.batch_decode(new_ids, skip_special_tokens=True)
    return [t.strip() for t in texts], stats, seconds, prefill_seconds


def _fill_record(record: SampleRecord, text: str, stat: dict, benchmark, model, prune: PruneConfig):
    layout = image_layout(model.config, stat["image_size"])
    record.prediction = text
    record.score = benchmark.score(text, record.target)
    record.visual_tokens_kept = stat["visual_tokens_kept"]
    record.visual_tokens_full = layout.full
    record.prefill_tokens = stat["prefill_tokens"]
    record.generated_tokens = stat["generated_tokens"]
    flops = exact_flops(model.config, stat["prefill_tokens"], stat["generated_tokens"], [layout], prune)
    record.tflops_exact = flops.total / 1e12
    record.tflops_fastv = fastv_flops(model.config, stat["prefill_tokens"]) / 1e12


def _open_image(source) -> Image.Image:
    image = source if isinstance(source, Image.Image) else Image.open(source)
    image.load()
    return image.convert("RGB")


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def evaluate_benchmark(model, processor, benchmark, samples, batch_size=1, max_new_tokens=None) -> BenchmarkResult:
    prune = model.model.prune
    max_new_tokens = max_new_tokens or benchmark.MAX_NEW_TOKENS
    records = [SampleRecord(id=s.id, target=s.target) for s in samples]
    model_seconds, prefill_times, done = 0.0, [], 0

    def run(batch):  # batch: list of (record, image, prompt)
        nonlocal model_seconds, done
        texts, stats, seconds, prefill = generate_batch(
            model, processor, [b[1] for b in batch], [b[2] for b in batch], max_new_tokens
        )
        model_seconds += seconds
        prefill_times.append(prefill)
        done += len(batch)
        for (record, _, _), text, stat in zip(batch, texts, stats):
            _fill_record(record, text, stat, benchmark, model, prune)

    for start in range(0, len(samples), batch_size):
        batch = []
        for record, sample in zip(records[start : start + batch_size], samples[start : start + batch_size]):
            try:
                image = _open_image(sample.image)
            except Exception as error:  # unreadable or corrupt image: count it, keep going
                record.error = f"image: {type(error).__name__}: {error}"
                continue
            batch.append((record, image, build_prompt(processor, f"{sample.question}\n{benchmark.PROMPT_SUFFIX}")))
        if not batch:
            continue
        try:
            run(batch)
        except Exception:
            for item in batch:  # isolate the sample that broke the batch
                try:
                    run([item])
                except Exception as error:
                    item[0].error = f"model: {type(error).__name__}: {error}"

    scored = [r for r in records if r.error is None]
    return BenchmarkResult(
        benchmark=benchmark.NAME,
        metrics={benchmark.METRIC: _mean(r.score for r in scored)},
        prune=prune.to_dict(),
        samples=len(records),
        errors=len(records) - len(scored),
        visual_tokens_kept=_mean(r.visual_tokens_kept for r in scored),
        visual_tokens_full=_mean(r.visual_tokens_full for r in scored),
        tflops_exact=_mean(r.tflops_exact for r in scored),
        tflops_fastv=_mean(r.tflops_fastv for r in scored),
        samples_per_s=done / model_seconds if model_seconds else float("nan"),
        prefill_latency_ms=1000 * _mean(prefill_times),
        throughput={"device": str(model.device), "dtype": str(model.dtype).removeprefix("torch."),
                    "batch_size": batch_size, "timed": TIMED, "prefill_timed": PREFILL_TIMED},
        records=records,
    )


def evaluate(model, processor, benchmarks=("easyvqa",), prune: PruneConfig | None = None, limit=None,
             batch_size=1, max_new_tokens=None) -> dict[str, BenchmarkResult]:
    """Evaluate `model` on each named benchmark; `prune` (if given) is set on the model first."""
    if prune is not None:
        set_prune(model, processor, prune)
    modules = [get_benchmark(name) for name in benchmarks]  # unknown names fail before model work
    return {
        module.NAME: evaluate_benchmark(model, processor, module, module.load_samples(limit), batch_size, max_new_tokens)
        for module in modules
    }
