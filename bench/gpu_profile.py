"""Where one generate() spends its time on the fast path: torch.profiler over one batch of the 8B token geometry
(random weights, bf16: testbed/geometry_8b.py; bench/gpu.py's image) after a warm-up that compiles, for one method
and ratio.
Prints the top operators by self device time (CUDA) or self CPU time (--smoke), the kernel launches and the
host-device syncs per generate(), and writes a Chrome trace to --trace (open it in chrome://tracing or Perfetto).

    python bench/gpu_profile.py [--method gprune --ratio 0.9 --batch 1 --trace trace.json]   # on a GPU
    python bench/gpu_profile.py --smoke                                                        # CPU, narrow model
"""

import argparse

from torch.profiler import ProfilerActivity, profile

from gprune import PruneConfig, set_prune
from testbed.geometry_8b import bench_setup, generate_rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="CPU, a narrow model of the same token geometry")
    parser.add_argument("--method", default="gprune")
    parser.add_argument("--ratio", type=float, default=0.9)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=9)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--trace", default=None, help="write a Chrome trace here")
    args = parser.parse_args()

    setup = bench_setup(args.smoke)
    model, processor, decoding, device = setup.model, setup.processor, setup.fast, setup.device
    cuda = device.type == "cuda"
    set_prune(model, processor, PruneConfig(method=args.method, ratio=args.ratio))

    def run():
        return generate_rows(model, processor, args.batch, args.new_tokens, decoding)

    run(), run()  # compile, then warm
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as profiler:
        out = run()
    events = profiler.key_averages()
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    print(f"{args.method} at {args.ratio:.0%}, batch {args.batch}, {args.new_tokens} new tokens, {setup.card}, "
          f"{decoding.describe(device)}: prefill {1000 * out.prefill_seconds:.1f} ms, decode "
          f"{1000 * out.decode_seconds / max(1, out.decode_steps):.2f} ms/token (under the profiler)")
    print(events.table(sort_by=sort, row_limit=args.top))
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaGraphLaunch"))
    syncs = sum(e.count for e in events if e.key in ("cudaStreamSynchronize", "cudaDeviceSynchronize",
                                                     "aten::item", "aten::_local_scalar_dense"))
    print(f"kernel or graph launches: {launches}; host-device syncs (item/synchronize): {syncs}")
    if args.trace:
        profiler.export_chrome_trace(args.trace)


if __name__ == "__main__":
    main()
