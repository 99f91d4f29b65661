"""`train_tiny`: train the small LLaVA-NeXT from scratch on CPU, deterministically under a seed.

All parts start from random weights (vision tower, projector, language model); the tokenizer and
processor are the offline ones of `testbed.tiny`. The loss is on answer tokens only, so the model
learns to answer, not to echo prompts.
"""

import json
import math
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .. import tiny
from .batches import collate, encode
from .examples import TrainingData, training_data
from .settings import TrainSettings
from .vision_pretrain import pretrain_vision


def learning_rate(settings: TrainSettings, step: int) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    if step < settings.warmup_steps:
        return settings.learning_rate * (step + 1) / settings.warmup_steps
    progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
    return settings.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


class Stream:
    """Endless reshuffled passes over a list, from a seeded generator."""

    def __init__(self, items: list, rng: np.random.Generator):
        self.items, self.rng, self.order, self.position = items, rng, [], 0

    def take(self, count: int) -> list:
        taken = []
        while len(taken) < count:
            if self.position == len(self.order):
                self.order, self.position = self.rng.permutation(len(self.items)), 0
            taken.append(self.items[self.order[self.position]])
            self.position += 1
        return taken


def build_model(settings: TrainSettings):
    """The untrained tiny model at the sizes `settings` names."""
    return tiny.build_model(settings.seed, settings.hidden, settings.layers, settings.vision_hidden,
                            settings.vision_layers)


def build_data(settings: TrainSettings, log=print) -> TrainingData:
    started = time.perf_counter()
    log("building training data: easy-VQA train + fixture-style generated examples")
    data = training_data(settings.seed, settings.generated_per_benchmark)
    log(f"  {len(data.easyvqa)} easy-VQA + {len(data.generated)} generated examples "
        f"({data.fixture_items_dropped} fixture test items dropped), {time.perf_counter() - started:.0f} s")
    return data


def train_tiny(out, settings: TrainSettings | None = None, data: TrainingData | None = None, log=print) -> dict:
    """Train, save a from_pretrained-loadable checkpoint (safetensors, tokenizer, processor) to `out`,
    and return the training record (also written to `out/training.json`)."""
    settings = settings or TrainSettings()
    started = time.perf_counter()
    torch.set_num_threads(settings.threads)
    rng = np.random.default_rng(settings.seed)
    data = data or build_data(settings, log)
    streams = (Stream(data.easyvqa, rng), Stream(data.generated, rng))
    open_streams = tuple(Stream([e for e in pool if e.answer.lower() not in ("yes", "no")], rng)
                         for pool in (data.easyvqa, data.generated))
    from_easyvqa = round(settings.batch_size * settings.easyvqa_share)

    model, processor = build_model(settings)
    pad_id = processor.tokenizer.pad_token_id
    train_start = time.perf_counter()
    vision = None
    if settings.vision_pretrain_steps:
        log(f"stage 1: vision tower on easy-VQA image shape and colour, {settings.vision_pretrain_steps} steps")
        vision = pretrain_vision(model, processor, data.easyvqa, settings.vision_pretrain_steps,
                                 settings.vision_pretrain_batch_size, settings.learning_rate, rng, log)
        log("stage 2: the whole model on the questions")
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    model.train()
    losses, window, loop_start = [], [], time.perf_counter()
    for step in range(settings.steps):
        source = open_streams if step < settings.look_first_steps else streams
        examples = source[0].take(from_easyvqa) + source[1].take(settings.batch_size - from_easyvqa)
        batch = collate([encode(processor, e) for e in examples], pad_id)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(settings, step)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        window.append(loss.item())
        if (step + 1) % 25 == 0 or step + 1 == settings.steps:
            losses.append({"step": step + 1, "loss": sum(window) / len(window)})
            elapsed = time.perf_counter() - loop_start
            log(f"  step {step + 1}/{settings.steps}  loss {losses[-1]['loss']:.4f}  "
                f"{elapsed / (step + 1):.2f} s/step  eta {elapsed / (step + 1) * (settings.steps - step - 1):.0f} s")
            window = []

    model.eval()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    record = {
        "settings": asdict(settings),
        "data": {**data.counts(), "examples_seen": settings.steps * settings.batch_size},
        "parameters": sum(p.numel() for p in model.parameters()),
        "vision_pretraining": vision,
        "losses": losses,
        "train_seconds": time.perf_counter() - train_start,
        "total_seconds": time.perf_counter() - started,
        "machine": f"{platform.machine()} CPU, {settings.threads} threads, torch {torch.__version__}",
    }
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    log(f"saved {out} ({record['parameters']:,} parameters) in {record['total_seconds']:.0f} s")
    return record
