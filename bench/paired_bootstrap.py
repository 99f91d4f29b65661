"""How long the paired bootstrap takes at each benchmark's full size: 10,000 resamples of its units, the
primary metric recomputed for both runs on each (`sweep.paired`). Records are synthetic, in the shape
lmms-eval's process_results gives each benchmark (two runs that agree on about 90% of answers; VQA
accuracy in quarters of 1/3, ANLS continuous), so the timing is of the statistics alone, not of a model:
grouping records into units, then the resamples. The baseline, timed in the same run on the same units:
scipy.stats.bootstrap drawing one unit index per unit per resample (what `sweep.paired` did first).

    .venv/bin/python bench/paired_bootstrap.py [--resamples 10000] [--only pope,mme] [--no-baseline]
"""

import argparse
import time

import numpy as np
from scipy.stats import bootstrap

from gprune.benchmarks import TASKS
from gprune.tasks import declared
from gprune.units import paired_units
from sweep.paired import paired_difference

# Full evaluation sets as lmms-eval's tasks read them (rows).
FULL = {"gqa": 12_578, "vqav2": 214_354, "mme": 2_374, "pope": 9_000, "mmbench": 4_329, "chartqa": 2_500,
        "docvqa": 5_349, "textvqa": 5_000, "easyvqa": 9_673}
MME_CATEGORIES = ["existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark",
                  "artwork", "OCR"]


def records(benchmark: str, rows: int, right: np.ndarray, rng) -> list[dict]:
    out = []
    for i in range(rows):
        score = float(right[i])
        if benchmark == "pope":
            truth = "yes" if rng.random() < 0.5 else "no"
            said = truth if right[i] else ("no" if truth == "yes" else "yes")
            value = {"question_id": str(i), "score": score, "prediction": said, "ground_truth": truth}
            out.append({"index": i, "score": score, "results": {"pope_f1_score": value}})
        elif benchmark == "mme":
            category = MME_CATEGORIES[(i // 2) % len(MME_CATEGORIES)]
            value = {"question_id": f"{category}/{i // 2}.png", "category": category, "score": score}
            out.append({"index": i, "score": score, "results": {"mme_perception_score": value}})
        elif benchmark == "mmbench":  # items of 4 rotated copies, the originals first
            group, copy = (i // 4, i % 4)
            value = {"index": group + copy * 1_000_000, "answer": "A", "prediction": "A" if right[i] else "B"}
            out.append({"index": i, "score": score, "results": {"gpt_eval_score": value}})
        else:  # VQA accuracy takes 4 values, ANLS any in [0.5, 1] or 0: the most kinds of unit
            if not right[i] and benchmark in ("vqav2", "textvqa"):
                score = float(rng.integers(0, 3)) / 3
            elif not right[i] and benchmark == "docvqa":
                score = float(rng.uniform(0.5, 1.0)) if rng.random() < 0.5 else 0.0
            metric = {"docvqa": "anls", "chartqa": "relaxed_overall"}.get(benchmark, "exact_match")
            out.append({"index": i, "score": score, "results": {metric: score}})
    return out


def index_bootstrap(units, resamples: int):
    """scipy's bootstrap over unit indices: every resample gathers one row per unit."""
    def statistic(chosen, axis=-1):
        return units.metric(units.a[chosen].sum(axis=-2)) - units.metric(units.b[chosen].sum(axis=-2))

    return bootstrap((np.arange(len(units.keys)),), statistic, vectorized=True, n_resamples=resamples,
                     batch=max(1, 20_000_000 // (len(units.keys) * units.a.shape[1])), method="percentile",
                     rng=np.random.default_rng(0)).confidence_interval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--only", default=",".join(FULL))
    parser.add_argument("--no-baseline", action="store_true", help="skip scipy's index bootstrap (105 s on VQAv2)")
    args = parser.parse_args()
    print("| benchmark | rows | units | resamples | ours: s | interval | scipy, unit indices: s | interval |\n"
          "|---|---|---|---|---|---|---|---|")
    for benchmark in args.only.split(","):
        rows, rng = FULL[benchmark], np.random.default_rng(0)
        a_right = rng.random(rows) < 0.6
        b_right = np.where(rng.random(rows) < 0.9, a_right, ~a_right)
        a, b = records(benchmark, rows, a_right, rng), records(benchmark, rows, b_right, rng)
        started = time.perf_counter()
        d = paired_difference(benchmark, a, b, resamples=args.resamples)
        seconds = time.perf_counter() - started
        line = (f"| {benchmark} | {rows:,} | {d.units:,} {d.unit} | {args.resamples:,} | {seconds:.1f} | "
                f"[{d.low:+.4f}, {d.high:+.4f}] |")
        if not args.no_baseline:
            started = time.perf_counter()
            theirs = index_bootstrap(paired_units(declared(TASKS[benchmark]), a, b), args.resamples)
            line += f" {time.perf_counter() - started:.1f} | [{theirs.low:+.4f}, {theirs.high:+.4f}] |"
        print(line, flush=True)


if __name__ == "__main__":
    main()
