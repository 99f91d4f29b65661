"""How a generated answer becomes the text that is scored, and how long it may grow.

The defaults are lmms-eval's own llava_hf loop, so a score here compares with a published lmms-eval
score: the answer is scored exactly as decoded (a task's `until` strings do not cut it), a task that
sets no `max_new_tokens` allows 1024 new tokens, and `<think>` blocks stay in. Each difference is a
named option, recorded with every result: `stop_strings=cut` ends an answer at the first stop string
("Yes\\n\\nThere is..." then scores as "Yes"), `think=strip` drops reasoning blocks before scoring.
"""

import re
from dataclasses import asdict, dataclass, field

STOP_STRINGS = ("keep", "cut")
THINK = ("keep", "strip")
THINK_BLOCK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)  # an unclosed block runs to the end


@dataclass(frozen=True)
class AnswerRules:
    stop_strings: str = field(default="keep", metadata={
        "help": "a task's stop strings: keep (lmms-eval's llava_hf: the answer is scored as generated) or cut "
                "(the answer ends at the first one, whitespace stripped)",
        "choices": STOP_STRINGS})
    default_max_new_tokens: int = field(default=1024, metadata={
        "help": "new-token limit for a task that sets none (lmms-eval's llava_hf: 1024); --max-new-tokens caps both"})
    think: str = field(default="keep", metadata={
        "help": "<think>...</think> blocks: keep (lmms-eval's llava_hf) or strip before scoring (reasoning models)",
        "choices": THINK})

    def __post_init__(self):
        if self.stop_strings not in STOP_STRINGS:
            raise ValueError(f"stop_strings={self.stop_strings!r} must be one of {', '.join(STOP_STRINGS)}")
        if self.think not in THINK:
            raise ValueError(f"think={self.think!r} must be one of {', '.join(THINK)}")
        limit = self.default_max_new_tokens
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"default_max_new_tokens={limit!r} must be an integer >= 1")

    def finish(self, text: str, stops: list[str]) -> str:
        """The answer that is scored, from the decoded new tokens."""
        if self.think == "strip":
            text = THINK_BLOCK.sub("", text).strip()
        if self.stop_strings == "cut":
            for stop in stops:
                text = text.split(stop)[0]
            text = text.strip()
        return text

    def to_dict(self) -> dict:
        return asdict(self)
