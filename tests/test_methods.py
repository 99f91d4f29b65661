"""Every reduction method, through the one interface: exact budgets, determinism, ratio 0 untouched,
each method's own property, and each declared parameter reaching PruneConfig, the CLI, sweep files
and MLflow params."""

from dataclasses import fields

import pytest
import torch

from cli.main import build_parser
from gprune import PruneConfig, evaluate, image_layout, set_prune
from gprune.flops import exact_flops
from gprune.methods import METHODS, declared_params
from gprune.selection import reduce_tokens
from sweep.spec import SWEEPABLE, parse_spec


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("n,shape", [(16, (4, 4)), (37, None), (576, (24, 24)), (60, (5, 12))])
def test_each_method_returns_exactly_the_budget_deterministically(method, n, shape):
    features = torch.randn(n, 32, generator=torch.Generator().manual_seed(n))
    for ratio in (0.5, 0.7, 0.9, 0.99):
        keep = max(1, round(n * (1 - ratio)))
        guide = torch.rand(n, generator=torch.Generator().manual_seed(1)) if METHODS[method].needs else None
        indices, tokens = reduce_tokens(features, keep, method, shape, guide)
        assert indices.shape == (keep,) and tokens.shape == (keep, 32), (method, n, ratio)
        assert indices.dtype == torch.long and torch.all(indices[1:] > indices[:-1])  # ascending, unique
        assert 0 <= int(indices[0]) and int(indices[-1]) < n
        again = reduce_tokens(features, keep, method, shape, guide)
        assert torch.equal(again[0], indices) and torch.equal(again[1], tokens)


@pytest.mark.parametrize("method", list(METHODS))
def test_at_ratio_zero_every_method_reproduces_the_unpruned_logits(tiny, method):
    from PIL import Image

    model, processor = tiny
    image = Image.new("RGB", (48, 40), "teal")
    logits = {}
    for config in (PruneConfig(), PruneConfig(method=method, ratio=0.0)):
        set_prune(model, processor, config)
        inputs = processor(images=[image], text=["<image>\nWhat colour?"], return_tensors="pt")
        with torch.no_grad():
            logits[config.method] = model(**inputs).logits
    assert torch.equal(logits["gprune"], logits[method])


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_runs_in_the_model_with_the_same_budget(tiny, method):
    model, processor = tiny
    result = evaluate(model, processor, ["easyvqa"], PruneConfig(method=method, ratio=0.7), limit=2,
                      max_new_tokens=3)["easyvqa"]
    layout = image_layout(model.config, (64, 64))
    assert result.errors == 0 and result.visual_tokens_kept == layout.kept(0.7)


def test_tome_merges_exact_duplicates_before_anything_else():
    groups = torch.randn(4, 16, generator=torch.Generator().manual_seed(0))
    order = torch.randperm(32, generator=torch.Generator().manual_seed(1))
    features = groups[order % 4]  # 4 groups of 8 exact duplicates, shuffled
    _, tokens = reduce_tokens(features, 8, "tome")
    for token in tokens:  # every merged token is still one group's vector: no two groups were mixed
        assert min(torch.dist(token, g) for g in groups) < 1e-5
    assert {int(torch.cdist(t[None], groups).argmin()) for t in tokens} == {0, 1, 2, 3}


def test_tome_merges_by_size_weighted_average():
    features = torch.tensor([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.01, 1.0]])
    indices, tokens = reduce_tokens(features, 2, "tome")
    assert torch.allclose(tokens, torch.tensor([[1.0, 0.005], [0.005, 1.0]]))
    assert int(indices[0]) in (0, 1) and int(indices[1]) in (2, 3)  # a merged token sits where one of its parts was
    features = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    _, (one,) = reduce_tokens(features, 1, "tome")  # however the merges went, sizes weight them to the mean
    assert torch.allclose(one, features.mean(0), atol=1e-6)


def test_divprune_takes_one_token_per_cluster_before_a_second_from_any():
    generator = torch.Generator().manual_seed(0)
    centres = torch.eye(6, 32) * 10
    features = torch.cat([c + 0.01 * torch.randn(20, 32, generator=generator) for c in centres])
    chosen, _ = reduce_tokens(features, 6, "divprune")
    assert sorted(int(i) // 20 for i in chosen) == [0, 1, 2, 3, 4, 5]


def test_pool_averages_spatial_windows():
    grid = torch.arange(16.0).reshape(16, 1)  # a 4 x 4 grid, value = raster index
    indices, tokens = reduce_tokens(grid, 4, "pool", (4, 4))
    assert indices.tolist() == [0, 2, 8, 10]  # 2 x 2 windows, each at its first position
    assert tokens.flatten().tolist() == [2.5, 4.5, 10.5, 12.5]


def test_every_declared_parameter_reaches_config_cli_sweep_and_mlflow_params():
    options = {a.dest for a in build_parser()._subparsers._group_actions[0].choices["eval"]._actions}
    config_fields = {f.name for f in fields(PruneConfig)}
    logged = set(PruneConfig().to_dict())  # a trial's MLflow params are its PruneConfig's dict
    for method in METHODS.values():
        for param in method.params:
            assert param.name in config_fields and param.name in options and param.name in logged, param.name
            assert getattr(PruneConfig(), param.name) == param.default
            if param.name != "seed":  # fixed per sweep (the sweep file's seed)
                assert param.name in SWEEPABLE
                parse_spec({"name": "x", "search_space": {"method": method.name, param.name: [param.default]}},
                           check_files=False)
    assert set(declared_params()) <= config_fields


def test_method_flops_are_the_declared_ones(tiny):
    model, _ = tiny
    layout = image_layout(model.config, (64, 64))
    flops = {name: exact_flops(model.config, 100, 1, [layout], PruneConfig(method=name, ratio=0.7)).selection
             for name in METHODS}
    assert flops["l2norm"] == flops["random"] == flops["pool"] == 0
    assert flops["gprune"] == flops["graph"] > flops["divprune"] > 0 and flops["tome"] > 0
    assert exact_flops(model.config, 100, 1, [layout], PruneConfig(method="tome")).selection == 0  # ratio 0


def test_fastv_prunes_the_kv_cache_of_layers_from_k_for_prefill_and_every_decode_step(tiny):
    from PIL import Image

    from gprune.generation import format_prompt

    model, processor = tiny
    set_prune(model, processor, PruneConfig(method="fastv", ratio=0.7, lm_layer=2))
    image = Image.new("RGB", (64, 48), "red")
    inputs = processor(images=[image], text=[format_prompt(processor, "What colour is it?")], return_tensors="pt")
    prompt = inputs["input_ids"].shape[1]
    layout = image_layout(model.config, (48, 64))
    dropped = layout.full - layout.kept(0.7)
    assert dropped > 0 and int((inputs["input_ids"] == model.config.image_token_id).sum()) == layout.full
    new = 4
    out = model.generate(**inputs, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                         return_dict_in_generate=True)
    cache = out["cache"] if "cache" in out else out["past_key_values"]
    lengths = [cache.get_seq_length(i) for i in range(model.config.text_config.num_hidden_layers)]
    # layers 0-1 hold the whole prompt, layers 2-3 the survivors; both hold the 3 tokens fed back since
    assert lengths == [prompt + new - 1] * 2 + [prompt - dropped + new - 1] * 2
    set_prune(model, processor, PruneConfig())  # and off again: no hook is left on the language model
    language_model = model.model.language_model
    assert not any(module._forward_pre_hooks for module in language_model.modules())


def test_fastv_batch_of_four_gives_the_answers_of_batch_one(tiny, fixtures_dir):
    model, processor = tiny
    for name in ("docvqa", "chartqa", "gqa"):  # images of several sizes: samples drop different counts
        one, four = (evaluate(model, processor, [name], prune=PruneConfig(method="fastv", ratio=0.7), limit=6,
                              batch_size=b, data_dir=fixtures_dir, max_new_tokens=6)[name] for b in (1, 4))
        assert [r.prediction for r in four.records] == [r.prediction for r in one.records], name
        assert [r.visual_tokens_kept for r in four.records] == [r.visual_tokens_kept for r in one.records]
        assert four.errors == 0


@pytest.mark.parametrize("past", [0, 96])
def test_fastv_at_or_past_the_language_model_s_depth_is_refused_before_any_token_is_run(tiny, past):
    """lm_layer from the last layer on would prune nothing while reporting tokens as kept: refused, naming
    the depth, by set_prune (so `gprune eval`, sweeps and the lmms-eval model all refuse it)."""
    model, processor = tiny
    layers = model.config.text_config.num_hidden_layers
    before = model.model.pruning.prune
    with pytest.raises(ValueError, match=f"lm_layer={layers + past} must be below the language model's depth "
                                         f"\\({layers} layers\\)"):
        set_prune(model, processor, PruneConfig(method="fastv", ratio=0.9, lm_layer=layers + past))
    assert model.model.pruning.prune == before  # nothing was changed
    assert PruneConfig(method="fastv", lm_layer=layers - 1).misfits(model.config) == []


def test_visionzip_ranks_by_the_vision_tower_s_own_cls_attention(tiny):
    from PIL import Image

    from gprune import load_model
    from gprune.vision_attention import capture_cls_attention

    model, processor = load_model("tiny", attn_implementation="eager")  # eager: the tower returns its weights
    pixels = processor(images=[Image.new("RGB", (64, 48), "red")], text=["<image>"], return_tensors="pt")
    crops = pixels["pixel_values"][0]
    layers = model.model.vision_tower.encoder.layers
    with capture_cls_attention(model.model.cls_attention_layer(model.config.vision_feature_layer)) as captured:
        out = model.model.vision_tower(crops, output_attentions=True)
    own = out.attentions[len(layers) - 1][:, :, 0].mean(dim=1)  # the feature layer's [CLS] row, mean over heads
    assert torch.allclose(captured["attention"], own, atol=1e-5)


def test_visionzip_keeps_the_most_attended_tokens_and_merges_the_rest():
    features = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    guide = torch.zeros(64)
    guide[[5, 17, 40, 41, 60]] = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    indices, tokens = reduce_tokens(features, 6, "visionzip", guide=guide, contextual=1 / 6)
    assert {5, 17, 40, 41, 60} <= set(indices.tolist())  # the five dominant tokens, as they are
    for index in (5, 17, 40, 41, 60):
        assert torch.equal(tokens[indices.tolist().index(index)], features[index])
    merged = tokens[[i for i, index in enumerate(indices.tolist()) if index not in (5, 17, 40, 41, 60)]]
    rest = [i for i in range(64) if i not in (5, 17, 40, 41, 60)]
    assert torch.allclose(merged[0], features[rest].mean(0), atol=1e-6)  # one contextual token: the mean


def test_gprune_score_steps_start_at_the_norm_and_end_at_its_score():
    from gprune.methods.gprune import score, score_steps, similarity_graph

    features = torch.randn(30, 16, generator=torch.Generator().manual_seed(0))
    steps = score_steps(features, threshold=0.2, iterations=4)
    degree = similarity_graph(features, 0.2, 0.03)[1].sum(dim=-1)
    assert len(steps) == 5
    torch.testing.assert_close(steps[0], features.norm(dim=-1) / degree)
    torch.testing.assert_close(steps[-1], score(features, threshold=0.2, iterations=4))
