"""A pool of EvalWorker actors, one per GPU (or a configured number on CPU), spread over the
cluster's nodes, behind a dispatcher that hands each call to a free worker.

Workers restart when they die (Ray actor restarts) and the call they were running is retried on
the restarted worker (actor task retries), so a killed worker delays a trial but never loses it.
"""

import asyncio

import ray

from .eval_worker import EvalWorker


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

    async def evaluate(self, prune, benchmark: str, limit=None, offset: int = 0) -> dict:
        return await self._call("evaluate", prune, benchmark, limit, offset)

    async def aggregate(self, benchmark: str, records: list[dict]):
        return await self._call("aggregate", benchmark, records)


class WorkerPool:
    def __init__(self, model: str = "tiny", count: int | None = None, cpus_per_worker: float = 1,
                 use_gpu: bool | None = None, name: str = "gprune", **worker_kwargs):
        gpus = int(ray.cluster_resources().get("GPU", 0))
        self.use_gpu = gpus > 0 if use_gpu is None else use_gpu
        self.count = count or (gpus if self.use_gpu else 1)
        options = dict(
            num_gpus=1 if self.use_gpu else 0,
            num_cpus=cpus_per_worker,
            max_restarts=-1,  # a dead worker comes back (and reloads its weights once)
            max_task_retries=-1,  # the call it was running is retried there
            scheduling_strategy="SPREAD",  # across nodes
        )
        # Named, so operators (and tests) can find a sweep's workers: ray.get_actor("NAME-worker-0")
        self.names = [f"{name}-worker-{i}" for i in range(self.count)]
        self.workers = [ray.remote(EvalWorker).options(name=n, **options).remote(model=model, **worker_kwargs)
                        for n in self.names]
        self.dispatcher = Dispatcher.remote(self.names)

    def info(self) -> list[dict]:
        return ray.get([worker.info.remote() for worker in self.workers])

    def shutdown(self) -> None:
        for actor in [*self.workers, self.dispatcher]:
            ray.kill(actor, no_restart=True)
