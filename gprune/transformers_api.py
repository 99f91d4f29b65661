"""The transformers this project is tested against. The pruned LLaVA-NeXT reaches into transformers' internals
(gprune/model.py swaps classes and overrides private methods; gprune/lm_pruning.py runs the decoder layers), so
another minor release may compute something else without an error: outside the tested range a warning says so,
and tests/test_transformers_api.py fails."""

import warnings

import transformers
from packaging.specifiers import SpecifierSet
from packaging.version import Version

TESTED = SpecifierSet(">=5.24,<5.25")  # keep in step with pyproject.toml's transformers pin


def tested(version: str = transformers.__version__) -> bool:
    return Version(version) in TESTED


def warn_if_untested() -> None:
    if not tested():
        warnings.warn(f"transformers {transformers.__version__} is outside the range G-Prune is tested with "
                      f"({TESTED}): the pruned model reaches into transformers' internals and may compute something "
                      f"else; install transformers{TESTED}", stacklevel=2)
