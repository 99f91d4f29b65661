"""A pool of EvalWorker actors, one per GPU (or a configured number on CPU), spread over the
cluster's nodes, behind a dispatcher that hands each call to a free worker.

Workers restart when they die (Ray actor restarts) and the call they were running is retried on
the restarted worker (actor task retries), so a killed worker delays a trial but never loses it. A
worker that keeps dying (killed for memory, a crash in its model) is restarted MAX_RESTARTS times, then
the reason reaches the sweep in one line. Workers that could never be placed on the cluster (more CPUs
or GPUs than any node, or all nodes, have) are refused before any is created.
"""

import asyncio
import math
import re

import ray

from .eval_worker import EvalWorker

MAX_RESTARTS = 3  # per worker: one kill is ridden out, a worker that keeps dying is said to


class WorkerStartError(ValueError):
    """A worker died and will not come back; the message is the reason, in one line."""


def placement_problem(count: int, cpus: float, gpus: int) -> str | None:
    """Why `count` workers of `cpus` CPUs (and `gpus` GPU each) cannot all be placed on this cluster, or None."""
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    fit = sum(min(math.floor(n.get("CPU", 0) / cpus + 1e-9) if cpus else count,
                  math.floor(n.get("GPU", 0) / gpus) if gpus else count) for n in nodes)
    have = (f"the cluster has {len(nodes)} node(s): "
            + ", ".join(f"{n.get('CPU', 0):g} CPU" + (f" {n.get('GPU', 0):g} GPU" if gpus else "") for n in nodes))
    if fit < count:
        wanted = f"{cpus:g} CPU" + (f" and {gpus} GPU" if gpus else "")
        return (f"{count} workers of {wanted} each cannot all be placed, only {fit} fit; {have}. Lower "
                "workers.count or workers.cpus_per_worker, or add nodes")
    return None


def start_error(error: BaseException) -> WorkerStartError:
    """The reason a worker died, from Ray's chained error text: its innermost exception line, or Ray's own
    cause (e.g. killed for memory)."""
    text = str(error)
    raised = re.findall(r"^\s*(\w+(?:Error|Exception): .+)$", text, flags=re.MULTILINE)
    memory = re.search(r"(killed .{0,40}(memory|OOM).*)$", text, flags=re.MULTILINE | re.IGNORECASE)
    reason = raised[-1] if raised else memory.group(1) if memory else text.strip().splitlines()[0]
    return WorkerStartError(f"an evaluation worker died and was not brought back (after up to {MAX_RESTARTS} "
                            f"restarts): {reason.strip()}")


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class Dispatcher:
    """Trials call this; it awaits a free worker, runs the call there, and frees the worker."""

    def __init__(self, worker_names: list[str]):
        # names, not handles: a restarted dispatcher finds its workers again
        self.workers = [ray.get_actor(name) for name in worker_names]
        self.free: asyncio.Queue | None = None

    async def _call(self, method: str, *args):
        if self.free is None:  # created inside the actor's event loop
            self.free = asyncio.Queue()
            for worker in self.workers:
                self.free.put_nowait(worker)
        worker = await self.free.get()
        try:
            return await getattr(worker, method).remote(*args)
        finally:
            self.free.put_nowait(worker)

    async def evaluate(self, prune, benchmark: str, limit=None, offset: int = 0):  # -> BenchmarkResult
        return await self._call("evaluate", prune, benchmark, limit, offset)

    async def size(self, benchmark: str) -> int:  # samples in its split
        return await self._call("size", benchmark)

    async def aggregate(self, benchmark: str, records: list):  # SampleRecords -> (metrics, errors)
        return await self._call("aggregate", benchmark, records)


class WorkerPool:
    def __init__(self, model: str = "tiny", count: int | None = None, cpus_per_worker: float = 1,
                 use_gpu: bool | None = None, name: str = "gprune", **worker_kwargs):
        gpus = int(ray.cluster_resources().get("GPU", 0))
        self.use_gpu = gpus > 0 if use_gpu is None else use_gpu
        self.count = count or (gpus if self.use_gpu else 1)
        problem = placement_problem(self.count, cpus_per_worker, 1 if self.use_gpu else 0)
        if problem:
            raise ValueError(problem)
        options = dict(
            num_gpus=1 if self.use_gpu else 0,
            num_cpus=cpus_per_worker,
            max_restarts=MAX_RESTARTS,  # a dead worker comes back (and reloads its weights once)
            max_task_retries=-1,  # the call it was running is retried there
            scheduling_strategy="SPREAD",  # across nodes
        )
        # Named, so operators (and tests) can find a sweep's workers: ray.get_actor("NAME-worker-0")
        self.names = [f"{name}-worker-{i}" for i in range(self.count)]
        self.workers = [ray.remote(EvalWorker).options(name=n, **options).remote(model=model, **worker_kwargs)
                        for n in self.names]
        self.dispatcher = Dispatcher.remote(self.names)

    def info(self) -> list[dict]:
        try:
            return ray.get([worker.info.remote() for worker in self.workers])
        except ray.exceptions.RayActorError as error:
            raise start_error(error) from None

    def expect_images(self, images: int) -> bool:
        """Tells every worker's feature cache how many images a trial shows it: whether every cache keeps them all."""
        return all(ray.get([worker.expect_images.remote(images) for worker in self.workers]))

    def shutdown(self) -> None:
        for actor in [*self.workers, self.dispatcher]:
            ray.kill(actor, no_restart=True)
