"""`gprune train-tiny`: training examples and batches, a short real training run through the CLI,
determinism under a seed, and the shipped trained checkpoint behind `load_model("tiny")`."""

import json
import subprocess
import sys

import pytest
import torch

from gprune import PruneConfig, evaluate, load_model, set_prune
from gprune.generation import format_prompt
from testbed.fixtures import GENERATORS, write_fixtures
from testbed.training.batches import IGNORE, collate, encode
from testbed.training.examples import fixture_test_keys, item_key, task_examples, training_data
from testbed.training.report import question_prior
from testbed.training.settings import TrainSettings
from testbed.training.train import build_model, train_tiny
from testbed.training.vision_pretrain import COLORS, SHAPES, image_labels, pretrain_vision


@pytest.fixture(scope="module")
def small_data():
    return training_data(seed=0, generated_per_benchmark=3)


@pytest.mark.slow  # builds the training data
def test_examples_cover_every_benchmark_and_skip_fixture_items(small_data, tmp_path):
    assert len(small_data.easyvqa) == 38575
    assert {e.source for e in small_data.generated} == set(GENERATORS)
    excluded = fixture_test_keys()
    write_fixtures(tmp_path, n=40, seed=0)  # what `gprune fixtures` and the quickstart evaluate on
    for name in GENERATORS:
        assert {item_key(e.image, e.text) for e in task_examples(name, tmp_path)} <= excluded, name
    assert not {item_key(e.image, e.text) for e in small_data.generated} & excluded
    # prompts are the benchmarks' own (lmms-eval swaps MME's suffix for its post-prompt), as are targets
    mme = next(e for e in small_data.generated if e.source == "mme")
    assert "Please answer yes or no" not in mme.text and mme.answer in ("Yes", "No")
    assert mme.text.endswith("\nAnswer the question using a single word or phrase.")
    assert next(e for e in small_data.generated if e.source == "mmbench").answer in "ABCD"


@pytest.mark.slow  # builds the training data
def test_batch_prompt_matches_inference_and_loss_is_on_the_answer(small_data):
    _, processor = build_model(TrainSettings(hidden=32, vision_hidden=16))
    examples = [small_data.easyvqa[0], small_data.generated[0]]
    encoded = [encode(processor, e) for e in examples]
    for example, item in zip(examples, encoded):
        inference = processor(images=[example.image], text=[format_prompt(processor, example.text)],
                              return_tensors="pt")["input_ids"][0]
        answer = item["labels"] != IGNORE
        assert torch.equal(item["input_ids"][~answer], inference)  # the prompt exactly as generate() sees it
        assert processor.tokenizer.decode(item["input_ids"][answer]) == f" {example.answer}</s>"
    batch = collate(encoded, processor.tokenizer.pad_token_id)
    assert batch["attention_mask"].sum(1).tolist() == [len(e["input_ids"]) for e in encoded]
    assert (batch["labels"] != IGNORE).sum() == sum((e["labels"] != IGNORE).sum() for e in encoded)


def test_vision_labels_come_from_each_images_own_answers(small_data):
    labelled = image_labels(small_data.easyvqa)
    assert len(labelled) == 2435  # of 4,000 train images, those with a shape and a colour question
    image, shape, color = labelled[0]
    answers = {e.answer for e in small_data.easyvqa if e.image is image}
    assert SHAPES[shape] in answers and COLORS[color] in answers
    assert len({s for _, s, _ in labelled}) == 3 and len({c for _, _, c in labelled}) == len(COLORS)


def test_vision_pretraining_trains_the_tower_only(small_data):
    import numpy as np

    model, processor = build_model(TrainSettings(hidden=32, vision_hidden=16))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = pretrain_vision(model, processor, small_data.easyvqa[:400], steps=3, batch_size=4, learning_rate=1e-3,
                             rng=np.random.default_rng(0), log=lambda *_: None)
    assert result["steps"] == 3 and set(result["train_accuracy"]) == {"shape", "color"}
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(".vision_tower." in k for k in changed)
    with pytest.raises(ValueError, match="no easy-VQA image"):
        pretrain_vision(model, processor, small_data.generated, 1, 4, 1e-3, np.random.default_rng(0))


def test_question_prior_takes_each_prompts_most_common_answer(small_data):
    prior = question_prior(small_data.easyvqa)["easyvqa"]
    counts = {}
    for e in small_data.easyvqa:
        if e.text == small_data.easyvqa[0].text:
            counts[e.answer] = counts.get(e.answer, 0) + 1
    assert prior[small_data.easyvqa[0].text] == max(counts, key=counts.get)


@pytest.mark.slow  # three training runs
def test_training_is_deterministic_under_a_seed(small_data, tmp_path):
    settings = TrainSettings(steps=3, batch_size=4, hidden=32, vision_hidden=16, vision_pretrain_steps=2,
                             vision_pretrain_batch_size=4)
    weights = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        settings.seed = seed
        record = train_tiny(tmp_path / name, settings, small_data, log=lambda *_: None)
        assert len(record["losses"]) == 1 and record["data"]["examples_seen"] == 12
        assert record["vision_pretraining"]["steps"] == 2
        model, _ = load_model(str(tmp_path / name), device="cpu", image_backend="pil")
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


@pytest.mark.slow  # a training run in a subprocess
def test_cli_short_run_writes_a_loadable_checkpoint_with_a_card(tmp_path):
    out = tmp_path / "model"
    run = subprocess.run([sys.executable, "-m", "cli.main", "train-tiny", "--out", str(out), "--steps", "2",
                          "--vision-steps", "3", "--batch-size", "4", "--generated-per-benchmark", "2", "--no-report"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "step 2/2" in run.stdout and "vision step 3/3" in run.stdout
    card = (out / "README.md").read_text()
    assert "gprune train-tiny --out" in card and "--steps 2" in card and "--batch-size 4" in card
    assert "--vision-steps 3" in card
    assert json.loads((out / "training.json").read_text())["settings"]["steps"] == 2
    assert set(json.loads((out / "question_prior.json").read_text())) == {"easyvqa", *GENERATORS}
    model, processor = load_model(str(out), device="cpu", image_backend="pil")
    result = evaluate(model, processor, ["easyvqa"], limit=2, batch_size=2, max_new_tokens=3)["easyvqa"]
    assert result.errors == 0


def test_cli_rejects_bad_training_flags(capsys):
    from cli.main import main

    assert main(["train-tiny", "--steps", "0"]) == 2
    assert "argument --steps: 0 must be at least 1" in capsys.readouterr().err


def open_questions(count: int):
    """The first `count` easy-VQA test questions answered by a colour or a shape (no yes/no): the
    question alone gives them away at most 1 time in 3."""
    import easy_vqa
    from PIL import Image

    questions, answers, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    picked = [i for i, a in enumerate(answers) if a not in ("yes", "no")][:count]
    return ([[Image.open(paths[image_ids[i]]).convert("RGB")] for i in picked],
            [questions[i] + "\nAnswer the question using a single word or phrase." for i in picked],
            [answers[i] for i in picked])


def test_tiny_is_the_trained_checkpoint_and_tiny_random_stays(tiny):
    from gprune.generation import generate_batch

    model, processor = tiny
    assert model.config.text_config.hidden_size == TrainSettings().hidden
    assert type(processor.image_processor).__name__ == "LlavaNextImageProcessorPil"  # as in training
    set_prune(model, processor, PruneConfig(ratio=0.0))
    images, texts, answers = open_questions(48)
    predictions = generate_batch(model, processor, images, texts, {"max_new_tokens": 4}).texts
    correct = [p.strip().lower() == a for p, a in zip(predictions, answers)]
    assert sum(correct) >= 0.5 * len(answers)  # it looks at the image: the random model gets ~0, the prior ~1/4
    # it tells shapes apart (stage 1): 21/21 here; the checkpoint trained without stage 1 got 5/21
    on_shapes = [c for c, a in zip(correct, answers) if a in SHAPES]
    assert len(on_shapes) >= 15 and sum(on_shapes) >= 0.8 * len(on_shapes)
    # tiny-random: the same architecture, untrained
    random_model, random_processor = load_model("tiny-random", device="cpu")
    same = ("hidden_size", "num_hidden_layers", "num_key_value_heads", "vocab_size")
    assert all(getattr(random_model.config.text_config, k) == getattr(model.config.text_config, k) for k in same)
    guesses = generate_batch(random_model, random_processor, images, texts, {"max_new_tokens": 4}).texts
    assert sum(p.strip().lower() == a for p, a in zip(guesses, answers)) < 0.1 * len(answers)


def test_missing_checkpoint_names_the_fix(monkeypatch, tmp_path):
    import gprune.loading

    monkeypatch.setattr(gprune.loading, "TINY", tmp_path)
    with pytest.raises(FileNotFoundError, match="gprune train-tiny --out"):
        load_model("tiny", device="cpu")
