"""bfloat16 and float16, as workers run on a GPU, checked on the CPU: the feature cache, evaluation,
generation and the worker all work in the model's dtype."""

import pytest
import torch

from gprune import PruneConfig, evaluate, load_model, set_prune
from gprune.feature_cache import FeatureCache
from workers.eval_worker import EvalWorker


@pytest.fixture(scope="module")
def tiny_bf16():
    return load_model("tiny", device="cpu", dtype=torch.bfloat16)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_cache_keys_hash_the_raw_bytes_of_any_dtype(dtype):
    pixels = torch.linspace(-1, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8).to(dtype)
    key = FeatureCache.key(pixels, (64, 64))
    assert key == FeatureCache.key(pixels.clone(), (64, 64))
    changed = pixels.clone()
    changed[0, 0, 0, 0] += 0.5
    assert key != FeatureCache.key(changed, (64, 64)) and key != FeatureCache.key(pixels, (64, 32))
    assert key != FeatureCache.key(pixels.float() if dtype != torch.float32 else pixels.half(), (64, 64))


def test_bfloat16_evaluation_with_the_feature_cache(tiny_bf16):
    model, processor = tiny_bf16
    plain = evaluate(model, processor, ["easyvqa"], prune=PruneConfig(ratio=0.7), limit=8, batch_size=4,
                     max_new_tokens=4)["easyvqa"]
    assert plain.errors == 0 and plain.throughput["dtype"] == "bfloat16"
    assert plain.metrics["exact_match"] >= 0.5  # the trained model still answers in bfloat16
    model.model.pruning.feature_cache = FeatureCache(64 << 20)
    try:
        encoded = []
        for ratio in (0.7, 0.9):
            cached = evaluate(model, processor, ["easyvqa"], prune=PruneConfig(ratio=ratio), limit=8, batch_size=4,
                              max_new_tokens=4)["easyvqa"]
            assert cached.errors == 0
            encoded.append(model.model.pruning.images_encoded)
            if ratio == 0.7:
                assert [r.prediction for r in cached.records] == [r.prediction for r in plain.records]
        assert encoded[1] == encoded[0]  # the second config reads every image's features from the cache
        assert model.model.pruning.feature_cache.hits >= 8
    finally:
        model.model.pruning.feature_cache = None
        set_prune(model, processor, PruneConfig())


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_a_worker_in_half_precision_evaluates_and_reuses_its_cache(fixtures_dir, dtype):
    worker = EvalWorker("tiny", device="cpu", dtype=dtype, data_dir=str(fixtures_dir), batch_size=2,
                        max_new_tokens=4, cache_mb=64)
    first = worker.evaluate(PruneConfig(ratio=0.5), "textvqa", 4)
    second = worker.evaluate(PruneConfig(ratio=0.9), "textvqa", 4)
    assert first.errors == second.errors == 0
    info = worker.info()
    assert info["dtype"] == dtype and info["device"] == "cpu" and info["cache"]["hits"] == 4
    assert info["decoding"] == "dynamic KV cache, decode step eager" and info["warmup_seconds"] > 0
