"""`gprune`: a pruned model of any family as an lmms-eval model (also under each family's name: `gprune_llava_next`,
`gprune_llava`, `gprune_qwen2_5_vl`, `gprune_llava_onevision`; the checkpoint's config.json says which it is).

    python -m lmms_eval --model gprune_llava_next \\
        --model_args pretrained=tiny,method=gprune,ratio=0.7,threshold=0.5,iterations=5 \\
        --tasks textvqa_val_local --include_path gprune/tasks --batch_size 4

Registered through the `lmms_eval.models` entry point (`gprune.lmms_entry`, see pyproject.toml). `generate_until`
batches requests with left padding (same answers as batch 1; on a GPU each batch read and processed on a thread
while the one before runs, gprune.lookahead), honours each task's generation kwargs
(stop strings as gprune.answers.AnswerRules says: by default, as lmms-eval's llava_hf), and keeps
per-request token counts in `self.records` for FLOPs accounting.
"""

from dataclasses import fields

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from lmms_eval.utils import Collator

from .answers import AnswerRules
from .config import PruneConfig
from .generation import prepare_batch, run_batch
from .loading import load_model
from .lookahead import one_ahead, pays_on, thread_processor


class GPruneModel(lmms):
    def __init__(self, pretrained: str = "tiny", batch_size: int | str = 1, device: str | None = None,
                 dtype: str | None = None, max_new_tokens: int | None = None, stop_strings: str = "keep",
                 reasoning_tags: str = "keep", default_max_new_tokens: int = 1024, **prune_args) -> None:
        super().__init__()
        known = {f.name: f.type for f in fields(PruneConfig)}  # method, ratio and every method's parameters
        unknown = sorted(set(prune_args) - set(known))
        if unknown:
            raise ValueError(f"gprune: unknown model_args {unknown}")
        prune = PruneConfig(**{name: known[name](value) for name, value in prune_args.items()})
        self.model, self.processor = load_model(str(pretrained), prune=prune, device=device, dtype=dtype)
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens) if max_new_tokens else None
        # Reasoning blocks are lmms-eval's to strip here (its --reasoning_tags): stripping them again would
        # ignore a user's `--reasoning_tags none`.
        self.answers = AnswerRules(stop_strings, int(default_max_new_tokens), reasoning_tags)
        self.records: list[dict] = []  # per request, in request order: token counts for FLOPs

    def generate_until(self, requests: list[Instance]) -> list[str]:
        # lmms-eval's Collator: batches share generation kwargs; longest prompts first.
        order = Collator([r.args for r in requests], lambda args: (-len(args[0]), args[0]), grouping=True)
        ahead = pays_on(self.model.device)  # on a GPU the next batch's images and processor run on a thread
        preparing = thread_processor(self.processor) if ahead else self.processor

        def prepare(chunk):
            contexts, gen_kwargs, doc_to_visual, doc_ids, tasks, splits = zip(*chunk)
            docs = [self.task_dict[task][split][doc_id] for task, split, doc_id in zip(tasks, splits, doc_ids)]
            visuals = [to_visual(doc) for to_visual, doc in zip(doc_to_visual, docs)]
            return prepare_batch(preparing, visuals, list(contexts), dict(gen_kwargs[0]), self.max_new_tokens,
                                 self.answers, device=None if ahead else self.model.device)

        answers, records = [], []
        for prepared, _ in one_ahead(list(order.get_batched(n=self.batch_size)), prepare, ahead):
            out = run_batch(self.model, self.processor, prepared, answers=self.answers)
            answers.extend(out.texts)
            records.extend(out.stats)
        self.records.extend(order.get_original(records))
        return order.get_original(answers)

    def clean(self) -> None:
        """lmms-eval calls this after generation and its default deletes the model. Ours stays
        resident: a sweep evaluates many pruning configs on one loaded model."""

    def loglikelihood(self, requests):
        raise NotImplementedError(
            "gprune scores generate_until tasks only: the G-Prune benchmarks (GQA, VQAv2, MME, POPE, "
            "MMBench, ChartQA, DocVQA, TextVQA) are all generative; use a task with output_type generate_until"
        )

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("gprune does not implement multi-round generation")
