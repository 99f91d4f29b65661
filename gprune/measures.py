"""Every number a result carries besides a benchmark's own lmms-eval metrics, declared once: its name (the key in a
result, in a sweep's flat metrics and in MLflow), its label (a table's column), unit, which way is better, how a
trial's benchmarks combine into one number, and how it prints. Records, the sweep's metrics, MLflow's run description,
the report and every CLI table read these; a name is written nowhere else (tests/test_measures.py reads the source).

A `Measure` is a str (its name), so it serves as a key and inside f-strings: f"{benchmark}.{RETENTION}"."""

from enum import StrEnum


class Combine(StrEnum):
    WEIGHTED = "the benchmarks' values weighted by their scored samples"
    SUM = "the benchmarks' sum"
    RATE = "scored samples over the time they take at each benchmark's median batch rate"
    TIMING = "from the benchmarks' summed batch timings"
    SHARE = "failed samples over the samples evaluated"
    AGAINST_BASELINE = "computed against the sweep's unpruned baseline"
    NONE = "per benchmark only"


class Measure(StrEnum):
    def __new__(cls, name: str, label: str, unit: str, higher_is_better: bool | None, combine: Combine, form: str,
                meaning: str):
        member = str.__new__(cls, name)
        member._value_ = name
        member.label, member.unit, member.higher_is_better = label, unit, higher_is_better
        member.combine, member.form, member.meaning = combine, form, meaning
        return member

    def show(self, value) -> str:
        """The value as tables print it ('' when missing or NaN)."""
        return "" if value is None or value != value else self.form.format(value)

    TFLOPS_EXACT = ("tflops_exact", "TFLOPs exact", "TFLOPs", False, Combine.WEIGHTED, "{:.3e}",
                    "exact FLOPs per sample, 2 x multiply-adds of the whole model (vision, projector, selection, "
                    "prefill, decode)")
    TFLOPS_FASTV = ("tflops_fastv", "TFLOPs fastv", "TMACs", False, Combine.WEIGHTED, "{:.3e}",
                    "the pruning papers' count per sample: language-model prefill multiply-accumulates")
    SAMPLES_PER_S = ("samples_per_s", "samples/s", "samples/s", True, Combine.RATE, "{:.2f}",
                     "the median batch's rate, the first batch left out (device, dtype and batch size: the tags)")
    SAMPLES_PER_S_SPREAD = ("samples_per_s_spread", "spread", "", False, Combine.WEIGHTED, "{:.0%}",
                            "the batch rates' interquartile range over their median")
    VISUAL_TOKENS_KEPT = ("visual_tokens_kept", "visual kept", "tokens", None, Combine.WEIGHTED, "{:.1f}",
                          "visual tokens the language model sees per sample")
    ERRORS = ("errors", "errors", "samples", False, Combine.SUM, "{:d}", "failed samples, each scored as wrong")
    ERROR_RATE = ("error_rate", "errors", "", False, Combine.SHARE, "{:.0%}", "failed samples over all")
    BATCH_FALLBACKS = ("batch_fallbacks", "fallbacks", "batches", False, Combine.SUM, "{:d}",
                       "batches that failed and ran again sample by sample")
    TRUNCATED_IMAGES = ("truncated_images", "truncated", "samples", False, Combine.SUM, "{:d}",
                        "samples scored on a truncated image")
    PREFILL_LATENCY_MS = ("prefill_latency_ms", "prefill ms", "ms", False, Combine.TIMING, "{:.1f}",
                          "prefill time per batch, mean")
    DECODE_MS_PER_TOKEN = ("decode_ms_per_token", "decode ms/tok", "ms", False, Combine.TIMING, "{:.2f}",
                           "time per decode step (one token for every row still generating), mean")
    SAMPLES_EVALUATED = ("samples_evaluated", "samples", "samples", None, Combine.SUM, "{:d}",
                         "samples evaluated over every benchmark")
    MODEL_SECONDS = ("model_seconds", "model s", "s", None, Combine.SUM, "{:.1f}", "every batch's wall time, summed")
    RETENTION = ("retention", "retention", "", True, Combine.NONE, "{:.3f}",
                 "a benchmark's primary metric over the unpruned baseline's")
    MEAN_RETENTION = ("mean_retention", "retention", "", True, Combine.AGAINST_BASELINE, "{:.3f}",
                      "the benchmarks' retentions, mean")
    SPEEDUP = ("speedup", "speedup", "x", True, Combine.AGAINST_BASELINE, "{:.2f}",
               "samples/s over the unpruned baseline's")
    FLOPS_SPEEDUP = ("flops_speedup", "FLOPs speedup", "x", True, Combine.AGAINST_BASELINE, "{:.2f}",
                     "the unpruned baseline's exact FLOPs over these")
    OBJECTIVE = ("objective", "objective", "", True, Combine.AGAINST_BASELINE, "{:.3f}",
                 "what schedulers and searchers maximise: mean retention, 0 where undefined")


# logged per benchmark as <benchmark>.<name>, from its BenchmarkResult's field of that name
PER_BENCHMARK = (Measure.TFLOPS_EXACT, Measure.TFLOPS_FASTV, Measure.SAMPLES_PER_S, Measure.SAMPLES_PER_S_SPREAD,
                 Measure.VISUAL_TOKENS_KEPT, Measure.ERRORS, Measure.ERROR_RATE, Measure.TRUNCATED_IMAGES,
                 Measure.BATCH_FALLBACKS,
                 Measure.PREFILL_LATENCY_MS, Measure.DECODE_MS_PER_TOKEN)
# a trial's cost columns, as the report's Table 1 and the sweep's table show them
COST = (Measure.MEAN_RETENTION, Measure.TFLOPS_EXACT, Measure.SAMPLES_PER_S, Measure.SPEEDUP)


def described() -> str:
    """Every measure in a line, for MLflow's run description."""
    return "; ".join(f"`{m}` ({m.meaning}{', ' + m.unit if m.unit else ''})" for m in Measure)
