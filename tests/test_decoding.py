"""The fast generation path: a static KV cache answers exactly as the dynamic one (greedy), in float32
and bfloat16, pruned and not, batched with padding; its length is bucketed; settings are checked."""

import pytest
import torch

from gprune import PruneConfig, load_model, set_prune
from gprune.benchmarks import load_task
from gprune.decoding import Decoding
from gprune.generation import generate_batch

STATIC = Decoding(cache="static", compile="off")  # compiling needs CUDA to pay; the cache is what changes
DYNAMIC = Decoding(cache="dynamic")


@pytest.fixture(scope="module")
def questions():
    task = load_task("easyvqa")
    docs = task.test_docs()
    return [task.doc_to_visual(docs[i]) for i in range(8)], [task.doc_to_text(docs[i]) for i in range(8)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_static_cache_answers_as_the_dynamic_one(questions, dtype):
    model, processor = load_model("tiny", device="cpu", dtype=dtype)
    images, texts = questions
    for ratio in (0.0, 0.7, 0.9):
        set_prune(model, processor, PruneConfig(ratio=ratio))
        for size in (1, 4):
            for start in range(0, len(texts), size):
                batch = images[start:start + size], texts[start:start + size]
                dynamic = generate_batch(model, processor, *batch, {"max_new_tokens": 8}, decoding=DYNAMIC)
                static = generate_batch(model, processor, *batch, {"max_new_tokens": 8}, decoding=STATIC)
                assert static.texts == dynamic.texts, (ratio, size, start)
                assert [s["generated_tokens"] for s in static.stats] == [s["generated_tokens"] for s in dynamic.stats]
                assert static.decode_steps == dynamic.decode_steps


def test_static_length_is_bucketed():
    kwargs = Decoding(cache="static", bucket=256).generate_kwargs(torch.device("cpu"), 300, 16)
    assert kwargs["cache_implementation"] == "static" and kwargs["max_cache_len"] == 512
    assert Decoding(cache="static", bucket=256).generate_kwargs(torch.device("cpu"), 100, 16)["max_cache_len"] == 256


def test_auto_is_static_and_compiled_on_cuda_dynamic_on_cpu():
    auto = Decoding()
    assert auto.cache_on(torch.device("cuda:0")) == "static" and auto.compiles_on(torch.device("cuda:0"))
    assert auto.cache_on(torch.device("cpu")) == "dynamic" and not auto.compiles_on(torch.device("cpu"))
    assert auto.generate_kwargs(torch.device("cpu"), 10, 4) == {"disable_compile": True}
    assert Decoding(compile="off").describe(torch.device("cuda")) == "static KV cache, decode step eager"
    assert auto.describe("cuda:1") == "static KV cache, decode step compiled"  # a device string, as --device gives


@pytest.mark.parametrize("kwargs,message", [
    ({"cache": "paged"}, "cache='paged'"), ({"compile": "yes"}, "compile='yes'"), ({"bucket": 0}, "bucket=0"),
    ({"cache": "dynamic", "compile": "on"}, "compile=on needs cache=static"),
])
def test_bad_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Decoding(**kwargs)


def test_fastv_reports_the_dynamic_cache_it_really_ran_on_not_the_static_one_asked_for(tiny):
    from gprune import PruneConfig, evaluate

    model, processor = tiny
    asked = Decoding(cache="static", compile="off")
    fastv, gprune = (evaluate(model, processor, ["easyvqa"], PruneConfig(method=m, ratio=0.5), limit=2, batch_size=2,
                              max_new_tokens=2, decoding=asked)["easyvqa"] for m in ("fastv", "gprune"))
    assert fastv.throughput["decoding"].startswith("dynamic KV cache")
    assert gprune.throughput["decoding"].startswith("static KV cache")
