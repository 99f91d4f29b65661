"""EvalWorker: one resident LLaVA-NeXT that answers evaluate(prune_config, benchmark, ...).

A Ray actor holds one of these per GPU (or per configured CPU slot). Trials never reload weights:
each call sets the pruning config on the resident model. The vision-feature cache lets every
config of a sweep reuse the vision tower's output for images it has already seen. The worker uses
CUDA when Ray gave it a GPU (and torch sees one), else the CPU, and says which in info(); it warms
up (compiles the decode step where that applies) once, before any call is timed.
"""

import json
import os
from dataclasses import replace

import ray
import torch

from gprune import PruneConfig, load_model, set_prune
from gprune.answers import AnswerRules
from gprune.benchmarks import load_task
from gprune.config import own_fields
from gprune.decoding import Decoding
from gprune.evaluation import aggregate, evaluate_task
from gprune.feature_cache import FeatureCache
from gprune.generation import warm_up
from gprune.records import BenchmarkResult, SampleRecord

from .nodes import node_address

SLICE_LOG = "gprune slice:"  # how a worker's log line for each slice it evaluates begins


class EvalWorker:
    def __init__(self, model: str = "tiny", device: str | None = None, dtype: str | None = None,
                 data_dir: str | None = None, batch_size: int = 1, max_new_tokens: int | None = None,
                 cache_mb: int = 512, decoding: Decoding | None = None, answers: AnswerRules | None = None):
        self.model_name, self.data_dir = model, data_dir
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        self.decoding, self.answers = decoding or Decoding(), answers or AnswerRules()
        self.model, self.processor = load_model(model, device=device, dtype=dtype)
        self.weight_loads = 1  # in this process; `restarted` says whether Ray brought the worker back
        pruning = self.model.model.pruning
        pruning.feature_cache = FeatureCache(cache_mb << 20) if cache_mb else None
        self.warmup_seconds = warm_up(self.model, self.processor, self.decoding)
        # The warm-up's one small blank image: a floor on an image's features, what expect_images() weighs
        self.image_bytes = pruning.feature_cache.bytes if cache_mb else 0
        pruning.images_encoded = 0  # count the benchmarks' images, not the warm-up's blank one
        pruning.feature_cache = FeatureCache(cache_mb << 20) if cache_mb else None
        self.tasks = {}  # benchmark -> lmms-eval task, loaded once
        self.calls = 0
        self.node = node_address() if ray.is_initialized() else ""  # where its results say they were evaluated

    def _task(self, benchmark: str):
        if benchmark not in self.tasks:
            self.tasks[benchmark] = load_task(benchmark, self.data_dir)
        return self.tasks[benchmark]

    def evaluate(self, prune: PruneConfig, benchmark: str, limit: int | None = None, offset: int = 0
                 ) -> BenchmarkResult:
        """Samples [offset, offset + limit) of `benchmark` under `prune`."""
        if not isinstance(prune, PruneConfig):  # made (and validated) once, by whoever asks
            raise TypeError(f"prune must be a PruneConfig, got {type(prune).__name__}")
        self.calls += 1
        # one line per slice in the worker's log (Ray's logs/worker-*.out): what ran where, also after a crash
        print(f"{SLICE_LOG} {benchmark} [{offset}, {offset + limit if limit is not None else 'end'}) "
              f"{json.dumps(own_fields(prune.to_dict()), sort_keys=True)}", flush=True)
        set_prune(self.model, self.processor, prune)
        result = evaluate_task(self.model, self.processor, self._task(benchmark), limit, self.batch_size,
                               self.max_new_tokens, name=benchmark, offset=offset, decoding=self.decoding,
                               answers=self.answers)
        return replace(result, nodes=self.node)

    def expect_images(self, images: int) -> bool:
        """A sweep will show this worker up to `images` images a trial: whether its feature cache keeps them all from
        one trial to the next (if not, it keeps a window of recent ones: gprune.feature_cache)."""
        cache = self.model.model.pruning.feature_cache
        return cache is not None and cache.expect(images, self.image_bytes)

    def size(self, benchmark: str) -> int:
        """Samples in the benchmark's split."""
        return len(self._task(benchmark).test_docs())

    def aggregate(self, benchmark: str, records: list[SampleRecord]) -> tuple[dict, dict]:
        """lmms-eval's aggregation over records gathered from several evaluate() slices."""
        return aggregate(self._task(benchmark), records)

    def info(self) -> dict:
        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
        device = self.model.device
        if device.type == "cuda":
            memory = torch.cuda.memory_allocated(device)
        else:
            import psutil

            memory = psutil.Process(os.getpid()).memory_info().rss
        cache = self.model.model.pruning.feature_cache
        return {
            "model": self.model_name, "device": str(device), "dtype": str(self.model.dtype).removeprefix("torch."),
            "decoding": self.decoding.describe(device), "warmup_seconds": self.warmup_seconds,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "memory_bytes": memory, "weight_loads": self.weight_loads, "calls": self.calls,
            "restarted": bool(ray.is_initialized() and ray.get_runtime_context().was_current_actor_reconstructed),
            "images_encoded": self.model.model.pruning.images_encoded,
            "cache": cache.stats() if cache is not None else None,
            "node_id": node, "pid": os.getpid(),
        }
