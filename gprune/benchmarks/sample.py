from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sample:
    """One benchmark question. `image` is a path or a PIL image, opened by the runner so that an
    unreadable file becomes one error record instead of a failed benchmark."""

    id: str
    image: Any
    question: str
    target: str
