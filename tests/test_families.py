"""What every model family must do, one parametrized set for all of them, on tiny random-weight models built from
configs (LLaVA-NeXT: base view + grid with newlines; LLaVA-1.5: one square view; Qwen2.5-VL: one merged grid per image
at its own size; LLaVA-OneVision: SigLIP, anyres-max grid scaled down): every usable method at 0 / 50 / 90% keeps
exactly the budget of each image, ratio 0 reproduces the unpruned logits, a batch of four with mixed image sizes
answers as its samples alone, exact FLOPs (the whole sample, and the vision tower with its projector or merger)
agree with torch's counter, a method the family cannot run is one clear error, and a saved folder loads and runs
through `load_model` and `gprune eval`. Shared code names no family (read from the source). Each family's own
geometry and positions: tests/test_model.py, tests/test_llava15.py, tests/test_qwen25vl.py."""

import ast
import json
import re
from pathlib import Path

import pytest
import torch
from conftest import random_image
from torch.utils.flop_counter import FlopCounterMode

from gprune import PruneConfig, exact_flops, load_model, set_prune
from gprune.families import FAMILIES as REGISTERED
from gprune.families import MODEL_TYPES, methods_of
from gprune.generation import format_prompt, generate_batch
from gprune.methods import METHODS
from testbed import tiny

LAYERS = 4
SAMPLES = [(random_image(64, 64, 1), "What is in the image?"), (random_image(48, 80, 2), "Which colour?"),
           (random_image(90, 40, 3), "How many shapes are there in this picture?"), (random_image(40, 60, 4), "Is it")]
BUILDERS = {"llava_next": tiny.build_model, "llava": tiny.build_llava15, "qwen2_5_vl": tiny.build_qwen25vl,
            "llava_onevision": tiny.build_onevision}  # each family's tiny model, by config.json's model_type
FAMILIES = list(BUILDERS)


def test_every_registered_family_is_tested_here():
    assert sorted(BUILDERS) == sorted(family.model_type for family in REGISTERED)


def build(family: str):
    """(model, processor) with eager attention (whose FLOPs the counter sees), pruning classes set."""
    model, processor = BUILDERS[family](seed=3, layers=LAYERS, attn_implementation="eager")
    processor.tokenizer.padding_side = "left"
    set_prune(model, processor, PruneConfig())
    return model, processor


@pytest.fixture(scope="module", params=FAMILIES)
def built(request):
    return build(request.param)


def prompt_inputs(processor, samples):
    return processor(images=[image for image, _ in samples],
                     text=[format_prompt(processor, text) for _, text in samples], return_tensors="pt", padding=True)


def usable(model) -> list[str]:
    return methods_of(MODEL_TYPES[model.config.model_type])


@pytest.mark.parametrize("method", list(METHODS))
def test_ratio_zero_reproduces_the_unpruned_logits(built, method):
    model, processor = built
    if method not in usable(model):
        pytest.skip(f"{method} cannot run on {model.config.model_type} (refused: see below)")
    logits = []
    for prune in (PruneConfig(), PruneConfig(method=method, ratio=0.0)):
        set_prune(model, processor, prune)
        with torch.no_grad():
            logits.append(model(**prompt_inputs(processor, SAMPLES[:2])).logits)
    assert torch.equal(*logits)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_keeps_its_budget_and_a_batch_of_four_answers_as_one(built, method):
    model, processor = built
    if method not in usable(model):
        pytest.skip(f"{method} cannot run on {model.config.model_type} (refused: see below)")
    set_prune(model, processor, PruneConfig())
    layouts = model.model.input_layouts(prompt_inputs(processor, SAMPLES))
    images, texts = [[image] for image, _ in SAMPLES], [text for _, text in SAMPLES]
    for ratio in (0.0, 0.5, 0.9):
        set_prune(model, processor, PruneConfig(method=method, ratio=ratio))
        four = generate_batch(model, processor, images, texts, {"max_new_tokens": 4})
        ones = [generate_batch(model, processor, [image], [text], {"max_new_tokens": 4})
                for image, text in zip(images, texts)]
        assert four.texts == [one.texts[0] for one in ones], (method, ratio)
        assert [s["visual_tokens_kept"] for s in four.stats] == [lay.kept(ratio) for lay in layouts], (method, ratio)
        if METHODS[method].stage.name == "PROJECTOR":  # the prompt itself holds only the kept tokens
            placeholders = (prompt_inputs(processor, SAMPLES)["input_ids"] == model.config.image_token_id).sum(1)
            assert placeholders.tolist() == [s["visual_tokens_kept"] for s in four.stats]
    set_prune(model, processor, PruneConfig())


def test_a_method_the_family_cannot_run_is_one_clear_error(built):
    model, processor = built
    for method in sorted(set(METHODS) - set(usable(model))):  # VisionZip on Qwen2.5-VL: no [CLS] token
        with pytest.raises(ValueError, match=rf"{method} ranks tokens by the vision tower's \[CLS\] attention"):
            set_prune(model, processor, PruneConfig(method=method, ratio=0.5))


@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("method", ["gprune", "tome", "divprune", "fastv"])
def test_exact_flops_agree_with_flop_counter(built, ratio, method):
    model, processor = built
    prune = PruneConfig(method=method, ratio=ratio)
    set_prune(model, processor, prune)
    inputs = prompt_inputs(processor, SAMPLES[1:2])
    layouts = model.model.input_layouts(inputs)
    prefill, new = inputs["input_ids"].shape[1], 5
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.generate(**inputs, max_new_tokens=new, min_new_tokens=new, do_sample=False)
    predicted = exact_flops(model.config, prefill, new, layouts, prune).total
    set_prune(model, processor, PruneConfig())
    assert abs(predicted / counter.get_total_flops() - 1) < 0.02


def test_vision_tower_and_projector_flops_agree_with_flop_counter(built):
    model, processor = built
    set_prune(model, processor, PruneConfig())
    inputs = prompt_inputs(processor, SAMPLES)  # four sizes (Qwen2.5-VL: windows of several shapes)
    geometry = {key: inputs[key] for key in (model.model.IMAGE_INFO,) if key in inputs}  # sizes, or Qwen's grid
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.model.get_image_features(inputs["pixel_values"], **geometry)
    flops = exact_flops(model.config, inputs["input_ids"].shape[1], 1, model.model.input_layouts(inputs))
    assert abs((flops.vision + flops.projector) / counter.get_total_flops() - 1) < 0.02


@pytest.fixture(scope="module", params=FAMILIES)
def saved(request, tmp_path_factory):
    """A family's tiny model saved as a user's checkpoint folder (save_pretrained)."""
    model, processor = build(request.param)
    folder = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder, type(model).__name__


def test_a_saved_checkpoint_loads_by_folder_and_prunes(saved):
    folder, pruned_class = saved
    loaded, loaded_processor = load_model(str(folder), prune=PruneConfig(ratio=0.5), device="cpu")
    assert type(loaded).__name__ == pruned_class
    image, text = SAMPLES[0]
    out = generate_batch(loaded, loaded_processor, [[image]], [text], {"max_new_tokens": 2})
    layout = loaded.model.input_layouts(prompt_inputs(loaded_processor, SAMPLES[:1]))[0]
    assert out.stats[0]["visual_tokens_kept"] == layout.kept(0.5) < layout.full


def test_gprune_eval_runs_a_saved_folder_on_a_benchmark(saved, fixtures_dir, tmp_path, capsys):
    from cli.main import main

    folder, _ = saved
    code = main(["eval", "--model", str(folder), "--benchmarks", "pope", "--data-dir", str(fixtures_dir),
                 "--limit", "4", "--method", "gprune", "--ratio", "0.75", "--json", str(tmp_path / "out.json")])
    assert code == 0, capsys.readouterr()
    pope = json.loads((tmp_path / "out.json").read_text())["pope"]
    assert pope["errors"] == 0 and len(pope["records"]) == 4
    assert all(0 < r["visual_tokens_kept"] < r["visual_tokens_full"] for r in pope["records"])  # budget: above


@pytest.mark.parametrize("positions", ["original", "compact"])
def test_a_static_kv_cache_answers_as_the_dynamic_one(built, positions):
    """The path a GPU takes by default (static cache, there compiled): the same greedy answers, padding included."""
    from gprune.decoding import Decoding

    model, processor = built
    images, texts = [[image] for image, _ in SAMPLES], [text for _, text in SAMPLES]
    for ratio in (0.0, 0.5, 0.9):
        set_prune(model, processor, PruneConfig(ratio=ratio, positions=positions))
        answers = [generate_batch(model, processor, images, texts, {"max_new_tokens": 5},
                                  decoding=Decoding(cache=kind, compile="off")) for kind in ("dynamic", "static")]
        assert answers[0].texts == answers[1].texts, ratio
    set_prune(model, processor, PruneConfig())


FAMILY_NAMES = re.compile(r"llava|qwen|onevision|siglip|clip", re.IGNORECASE)
SHARED = sorted(path for package in ("gprune", "sweep", "workers", "dashboards", "cli")
                for path in (Path(__file__).resolve().parents[1] / package).rglob("*.py")
                if "families" not in path.parts and path.name != "transformers_api.py")


def names_in_code(path: Path) -> list[str]:
    """The identifiers and string constants of a module (its comments and docstrings are free to name anything)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.append(node.id)
        elif isinstance(node, ast.Attribute):
            found.append(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found.append(node.name)
        elif isinstance(node, ast.alias):
            found.append(node.name)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found.append(node.value)
    return found


@pytest.mark.parametrize("path", SHARED, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_shared_code_names_no_family(path):
    """Only gprune/families/ (and the transformers adapter) may name a family: the rest calls the Family interface."""
    assert [name for name in names_in_code(path) if FAMILY_NAMES.search(name)] == []
