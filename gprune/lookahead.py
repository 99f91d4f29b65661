"""One batch ahead: while the caller runs a batch on the model, the next batch's inputs are made on a thread.

Reading rows, decoding images and the processor are host work that would otherwise leave a GPU idle between
batches; torch, PIL and the tokenizers release the GIL for most of it. Only host work belongs on the thread: a
device's work stays on the caller's (CUDA graphs are captured there). On a CPU the host is the device, so there
is nothing to overlap and the thread only competes for its cores: there each batch is prepared when asked for
(measured: the tiny model's runner 1-8% slower in wall time with the thread on this 2-core machine). The
evaluation runner, the lmms-eval model (`gprune`) and bench/gpu_grid.py go through here; each gives the thread a
processor of its own (`thread_processor`): a fast tokenizer is not safe to use from two threads at once, and the
caller's thread decodes answers with the caller's.
"""

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch


def pays_on(device) -> bool:
    """Whether preparing ahead pays where the model runs: on an accelerator, not on the host's own cores."""
    return torch.device(device).type != "cpu"


def thread_processor(processor):
    """A copy of `processor` for the thread (its tokenizer its own), sharing the model's pruning state (one object:
    the copy counts the kept tokens the model keeps)."""
    state = getattr(processor, "pruning", None)
    return copy.deepcopy(processor, {id(state): state} if state is not None else None)


def one_ahead(items: Sequence, prepare: Callable, ahead: bool = True) -> Iterator[tuple[object, float]]:
    """(prepare(item), asked) for each item in order, prepare(next item) running on a thread meanwhile (`ahead`;
    else each is prepared when asked for). `asked`: the perf_counter when the caller asked for this one, so a
    caller's wall clock per batch can count any wait."""
    if not ahead:
        for item in items:
            asked = time.perf_counter()
            yield prepare(item), asked
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gprune-lookahead") as thread:
        pending = thread.submit(prepare, items[0]) if items else None
        for position in range(len(items)):
            asked = time.perf_counter()
            prepared = pending.result()
            pending = thread.submit(prepare, items[position + 1]) if position + 1 < len(items) else None
            yield prepared, asked
