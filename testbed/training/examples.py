"""Training examples for the tiny model: easy-VQA's train split plus fixture-style generated data.

Every example is phrased exactly as its benchmark asks at evaluation time: the prompt comes from
the benchmark's own lmms-eval task (`doc_to_text`), the answer from its `doc_to_target`. The
generated part is written by the fixture generators themselves under seeds the fixtures never use
(`[seed, position, TRAIN_STREAM]` against the fixtures' `[seed, position]`), read back through
the same tasks, and checked item by item against the fixtures' test items, which are dropped.
"""

import hashlib
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gprune.benchmarks import load_task

from ..fixtures import GENERATORS, write_fixtures

TRAIN_STREAM = 1  # a third seed word: training draws never coincide with the fixtures' draws
EXCLUDED_FIXTURES = {"seed": 0, "n": 200}  # `gprune fixtures` defaults (n=40) are a prefix of these


@dataclass
class Example:
    image: object  # PIL image
    text: str  # the task's prompt text, before the chat template
    answer: str
    source: str  # benchmark name


def training_target(target) -> str:
    """One answer to train on: lists of annotator answers (TextVQA, DocVQA) give their most common."""
    if isinstance(target, (list, tuple)):
        return Counter(map(str, target)).most_common(1)[0][0]
    return str(target)


def item_key(image, text: str) -> str:
    """Identity of a benchmark item: its pixels, size and prompt."""
    digest = hashlib.sha1(image.convert("RGB").tobytes())
    digest.update(f"{image.size}|{text}".encode())
    return digest.hexdigest()


def task_examples(name: str, data_dir) -> list[Example]:
    task = load_task(name, str(data_dir))
    examples = []
    for doc in task.test_docs():
        image = task.doc_to_visual(doc)[0].convert("RGB")
        examples.append(Example(image, task.doc_to_text(doc), training_target(task.doc_to_target(doc)), name))
    return examples


def fixture_test_keys() -> set[str]:
    """Keys of the fixture items evaluation uses (seed 0, n up to 200), to keep them out of training."""
    with tempfile.TemporaryDirectory() as scratch:
        write_fixtures(scratch, **EXCLUDED_FIXTURES)
        return {item_key(e.image, e.text) for name in GENERATORS for e in task_examples(name, scratch)}


def generated_examples(seed: int, per_benchmark: int) -> tuple[list[Example], int]:
    """(examples, number dropped as fixture test items) from all eight fixture generators."""
    excluded = fixture_test_keys()
    examples, dropped = [], 0
    with tempfile.TemporaryDirectory() as scratch:
        for position, (name, write) in enumerate(GENERATORS.items()):
            write(Path(scratch) / name, per_benchmark, np.random.default_rng([seed, position, TRAIN_STREAM]))
            for example in task_examples(name, scratch):
                if item_key(example.image, example.text) in excluded:
                    dropped += 1
                else:
                    examples.append(example)
    return examples, dropped


def easyvqa_examples() -> list[Example]:
    """easy-VQA's train split (38,575 questions on 4,000 images), prompted as the easyvqa task does."""
    import easy_vqa
    from PIL import Image

    task = load_task("easyvqa")
    questions, answers, image_ids = easy_vqa.get_train_questions()
    paths = easy_vqa.get_train_image_paths()
    images = {i: Image.open(paths[i]).convert("RGB") for i in sorted(set(image_ids))}
    return [Example(images[i], task.doc_to_text({"question": q}), a, "easyvqa")
            for q, a, i in zip(questions, answers, image_ids)]


@dataclass
class TrainingData:
    easyvqa: list[Example]
    generated: list[Example]
    fixture_items_dropped: int

    def counts(self) -> dict:
        return {"easyvqa_train": len(self.easyvqa), "generated": len(self.generated),
                "fixture_items_dropped": self.fixture_items_dropped}


def training_data(seed: int, generated_per_benchmark: int) -> TrainingData:
    return TrainingData(easyvqa_examples(), *generated_examples(seed, generated_per_benchmark))
