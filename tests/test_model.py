"""The pruned LLaVA-NeXT: exactness at ratio 0, pruned sequence lengths, generate() with KV cache,
batching with padding, newline tokens, position modes, several images per prompt, reconfiguration."""

import copy

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from gprune import PruneConfig, image_layout, load_model, set_prune
from gprune.generation import format_prompt
from testbed.tiny import build_model

QUESTIONS = ["What color is the shape?", "How many circles?", "Is there a red square in the image?", "What?"]


def prompt(processor, question, images=1):
    return format_prompt(processor, question, images)


def greedy(model, processor, images, prompts, new_tokens=6):
    inputs = processor(images=images, text=prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    return [row[inputs["input_ids"].shape[1]:].tolist() for row in out]


class LanguageModelInputs:
    """Records what the language model receives on each forward (sequence length, position ids)."""

    def __init__(self, model):
        self.calls = []
        self.handle = model.model.language_model.register_forward_pre_hook(self.record, with_kwargs=True)

    def record(self, module, args, kwargs):
        self.calls.append({"length": kwargs["inputs_embeds"].shape[1], "position_ids": kwargs.get("position_ids")})

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def test_ratio_zero_gives_logits_identical_to_unmodified_transformers(images):
    reference, processor = build_model()  # plain LlavaNextForConditionalGeneration
    model = copy.deepcopy(reference)
    pruned_processor = copy.deepcopy(processor)
    set_prune(model, pruned_processor, PruneConfig(ratio=0.0))
    assert type(reference).__name__ == "LlavaNextForConditionalGeneration"
    for image, question in zip(images, QUESTIONS):
        text = prompt(processor, question)
        with torch.no_grad():
            expected = reference(**processor(images=image, text=text, return_tensors="pt")).logits
            actual = model(**pruned_processor(images=image, text=text, return_tensors="pt")).logits
        assert torch.equal(expected, actual)


@pytest.mark.parametrize("ratio", [0.5, 0.7, 0.9])
def test_generate_prefill_length_is_text_plus_kept_visual_tokens(tiny, images, ratio):
    model, processor = tiny
    set_prune(model, processor, PruneConfig(ratio=ratio))
    image, text = images[1], prompt(processor, QUESTIONS[0])
    layout = image_layout(model.config, (image.height, image.width))
    inputs = processor(images=image, text=text, return_tensors="pt")
    text_tokens = int((inputs["input_ids"] != model.config.image_token_id).sum())
    assert layout.kept(ratio) < layout.full
    with LanguageModelInputs(model) as seen, torch.no_grad():
        model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert seen.calls[0]["length"] == text_tokens + layout.kept(ratio)  # the generate() path really prunes
    assert [c["length"] for c in seen.calls[1:]] == [1, 1]  # then KV-cache decode steps


def test_batch_of_four_with_padding_matches_batch_of_one(tiny, images):
    model, processor = tiny
    for config in (PruneConfig(ratio=0.7), PruneConfig(ratio=0.5, positions="compact"), PruneConfig(ratio=0.0)):
        set_prune(model, processor, config)
        prompts = [prompt(processor, q) for q in QUESTIONS]
        batch = processor(images=images, text=prompts, return_tensors="pt", padding=True)
        assert (batch["attention_mask"] == 0).any()  # the prompts really differ in length
        one_by_one = [greedy(model, processor, [im], [p])[0] for im, p in zip(images, prompts)]
        assert greedy(model, processor, images, prompts) == one_by_one


def test_newline_tokens_always_survive(tiny, images):
    model, processor = tiny
    set_prune(model, processor, PruneConfig(ratio=0.9))
    image = images[2]
    inputs = processor(images=image, text=prompt(processor, "What?"), return_tensors="pt")
    with torch.no_grad():
        features = model.model.get_image_features(inputs["pixel_values"], inputs["image_sizes"])
    layout = image_layout(model.config, (image.height, image.width))
    kept = features["kept_indices"][0]
    assert set(layout.newline_positions().tolist()) <= set(kept.tolist())
    assert len(kept) == layout.kept(0.9) == len(features.pooler_output[0])
    newline_rows = [i for i, index in enumerate(kept.tolist()) if index in set(layout.newline_positions().tolist())]
    assert torch.equal(features.pooler_output[0][newline_rows], model.model.image_newline.expand(layout.rows, -1))


def test_original_positions_keep_the_unpruned_numbering(tiny, images):
    model, processor = tiny
    image, text = images[0], prompt(processor, QUESTIONS[1])
    set_prune(model, processor, PruneConfig(ratio=0.0))
    full_inputs = processor(images=image, text=text, return_tensors="pt")
    set_prune(model, processor, PruneConfig(ratio=0.7, positions="original"))
    inputs = processor(images=image, text=text, return_tensors="pt")
    with LanguageModelInputs(model) as seen, torch.no_grad():
        model.generate(**inputs, max_new_tokens=2, min_new_tokens=2, do_sample=False)
    positions = seen.calls[0]["position_ids"][0]
    is_image = inputs["input_ids"][0] == model.config.image_token_id
    first_image = int(is_image.nonzero()[0])
    kept = model.model.get_image_features(inputs["pixel_values"], inputs["image_sizes"])["kept_indices"][0]
    assert positions[is_image].tolist() == (first_image + kept).tolist()
    # the text after the image sits exactly where it sits in the unpruned prompt
    assert positions[-1] == full_inputs["input_ids"].shape[1] - 1
    assert seen.calls[1]["position_ids"][0].tolist() == [full_inputs["input_ids"].shape[1]]


def test_compact_positions_renumber_and_change_the_output(tiny, images):
    model, processor = tiny
    image, text = images[0], prompt(processor, QUESTIONS[1])
    logits = {}
    for mode in ("original", "compact"):
        set_prune(model, processor, PruneConfig(ratio=0.7, positions=mode))
        inputs = processor(images=image, text=text, return_tensors="pt")
        with LanguageModelInputs(model) as seen, torch.no_grad():
            logits[mode] = model(**inputs).logits
            model.generate(**inputs, max_new_tokens=2, min_new_tokens=2, do_sample=False)
        if mode == "compact":
            positions = seen.calls[1]["position_ids"][0]
            assert positions.tolist() == list(range(inputs["input_ids"].shape[1]))
    assert not torch.allclose(logits["original"], logits["compact"])


def test_several_images_per_prompt(tiny, images):
    model, processor = tiny
    set_prune(model, processor, PruneConfig(ratio=0.7))
    pair = [images[0], images[1]]
    two = prompt(processor, "Which image has more red?", images=2)
    inputs = processor(images=pair, text=two, return_tensors="pt")
    layouts = [image_layout(model.config, (im.height, im.width)) for im in pair]
    assert int((inputs["input_ids"] == model.config.image_token_id).sum()) == sum(lay.kept(0.7) for lay in layouts)
    with LanguageModelInputs(model) as seen, torch.no_grad():
        model.generate(**inputs, max_new_tokens=2, min_new_tokens=2, do_sample=False)
    unpruned_length = inputs["input_ids"].shape[1] + sum(lay.full - lay.kept(0.7) for lay in layouts)
    assert seen.calls[0]["position_ids"][0, -1] == unpruned_length - 1
    # a two-image prompt batched with a one-image prompt answers as it does alone
    single = prompt(processor, QUESTIONS[0])
    batched = greedy(model, processor, pair + [images[2]], [two, single])
    assert batched == [greedy(model, processor, pair, [two])[0], greedy(model, processor, [images[2]], [single])[0]]


def test_config_changes_without_reloading(tiny, images):
    model, processor = tiny
    weights = model.model.language_model.layers[0].mlp.up_proj.weight
    before = weights.clone()
    image, text = images[0], prompt(processor, "What?")
    layout = image_layout(model.config, (image.height, image.width))
    counts = []
    for ratio in (0.0, 0.5, 0.9):
        set_prune(model, processor, PruneConfig(ratio=ratio, method="l2norm"))
        inputs = processor(images=image, text=text, return_tensors="pt")
        counts.append(int((inputs["input_ids"] == model.config.image_token_id).sum()))
        with torch.no_grad():
            model(**inputs)
    assert counts == [layout.full, layout.kept(0.5), layout.kept(0.9)]
    assert model.model.language_model.layers[0].mlp.up_proj.weight is weights and torch.equal(weights, before)


def test_methods_choose_different_tokens(tiny, images):
    model, processor = tiny
    inputs = processor(images=images[0], text=prompt(processor, "What?"), return_tensors="pt")
    chosen = {}
    for method in ("gprune", "random", "l2norm", "graph"):
        set_prune(model, processor, PruneConfig(ratio=0.7, method=method))
        with torch.no_grad():
            chosen[method] = model.model.get_image_features(inputs["pixel_values"], inputs["image_sizes"])[
                "kept_indices"][0].tolist()
    assert len({tuple(v) for v in chosen.values()}) == 4


def test_mismatched_processor_gives_a_clear_error(tiny, images):
    model, processor = tiny
    set_prune(model, processor, PruneConfig(ratio=0.0))
    inputs = processor(images=images[0], text=prompt(processor, "What?"), return_tensors="pt")
    model.model.pruning.prune = PruneConfig(ratio=0.5)  # changed behind the processor's back
    try:
        with pytest.raises(ValueError, match="gprune.set_prune"):
            model.generate(**inputs, max_new_tokens=1)
    finally:
        set_prune(model, processor, PruneConfig())


def test_local_checkpoint_loads_through_the_same_code(tmp_path, images):
    model, processor = build_model(seed=3)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded, loaded_processor = load_model(str(tmp_path), prune=PruneConfig(ratio=0.7), device="cpu")
    set_prune(model, processor, PruneConfig(ratio=0.7))
    text = prompt(processor, "What color?")
    assert greedy(loaded, loaded_processor, [images[1]], [text]) == greedy(model, processor, [images[1]], [text])


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(str(tmp_path / "no-such-checkpoint"))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"ratio": 1.0}, "ratio=1.0 must be a number in \\[0, 1\\)"),
        ({"ratio": -0.1}, "ratio=-0.1"),
        ({"positions": "shifted"}, "positions='shifted'"),
        ({"method": "sparsevlm"}, "method='sparsevlm' is unknown"),
        ({"threshold": 0}, "threshold=0"),
    ],
)
def test_bad_prune_config_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PruneConfig(**kwargs)


def test_feature_cache_runs_the_vision_tower_once_per_image(tiny, images):
    from gprune.feature_cache import FeatureCache

    model, processor = tiny
    prompts = [prompt(processor, q) for q in QUESTIONS]
    set_prune(model, processor, PruneConfig(ratio=0.5))
    uncached = greedy(model, processor, images, prompts)
    model.model.pruning.feature_cache = FeatureCache(max_bytes=64 << 20)
    try:
        before = model.model.pruning.images_encoded
        for ratio in (0.5, 0.7, 0.9):  # three "trials" over the same four images
            set_prune(model, processor, PruneConfig(ratio=ratio))
            answers = greedy(model, processor, images, prompts)
            if ratio == 0.5:
                assert answers == uncached  # cached features give the same answers
        assert model.model.pruning.images_encoded - before == len(images)
        assert model.model.pruning.feature_cache.hits == 2 * len(images)
    finally:
        model.model.pruning.feature_cache = None


def test_feature_cache_evicts_least_recently_used_within_its_byte_budget():
    from gprune.feature_cache import FeatureCache

    cache = FeatureCache(max_bytes=3 * 400)
    for name in "abc":
        cache.put(name, torch.zeros(100))  # 400 bytes each
    cache.get("a")  # a is now the most recent
    cache.put("d", torch.zeros(100))
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 3
    assert cache.bytes <= cache.max_bytes


def test_feature_cache_that_only_churns_stops_admitting_and_lets_its_entries_go():
    """A pass over more images than fit (a benchmark at full size) evicts each before a next trial could use it."""
    from gprune.feature_cache import FeatureCache

    cache = FeatureCache(max_bytes=3 * 400)
    for i in range(6):  # fills, then turns over its whole budget: no hit all along
        assert cache.admitting
        cache.get(f"image {i}")
        cache.put(f"image {i}", torch.zeros(100))
    assert not cache.admitting and len(cache) == 0 and cache.bytes == 0
    cache.put("image 6", torch.zeros(100))
    assert len(cache) == 0 and cache.stats()["admitting"] is False


def test_feature_cache_with_hits_keeps_admitting_however_long_it_turns_over():
    """Questions that share an image (VQAv2 asks about five per image) hit it while it is still there."""
    from gprune.feature_cache import FeatureCache

    cache = FeatureCache(max_bytes=3 * 400)
    for i in range(30):
        if cache.get(f"image {i // 2}") is None:
            cache.put(f"image {i // 2}", torch.zeros(100))
    assert cache.admitting and cache.hits == 15 and len(cache) == 3


def test_feature_cache_told_its_images_cannot_fit_keeps_a_window_of_recent_ones():
    """Questions about one image in a row still hit; nothing is held for a next trial it could not reach."""
    from gprune.feature_cache import WINDOW_IMAGES, FeatureCache

    assert FeatureCache(max_bytes=3 * 400).expect(images=3, image_bytes=400)
    cache = FeatureCache(max_bytes=(WINDOW_IMAGES + 10) * 400)
    assert not cache.expect(images=WINDOW_IMAGES + 11, image_bytes=400)
    assert cache.max_bytes == WINDOW_IMAGES * 400
    for i in range(3 * WINDOW_IMAGES):  # each image asked about twice in a row, as VQAv2 asks
        if cache.get(f"image {i // 2}") is None:
            cache.put(f"image {i // 2}", torch.zeros(100))
    assert cache.admitting and cache.hits == 3 * WINDOW_IMAGES // 2 and len(cache) == WINDOW_IMAGES
    small = FeatureCache(max_bytes=3 * 400)
    assert not small.expect(images=4, image_bytes=400) and small.max_bytes == 3 * 400  # already under the window


def test_an_eval_worker_sizes_its_feature_cache_by_its_warm_up_image(fixtures_dir):
    """EvalWorker measures an image's features on its warm-up image; a sweep's image count then keeps its cache or
    shrinks it to a window (and the driver skips the filling pass)."""
    from gprune.feature_cache import WINDOW_IMAGES
    from workers.eval_worker import EvalWorker

    worker = EvalWorker(model="tiny", data_dir=str(fixtures_dir), cache_mb=64, max_new_tokens=1)
    assert 0 < worker.image_bytes < 1 << 20 and worker.info()["cache"]["misses"] == 0
    assert worker.expect_images(8)
    assert not worker.expect_images((64 << 20) // worker.image_bytes + 1)
    worker.evaluate(PruneConfig(ratio=0.5), "pope", limit=2)
    cache = worker.info()["cache"]
    assert cache["max_bytes"] == WINDOW_IMAGES * worker.image_bytes < 64 << 20
    assert cache["entries"] == cache["misses"] == 2 and cache["admitting"]


class DeviceReads(TorchDispatchMode):
    """Counts the ops that read a tensor's values back to the host: on a GPU each waits for the device's queue to
    drain (a host sync), so the launches after it stop overlapping the work before it."""
    READS = {"_local_scalar_dense", "is_nonzero", "item", "nonzero"}

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func.__name__.split(".")[0] in self.READS
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("method", ["gprune", "random", "l2norm"])
def test_pruning_reads_the_device_twice_a_batch_whatever_its_size(tiny, images, method):
    """The features' finiteness and the prompt's placeholder count, once each for a whole batch; before, every
    image cost several reads (its two finiteness checks, its last kept index, its trailing position)."""
    model, processor = tiny

    def reads(ratio, batch):
        set_prune(model, processor, PruneConfig(method=method, ratio=ratio))
        inputs = processor(images=images[:batch], text=[prompt(processor, q) for q in QUESTIONS[:batch]],
                           return_tensors="pt", padding=True)
        with DeviceReads() as counted, torch.no_grad():
            image = model.model.get_image_features(inputs["pixel_values"], inputs["image_sizes"])
            if ratio:
                model.model.kept_positions(inputs["input_ids"], inputs["attention_mask"], image, {})
        return counted.count

    assert len(images) >= 4
    assert reads(0.7, 1) - reads(0.0, 1) == 2
    assert reads(0.7, 4) - reads(0.0, 4) == 2
