"""Checkpoints that ship with the package. `tiny/` is the small LLaVA-NeXT trained by
`gprune train-tiny` (see tiny/README.md, its model card)."""

from pathlib import Path

TINY = Path(__file__).parent / "tiny"
