"""One sample's record, one benchmark's result over a list of them, and the counts and means that make it.

Kept free of torch and transformers: results cross Ray as these dataclasses (they pickle), and sweep trials
merge and summarise them without importing the model.
"""

import statistics
from dataclasses import asdict, dataclass, field

from .measures import Measure


@dataclass
class SampleRecord:
    index: int
    doc_id: str | None = None  # the benchmark's own id of the row (see ID_COLUMNS), to find it in the dataset
    question: str | None = None  # the task's text, as the model got it
    target: str | None = None
    prediction: str | None = None
    score: float | None = None  # its share of the primary metric (gprune.units); None only for a row never read
    visual_tokens_kept: int | None = None
    visual_tokens_full: int | None = None
    prefill_tokens: int | None = None
    generated_tokens: int | None = None
    tflops_exact: float | None = None
    tflops_fastv: float | None = None
    error: str | None = None  # "data: ..." (the row, not retried) or "model: ..." (generation)
    truncated_image: bool = False  # its image only loaded leniently (lmms-eval scores such images silently)
    results: dict = field(default_factory=dict, repr=False)  # lmms-eval process_results output
    images: list = field(default_factory=list, repr=False)  # figure samples only: see gprune.figure_samples


@dataclass
class BenchmarkResult:
    benchmark: str
    task: str
    metrics: dict  # lmms-eval's aggregated metrics, under lmms-eval's names
    note: str
    prune: dict
    samples: int
    errors: int  # failed samples, each scored as an empty (wrong) answer
    error_rate: float
    unscored: int  # failed samples whose row could not even be read: counted in errors, not in metrics
    truncated_images: int  # samples scored on a truncated image (as lmms-eval would), flagged on their records
    visual_tokens_kept: float
    visual_tokens_full: float
    tflops_exact: float  # mean per sample: exact FLOPs (2 x multiply-adds) of the whole model
    tflops_fastv: float  # mean per sample: FastV/paper convention, LM prefill MACs
    samples_per_s: float  # the median batch's rate (gprune.evaluation.TIMED)
    samples_per_s_spread: float  # interquartile range of the batch rates / their median
    batches_timed: int  # batches the median is over
    model_seconds: float  # every batch's wall time, summed
    batch_rates: list  # each batch's rows / seconds, in order
    batches: int
    prefill_seconds: float  # summed over batches (gprune.evaluation.PREFILL_TIMED)
    decode_seconds: float
    decode_steps: int
    prefill_latency_ms: float  # mean per batch
    decode_ms_per_token: float  # per decode step (gprune.evaluation.DECODE_TIMED)
    throughput: dict  # device, dtype, batch_size, decoding, what was timed
    answers: dict  # the AnswerRules the predictions were scored under
    aggregation_errors: dict = field(default_factory=dict)
    records: list[SampleRecord] = field(default_factory=list)  # empty where only the numbers are kept
    nodes: str = ""  # the Ray nodes (addresses, comma-separated) whose workers evaluated it; "" outside Ray
    batch_fallbacks: int = 0  # batches that failed and ran again sample by sample (the others' results kept)
    fallback_errors: list[str] = field(default_factory=list)  # each such batch's error

    def to_dict(self, records: bool = True) -> dict:
        """For JSON (MLflow, files); results themselves travel as they are."""
        data = asdict(self)
        if not records:
            data.pop("records")
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "BenchmarkResult":
        return cls(**{**data, "records": [SampleRecord(**r) for r in data.get("records", [])]})


ID_COLUMNS = ("question_id", "questionId", "imageId", "index")  # the benchmarks' row ids (ChartQA has none)


def field_of(record, name: str):
    """A record's field, whether it is a SampleRecord or its dict (as logged to MLflow or read from a file)."""
    return record[name] if isinstance(record, dict) else getattr(record, name)


def doc_id(doc: dict) -> str | None:
    return next((str(doc[c]) for c in ID_COLUMNS if c in doc), None)


def mean(values) -> float:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else float("nan")


def batch_timing(batches: int, prefill_seconds: float, decode_seconds: float, decode_steps: int) -> dict:
    """Totals over a run's batches and what is reported from them: mean prefill ms per batch and ms
    per decode step (one new token for every row of the batch still generating)."""
    return {
        "batches": batches, "prefill_seconds": prefill_seconds, "decode_seconds": decode_seconds,
        "decode_steps": decode_steps,
        Measure.PREFILL_LATENCY_MS: 1000 * prefill_seconds / batches if batches else float("nan"),
        Measure.DECODE_MS_PER_TOKEN: 1000 * decode_seconds / decode_steps if decode_steps else float("nan"),
    }


def throughput(batch_rates: list[float]) -> dict:
    """samples/s from each batch's own rate (its rows over its wall time), in order: the median, robust to a
    slow batch (a garbage collection, another process), with the first batch left out as warm-up when there
    are three or more; and the spread, the interquartile range over the median."""
    timed = batch_rates[1:] if len(batch_rates) >= 3 else list(batch_rates)
    if not timed:
        return {Measure.SAMPLES_PER_S: float("nan"), Measure.SAMPLES_PER_S_SPREAD: float("nan"), "batches_timed": 0}
    median = statistics.median(timed)
    low, _, high = statistics.quantiles(timed, n=4, method="inclusive") if len(timed) > 1 else (median,) * 3
    return {Measure.SAMPLES_PER_S: median, Measure.SAMPLES_PER_S_SPREAD: (high - low) / median,
            "batches_timed": len(timed)}


def summarize_records(records: list[SampleRecord], model_seconds: float, batch_rates: list[float]) -> dict:
    """Samples, errors, means over the error-free records of tokens and FLOPs, and throughput."""
    scored = [r for r in records if r.error is None]
    return {
        "samples": len(records),
        Measure.ERRORS: len(records) - len(scored),  # failed samples: scored as wrong, excluded from the means below
        Measure.ERROR_RATE: (len(records) - len(scored)) / len(records) if records else float("nan"),
        "unscored": sum(not r.results for r in records if r.error is not None),  # rows that could not be read
        Measure.TRUNCATED_IMAGES: sum(r.truncated_image for r in records),
        Measure.VISUAL_TOKENS_KEPT: mean(r.visual_tokens_kept for r in scored),
        "visual_tokens_full": mean(r.visual_tokens_full for r in scored),
        Measure.TFLOPS_EXACT: mean(r.tflops_exact for r in scored),
        Measure.TFLOPS_FASTV: mean(r.tflops_fastv for r in scored),
        **throughput(batch_rates),
        Measure.MODEL_SECONDS: model_seconds,  # every batch's wall time, summed (the warm-up batch included)
        "batch_rates": list(batch_rates),
    }
