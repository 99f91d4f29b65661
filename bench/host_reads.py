"""Host reads of device values in one generate(): on a GPU each one (item, bool, int, tolist, nonzero) waits for the
device's queue to drain, so the kernel launches after it stop overlapping the work before it. Counted on CPU (the
count does not depend on the device) for G-Prune at 90% on the narrow model of the 8B geometry
(testbed/geometry_8b.py), by where they happen: this project's code, or transformers'.

    python bench/host_reads.py [--batches 1,8]
"""

import argparse
import collections
import traceback
from contextlib import contextmanager

import torch

from gprune import PruneConfig, set_prune
from gprune.decoding import Decoding
from gprune.transformers_api import TorchDispatchMode
from testbed.geometry_8b import NARROW, build, generate_rows

READ_OPS = {"_local_scalar_dense", "is_nonzero", "item", "nonzero"}


def _where() -> str:
    frames = [f for f in traceback.extract_stack() if "/torch/" not in f.filename and f.filename != __file__]
    path = frames[-1].filename
    return "transformers" if "/transformers/" in path else "gprune" if "/gprune/" in path else "other"


class Reads(TorchDispatchMode):
    def __init__(self, counts):
        super().__init__()
        self.counts = counts

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__.split(".")[0] in READ_OPS:
            self.counts[_where()] += 1
        return func(*args, **(kwargs or {}))


@contextmanager
def counting_reads():
    """Counts per origin; tolist() reads without passing the dispatcher, so it is counted where it is called."""
    counts, tolist = collections.Counter(), torch.Tensor.tolist

    def counted_tolist(self):
        counts[_where()] += 1
        return tolist(self)

    torch.Tensor.tolist = counted_tolist
    try:
        with Reads(counts):
            yield counts
    finally:
        torch.Tensor.tolist = tolist


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", default="1,8")
    args = parser.parse_args()
    model, processor = build(NARROW, torch.device("cpu"), torch.bfloat16)
    decoding = Decoding(cache="static", compile="off")
    print("| batch | pruning | reads in gprune | reads in transformers |\n|---|---|---|---|")
    for batch in (int(b) for b in args.batches.split(",")):
        for ratio in (0.0, 0.9):
            set_prune(model, processor, PruneConfig(method="gprune", ratio=ratio))
            generate_rows(model, processor, batch, 9, decoding)
            with counting_reads() as counts:
                generate_rows(model, processor, batch, 9, decoding)
            print(f"| {batch} | {'G-Prune 90%' if ratio else 'none'} | {counts['gprune']} "
                  f"| {counts['transformers']} |")


if __name__ == "__main__":
    main()
