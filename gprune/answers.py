"""How a generated answer becomes the text that is scored, and how long it may grow.

The defaults are what a user of lmms-eval's CLI gets with its llava_hf model, so a score here compares
with a published lmms-eval score: the answer is scored as decoded (a task's `until` strings do not cut
it), a task that sets no `max_new_tokens` allows 1024 new tokens, and reasoning blocks are stripped as
the CLI's `--reasoning_tags` default does (`<think>...</think>`, `<analysis>...</analysis>`, by lmms-eval's
own function, which also trims surrounding whitespace). Each difference is a named option, recorded with
every result: `stop_strings=cut` ends an answer at the first stop string ("Yes\\n\\nThere is..." then
scores as "Yes"), `reasoning_tags=keep` scores the blocks with the answer (`--reasoning_tags none`).
"""

from dataclasses import asdict, dataclass, field

STOP_STRINGS = ("keep", "cut")
REASONING_TAGS = ("strip", "keep")
# lmms-eval's CLI default for `--reasoning_tags` (lmms_eval/__main__.py).
LMMS_EVAL_REASONING_TAGS = [["<think>", "</think>"], ["<analysis>", "</analysis>"]]


@dataclass(frozen=True)
class AnswerRules:
    stop_strings: str = field(default="keep", metadata={
        "help": "a task's stop strings: keep (lmms-eval's default: the answer is scored as generated) or cut "
                "(the answer ends at the first one, whitespace stripped)",
        "choices": STOP_STRINGS})
    default_max_new_tokens: int = field(default=1024, metadata={
        "help": "new-token limit for a task that sets none (lmms-eval's default: 1024); --max-new-tokens caps both"})
    reasoning_tags: str = field(default="strip", metadata={
        "help": "<think>/<analysis> blocks: strip before scoring (lmms-eval's CLI default, its own function) or keep "
                "(its --reasoning_tags none)",
        "choices": REASONING_TAGS})

    def __post_init__(self):
        if self.stop_strings not in STOP_STRINGS:
            raise ValueError(f"stop_strings={self.stop_strings!r} must be one of {', '.join(STOP_STRINGS)}")
        if self.reasoning_tags not in REASONING_TAGS:
            raise ValueError(f"reasoning_tags={self.reasoning_tags!r} must be one of {', '.join(REASONING_TAGS)}")
        limit = self.default_max_new_tokens
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"default_max_new_tokens={limit!r} must be an integer >= 1")

    def finish(self, text: str, stops: list[str]) -> str:
        """The answer that is scored, from the decoded new tokens."""
        if self.reasoning_tags == "strip":
            from lmms_eval.api.reasoning import strip_reasoning_tags

            text = strip_reasoning_tags(text, LMMS_EVAL_REASONING_TAGS)
        if self.stop_strings == "cut":
            for stop in stops:
                text = text.split(stop)[0]
            text = text.strip()
        return text

    def to_dict(self) -> dict:
        return asdict(self)
