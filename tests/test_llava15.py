"""LLaVA-1.5 (`LlavaForConditionalGeneration`: one square view, no grid, no newline tokens), a tiny random-weight
model built from a config: every method at 0 / 50 / 90% keeps exactly the budget, ratio 0 reproduces the unpruned
logits, a batch of four with mixed image sizes answers as its samples alone, kept tokens sit at their unpruned
positions, exact FLOPs agree with torch's counter, and a saved folder loads through `load_model` like a LLaVA-NeXT
checkpoint."""

import json

import pytest
import torch
from conftest import random_image
from torch.utils.flop_counter import FlopCounterMode

from gprune import PruneConfig, exact_flops, image_layout, keep_count, load_model, set_prune
from gprune.generation import format_prompt, generate_batch
from gprune.methods import METHODS
from testbed.tiny import build_llava15

LAYERS = 4
SAMPLES = [(random_image(64, 64, 1), "What is in the image?"), (random_image(48, 80, 2), "Which colour?"),
           (random_image(90, 40, 3), "How many shapes are there in this picture?"), (random_image(40, 60, 4), "Is it")]


@pytest.fixture(scope="module")
def llava15():
    model, processor = build_llava15(seed=3, layers=LAYERS, attn_implementation="eager")  # eager: FLOPs counted
    processor.tokenizer.padding_side = "left"
    return model, processor


def prompt_inputs(processor, samples):
    return processor(images=[image for image, _ in samples],
                     text=[format_prompt(processor, text) for _, text in samples], return_tensors="pt", padding=True)


def test_one_view_of_side_squared_tokens_whatever_the_image_size(llava15):
    model, _ = llava15
    layouts = {image_layout(model.config, (image.height, image.width)) for image, _ in SAMPLES}
    assert len(layouts) == 1
    layout = layouts.pop()
    assert (layout.full, layout.rows, layout.kept(0.5), layout.kept(0.9)) == (64, 0, 32, 6)


@pytest.mark.parametrize("method", list(METHODS))
def test_ratio_zero_reproduces_the_unpruned_logits(llava15, method):
    model, processor = llava15
    logits = []
    for prune in (PruneConfig(), PruneConfig(method=method, ratio=0.0)):
        set_prune(model, processor, prune)
        with torch.no_grad():
            logits.append(model(**prompt_inputs(processor, SAMPLES[:2])).logits)
    assert torch.equal(*logits)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_keeps_its_budget_and_a_batch_of_four_answers_as_one(llava15, method):
    model, processor = llava15
    images, texts = [[image] for image, _ in SAMPLES], [text for _, text in SAMPLES]
    for ratio in (0.0, 0.5, 0.9):
        set_prune(model, processor, PruneConfig(method=method, ratio=ratio))
        four = generate_batch(model, processor, images, texts, {"max_new_tokens": 4})
        ones = [generate_batch(model, processor, [image], [text], {"max_new_tokens": 4})
                for image, text in zip(images, texts)]
        assert four.texts == [one.texts[0] for one in ones], (method, ratio)
        assert [s["visual_tokens_kept"] for s in four.stats] == [64 if ratio == 0 else 64 - round(64 * ratio)] * 4
        if METHODS[method].stage.name == "PROJECTOR":  # the prompt itself holds only the kept tokens
            inputs = prompt_inputs(processor, SAMPLES)
            assert (inputs["input_ids"] == model.config.image_token_id).sum(1).tolist() == [
                s["visual_tokens_kept"] for s in four.stats]
    set_prune(model, processor, PruneConfig())


@pytest.mark.parametrize("method", ["gprune", "random", "visionzip"])
def test_kept_tokens_sit_at_their_unpruned_positions(llava15, method):
    model, processor = llava15
    image, text = SAMPLES[1]
    set_prune(model, processor, PruneConfig())
    full = prompt_inputs(processor, [(image, text)])
    set_prune(model, processor, PruneConfig(method=method, ratio=0.7, positions="original"))
    inputs = prompt_inputs(processor, [(image, text)])
    seen = []
    handle = model.model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs.get("position_ids")), with_kwargs=True)
    try:
        with torch.no_grad():
            model.generate(**inputs, max_new_tokens=2, min_new_tokens=2, do_sample=False)
            kept = model.model.get_image_features(inputs["pixel_values"])["kept_indices"][0]
    finally:
        handle.remove()
        set_prune(model, processor, PruneConfig())
    positions = seen[0][0]
    is_image = inputs["input_ids"][0] == model.config.image_token_id
    first_image = int(is_image.nonzero()[0])
    assert positions[is_image].tolist() == (first_image + kept).tolist()
    assert positions[-1] == full["input_ids"].shape[1] - 1  # the text after the image where it was unpruned
    assert seen[1][0].tolist() == [full["input_ids"].shape[1]]


@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("method", ["gprune", "tome", "divprune", "fastv"])
def test_exact_flops_agree_with_flop_counter(llava15, ratio, method):
    model, processor = llava15
    image, text = SAMPLES[0]
    prune = PruneConfig(method=method, ratio=ratio)
    set_prune(model, processor, prune)
    inputs = prompt_inputs(processor, [(image, text)])
    layouts = [image_layout(model.config, (image.height, image.width))]
    prefill, new = inputs["input_ids"].shape[1], 5
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.generate(**inputs, max_new_tokens=new, min_new_tokens=new, do_sample=False)
    predicted = exact_flops(model.config, prefill, new, layouts, prune).total
    set_prune(model, processor, PruneConfig())
    assert abs(predicted / counter.get_total_flops() - 1) < 0.02


def test_a_saved_checkpoint_loads_by_folder_and_prunes(llava15, tmp_path):
    model, processor = llava15
    set_prune(model, processor, PruneConfig())
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded, loaded_processor = load_model(str(tmp_path), prune=PruneConfig(ratio=0.5), device="cpu")
    assert type(loaded).__name__ == "PrunedLlavaForConditionalGeneration"
    image, text = SAMPLES[0]
    out = generate_batch(loaded, loaded_processor, [[image]], [text], {"max_new_tokens": 2})
    assert out.stats[0]["visual_tokens_kept"] == 32


def test_vision_tower_and_projector_flops_agree_with_flop_counter(llava15):
    model, processor = llava15
    set_prune(model, processor, PruneConfig())
    inputs = prompt_inputs(processor, SAMPLES)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.model.get_image_features(inputs["pixel_values"])
    flops = exact_flops(model.config, inputs["input_ids"].shape[1], 1, model.model.input_layouts(inputs))
    assert abs((flops.vision + flops.projector) / counter.get_total_flops() - 1) < 0.02


def test_gprune_eval_runs_a_saved_folder_on_a_benchmark(llava15, fixtures_dir, tmp_path, capsys):
    from cli.main import main

    model, processor = llava15
    set_prune(model, processor, PruneConfig())
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    code = main(["eval", "--model", str(tmp_path / "model"), "--benchmarks", "pope", "--data-dir", str(fixtures_dir),
                 "--limit", "4", "--method", "gprune", "--ratio", "0.75", "--json", str(tmp_path / "out.json")])
    assert code == 0, capsys.readouterr()
    pope = json.loads((tmp_path / "out.json").read_text())["pope"]
    assert pope["errors"] == 0 and len(pope["records"]) == 4
    assert all(r["visual_tokens_kept"] == keep_count(r["visual_tokens_full"], 0.75) for r in pope["records"])
