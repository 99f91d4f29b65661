"""What a trained tiny model scores, unpruned, next to what its questions alone would score.

The question-prior baseline answers each test item with the training answer most often given to
the same prompt (the benchmark's most common answer for unseen prompts), without the image. It is
the honest "chance" for these benchmarks: anything the model scores above it came from the image.
Both are scored by the benchmarks' own lmms-eval metrics.
"""

import json
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from gprune.benchmarks import PRIMARY, load_task
from gprune.evaluation import SampleRecord, aggregate, evaluate, score_record
from gprune.loading import load_model

from ..fixtures import GENERATORS, write_fixtures
from .examples import EXCLUDED_FIXTURES

PRIOR_FILE = "question_prior.json"  # saved beside the checkpoint, for benchmarks to reuse


def question_prior(examples) -> dict[str, dict[str, str]]:
    """benchmark -> {prompt text: most common training answer, "": most common answer overall}."""
    answers = defaultdict(lambda: defaultdict(Counter))
    for e in examples:
        answers[e.source][e.text][e.answer] += 1
        answers[e.source][""][e.answer] += 1
    return {source: {text: counts.most_common(1)[0][0] for text, counts in sorted(by_text.items())}
            for source, by_text in sorted(answers.items())}


def save_prior(model_dir, prior: dict) -> None:
    (Path(model_dir) / PRIOR_FILE).write_text(json.dumps(prior, indent=1) + "\n")


def load_prior(model_dir) -> dict:
    return json.loads((Path(model_dir) / PRIOR_FILE).read_text())


def prior_score(prior: dict[str, str], name: str, data_dir=None, limit=None) -> float:
    """The benchmark's headline metric when every item gets its prompt's prior answer."""
    task = load_task(name, data_dir)
    docs = task.test_docs()
    records = []
    for index in range(len(docs) if limit is None else min(limit, len(docs))):
        doc = docs[index]
        record = SampleRecord(index=index)
        score_record(record, task, doc, prior.get(task.doc_to_text(doc), prior[""]))
        records.append(record)
    return aggregate(task, records)[0].get(PRIMARY[name])


def trained_model_report(model_dir, prior: dict, batch_size: int = 32, easyvqa_limit: int | None = None,
                         log=print) -> dict:
    """Unpruned headline metric of the checkpoint on the easy-VQA test split and on the fixture
    benchmarks it was trained for (the fixture items kept out of training), with the prior baseline."""
    model, processor = load_model(str(model_dir), device="cpu", image_backend="pil")
    rows = {}
    with tempfile.TemporaryDirectory() as fixtures:
        write_fixtures(fixtures, **EXCLUDED_FIXTURES)
        for name in ["easyvqa", *GENERATORS]:
            limit = easyvqa_limit if name == "easyvqa" else None
            result = evaluate(model, processor, [name], limit=limit, batch_size=batch_size, data_dir=fixtures)[name]
            rows[name] = {
                "metric": PRIMARY[name], "model": result.metrics.get(PRIMARY[name]), "samples": result.samples,
                "errors": result.errors, "prior": prior_score(prior[name], name, fixtures, limit),
                "samples_per_s": result.samples_per_s,
            }
            log(f"  {name:<8} {rows[name]['metric']:<21} model {rows[name]['model']:.4f}  "
                f"question prior {rows[name]['prior']:.4f}  ({result.samples} samples)")
    return {"benchmarks": rows, "fixtures": dict(EXCLUDED_FIXTURES), "batch_size": batch_size,
            "device": str(model.device)}
