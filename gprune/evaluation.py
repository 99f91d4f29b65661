"""The evaluation runner: lmms-eval tasks (prompts, generation kwargs, process_results, aggregation)
driven by our own batched loop, so that every sample gets a record, a bad sample becomes a counted
error instead of a failed benchmark, and FLOPs and throughput are measured per sample."""

import contextlib
import functools
import inspect
import io
import tempfile
from types import SimpleNamespace

import datasets

from .answers import AnswerRules
from .benchmarks import NOTES, check_data, load_task, resolve_benchmarks
from .config import PruneConfig
from .decoding import Decoding
from .families import set_prune
from .figure_samples import describe_images, wanted
from .flops import exact_flops, fastv_flops
from .generation import decoding_that_runs, prepare_batch, run_batch
from .lookahead import one_ahead, pays_on, thread_processor
from .measures import Measure
from .records import BenchmarkResult, SampleRecord, batch_timing, doc_id, summarize_records
from .tasks.rows import read_sample
from .units import sample_score

TIMED = ("processor + generate() per batch, wall clock (on a GPU the processor runs one batch ahead, overlapping the "
         "batch before: its time still counts here); dataset access, image decoding and scoring excluded; "
         "samples/s is the median over batches of rows / seconds, the first batch excluded (warm-up) when there "
         "are 3 or more; spread: interquartile range / median")
PREFILL_TIMED = ("generate() start to the end of the first language-model forward (vision tower, projector, "
                 "selection, LM prefill), mean per batch")
DECODE_TIMED = "the end of that forward to the end of generate(), per decode step (one token per row), mean"
SKIPPED_METRICS = {"submission"}  # lmms-eval's submission-file writers, not scores


def process_results(task, doc, answers: list) -> dict:
    """lmms-eval's process_results without the retry around it (5 tries, 2 s apart, meant for API judges):
    these tasks score deterministically, so a row that cannot be scored fails at once, with its own error."""
    method = task.process_results
    unwrapped = getattr(method, "__wrapped__", None)  # the decorated function itself, unbound
    return unwrapped(task, doc, answers) if unwrapped is not None else method(doc, answers)


def score_record(record: SampleRecord, task, doc, prediction: str) -> None:
    """Score one prediction with the task's own process_results (lmms-eval's, never ours)."""
    record.prediction = prediction
    record.target = str(task.doc_to_target(doc))
    record.results = process_results(task, doc, [prediction])
    record.score = sample_score(task.config.metadata, record.results)


def score_failure(record: SampleRecord, task, docs) -> None:
    """A sample that failed scores as an empty answer, as lmms-eval's llava_hf scores a failed generation:
    wrong, and in the denominator. Its row is read again without decoding images (the image may be what
    failed). A row that cannot be read at all stays unscored, counted in `errors` and `unscored`."""
    try:
        lazy = docs
        for column, feature in (getattr(docs, "features", None) or {}).items():
            if isinstance(feature, datasets.Image) and feature.decode:
                lazy = lazy.cast_column(column, datasets.Image(decode=False))
        doc = lazy[record.index]
        record.target = str(task.doc_to_target(doc))
        record.results = process_results(task, doc, [""])
        record.score = sample_score(task.config.metadata, record.results)
    except Exception:
        record.results, record.score = {}, None


def flops_of(model, prune: PruneConfig):
    """(exact, FastV-convention) TFLOPs of a sample from its token counts and image layouts; each distinct sample
    shape is computed once per call of evaluate_task (the model and the config are fixed there)."""
    @functools.cache
    def flops(prefill_tokens: int, generated_tokens: int, layouts: tuple) -> tuple[float, float]:
        return (exact_flops(model.config, prefill_tokens, generated_tokens, list(layouts), prune).total / 1e12,
                fastv_flops(model.config, prefill_tokens, list(layouts), prune) / 1e12)
    return flops


def _fill(record: SampleRecord, text: str, stat: dict, doc, task, flops) -> None:
    layouts = stat["layouts"]
    try:
        score_record(record, task, doc, text)
    except Exception as error:  # the row lacks what the task's scoring reads: the data's fault, not retried
        record.error = f"data: scoring failed: {type(error).__name__}: {error}"
        return
    record.visual_tokens_kept = stat[Measure.VISUAL_TOKENS_KEPT]
    record.visual_tokens_full = sum(layout.full for layout in layouts)
    record.prefill_tokens = stat["prefill_tokens"]
    record.generated_tokens = stat["generated_tokens"]
    record.tflops_exact, record.tflops_fastv = flops(stat["prefill_tokens"], stat["generated_tokens"], tuple(layouts))


def aggregate(task, records: list[SampleRecord]) -> tuple[dict, dict]:
    """lmms-eval's own aggregation of each metric over every scored record (failures score as wrong)."""
    metrics, errors = {}, {}
    # Some aggregations write report files and print tables: keep both out of our way.
    with tempfile.TemporaryDirectory() as scratch, contextlib.redirect_stdout(io.StringIO()):
        args = SimpleNamespace(output_path=scratch)
        for metric, function in task.aggregation().items():
            values = [r.results[metric] for r in records if metric in r.results]
            if metric in SKIPPED_METRICS or not values:
                continue
            try:
                takes_args = len(inspect.signature(function).parameters) == 2
                metrics[metric] = function(values, args) if takes_args else function(values)
            except Exception as error:  # e.g. MME's pairwise check when a pair lost one question
                errors[metric] = f"{type(error).__name__}: {error}"
    return metrics, errors


def evaluate_task(model, processor, task, limit=None, batch_size=1, max_new_tokens=None, name=None,
                  offset=0, decoding: Decoding | None = None, answers: AnswerRules | None = None,
                  lookahead: bool | None = None, progress=None) -> BenchmarkResult:
    """Run samples [offset, offset + limit) of one lmms-eval task's test split through the model
    (with its current pruning config). `lookahead`: read and process each batch on a thread while the one before
    runs (gprune.lookahead); None: where the model is not on the CPU. `progress(total)` is called once with the
    samples to run and returns a callable given each batch's samples as it ends (a progress bar), or is None."""
    prune = model.model.pruning.prune
    docs = task.test_docs()
    end = len(docs) if limit is None else min(offset + limit, len(docs))
    records = [SampleRecord(index=i) for i in range(offset, end)]
    count = len(records)
    gen_kwargs = dict(task.config.generation_kwargs or {})
    decoding, answers = decoding or Decoding(), answers or AnswerRules()
    folder = getattr(task, "local_folder", None)  # image paths must stay under it
    model_seconds, timed = 0.0, []
    flops = flops_of(model, prune)

    ahead = pays_on(model.device) if lookahead is None else lookahead
    preparing = thread_processor(processor) if ahead else processor

    def prepare(chunk):  # on a GPU, on the lookahead thread (gprune.lookahead): host work only
        batch = read_rows(task, docs, chunk, folder)
        try:
            return batch, prepare_batch(preparing, [b[2] for b in batch], [b[3] for b in batch], gen_kwargs,
                                        max_new_tokens, answers) if batch else None
        except Exception as error:  # the processor refused one of them: the batch is run sample by sample
            return batch, error

    def run(batch, prepared):  # batch: [(record, doc, visuals, text)]
        nonlocal model_seconds
        figures = any(wanted(b[0].index) for b in batch)
        model.model.pruning.trace = [] if figures else None
        try:
            out = run_batch(model, processor, prepared, decoding, answers)
        finally:
            traced, model.model.pruning.trace = model.model.pruning.trace, None
        model_seconds += out.seconds
        timed.append(out)
        images = sum(len(b[2]) for b in batch)
        traced = traced[-images:] if traced and len(traced) >= images else []  # the last encoding: in order
        for (record, doc, visuals, _), text, stat in zip(batch, out.texts, out.stats):
            _fill(record, text, stat, doc, task, flops)
            if figures:
                mine, traced = traced[:len(visuals)], traced[len(visuals):]
                if wanted(record.index):
                    record.images = describe_images(visuals, stat["image_sizes"], stat["layouts"], mine, prune)

    chunks = [records[start : start + batch_size] for start in range(0, count, batch_size)]
    fallbacks = []  # each batch that failed and ran again sample by sample: its error
    advance = progress(count) if progress is not None else None
    batches = one_ahead(chunks, prepare, ahead)  # on a GPU the next batch is read as this runs
    for chunk, ((batch, prepared), _) in zip(chunks, batches):
        try:
            if isinstance(prepared, Exception):
                raise prepared
            if batch:
                run(batch, prepared)
        except Exception as error:
            fallbacks.append(f"{type(error).__name__}: {error}"[:300])
            for item in batch:  # find the sample that broke the batch; the others still count
                try:
                    run([item], prepare_batch(processor, [item[2]], [item[3]], gen_kwargs, max_new_tokens, answers))
                except Exception as error:
                    item[0].error = f"model: {type(error).__name__}: {error}"
        if advance is not None:
            advance(len(chunk))

    for record in records:
        if record.error is not None:
            score_failure(record, task, docs)
    metrics, aggregation_errors = aggregate(task, records)
    name = name or task.config.task
    return BenchmarkResult(
        benchmark=name, task=task.config.task, metrics=metrics, note=NOTES.get(name, ""), prune=prune.to_dict(),
        **summarize_records(records, model_seconds, [len(t.texts) / t.seconds for t in timed]),
        **batch_timing(len(timed), sum(t.prefill_seconds for t in timed), sum(t.decode_seconds for t in timed),
                       sum(t.decode_steps for t in timed)),
        throughput={"device": str(model.device), "dtype": str(model.dtype).removeprefix("torch."),
                    "batch_size": batch_size, "decoding": decoding_that_runs(decoding, prune).describe(model.device),
                    "timed": TIMED, "prefill_timed": PREFILL_TIMED, "decode_timed": DECODE_TIMED},
        answers=answers.to_dict(), aggregation_errors=aggregation_errors, records=records,
        batch_fallbacks=len(fallbacks), fallback_errors=fallbacks,
    )


def read_rows(task, docs, records: list[SampleRecord], folder) -> list[tuple]:
    """(record, doc, visuals, text) for each record whose row reads; a row that does not (reading decodes its
    image: a corrupt file fails here) becomes that record's error."""
    batch = []
    for record in records:
        try:
            doc, visuals, text, record.truncated_image = read_sample(task, docs, record.index, folder)
            record.doc_id, record.question = doc_id(doc), text
            batch.append((record, doc, visuals, text))
        except Exception as error:
            record.error = f"data: {type(error).__name__}: {error}"
    return batch


def evaluate(model, processor, benchmarks=("easyvqa",), prune: PruneConfig | None = None, limit=None,
             batch_size=1, data_dir=None, max_new_tokens=None, decoding: Decoding | None = None,
             answers: AnswerRules | None = None, progress=None) -> dict[str, BenchmarkResult]:
    """Evaluate on each benchmark (names, or "all"); `prune`, if given, is set on the model first.
    Missing or misplaced data fails here, before any model work. `progress(name, total)`: see evaluate_task."""
    names = resolve_benchmarks(benchmarks)
    check_data(names, data_dir)
    if prune is not None:
        set_prune(model, processor, prune)
    return {
        name: evaluate_task(model, processor, load_task(name, data_dir), limit, batch_size, max_new_tokens, name,
                            decoding=decoding, answers=answers,
                            progress=None if progress is None else functools.partial(progress, name))
        for name in names
    }

