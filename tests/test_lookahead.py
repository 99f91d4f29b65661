"""The lookahead thread (gprune.lookahead) prepares the next batch with a processor of its own while the caller's
thread decodes with the caller's (a fast tokenizer is not safe to share across threads): forced on, on the CPU,
across many batches, no batch falls back to running sample by sample; a batch that does fall back is counted and
its error recorded; the feature cache's keys are made on the host from the images, never from device pixels."""

import threading

import pytest

from gprune import PruneConfig, set_prune
from gprune.benchmarks import load_task
from gprune.evaluation import evaluate_task
from gprune.feature_cache import FeatureCache


@pytest.fixture
def calls(monkeypatch):
    """Each prepare_batch call: (thread name, processor)."""
    import gprune.evaluation

    seen, original = [], gprune.evaluation.prepare_batch

    def recording(processor, *args, **kwargs):
        seen.append((threading.current_thread().name, processor))
        return original(processor, *args, **kwargs)

    monkeypatch.setattr(gprune.evaluation, "prepare_batch", recording)
    return seen


def test_the_thread_prepares_many_batches_with_its_own_processor_and_none_falls_back(tiny, calls):
    model, processor = tiny
    set_prune(model, processor, PruneConfig(ratio=0.5))
    result = evaluate_task(model, processor, load_task("easyvqa"), limit=40, batch_size=2, max_new_tokens=2,
                           lookahead=True)
    set_prune(model, processor, PruneConfig())
    assert result.batch_fallbacks == 0 and result.fallback_errors == [] and result.errors == 0
    assert result.batches == 20
    on_thread = [used for thread, used in calls if thread.startswith("gprune-lookahead")]
    assert len(on_thread) == 20 and all(used is not processor for used in on_thread)
    assert len({id(used) for used in on_thread}) == 1  # one copy for the whole benchmark


def test_a_batch_that_falls_back_is_counted_and_its_error_recorded(tiny, fixtures_dir, monkeypatch):
    import gprune.evaluation

    model, processor = tiny
    original, made = gprune.evaluation.prepare_batch, []

    def second_batch_fails(*args, **kwargs):
        made.append(threading.current_thread().name)
        if len(made) == 2:
            raise RuntimeError("the processor refused the batch")
        return original(*args, **kwargs)

    monkeypatch.setattr(gprune.evaluation, "prepare_batch", second_batch_fails)
    result = evaluate_task(model, processor, load_task("textvqa", fixtures_dir), limit=6, batch_size=2,
                           max_new_tokens=2, lookahead=True)
    assert result.batch_fallbacks == 1 and result.errors == 0  # its two samples ran one by one, both scored
    assert result.fallback_errors == ["RuntimeError: the processor refused the batch"]


def test_the_feature_cache_keys_come_from_the_host_not_from_device_pixels(tiny, fixtures_dir, monkeypatch):
    model, processor = tiny

    def no_pixel_hashing(*args):
        raise AssertionError("the cache key was made from the pixel tensor")

    monkeypatch.setattr(FeatureCache, "key", staticmethod(no_pixel_hashing))
    cache = model.model.pruning.feature_cache = FeatureCache(64 << 20)
    try:
        task = load_task("textvqa", fixtures_dir)
        first = evaluate_task(model, processor, task, limit=4, batch_size=2, max_new_tokens=2)
        second = evaluate_task(model, processor, task, limit=4, batch_size=2, max_new_tokens=2)
    finally:
        model.model.pruning.feature_cache = None
    assert (cache.misses, cache.hits) == (4, 4)
    assert [r.prediction for r in first.records] == [r.prediction for r in second.records]
