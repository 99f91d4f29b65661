"""lmms-eval task YAMLs for the eight benchmarks on local data, plus easy-VQA.

Point lmms-eval at this folder with `--include_path`, or load one with `gprune.benchmarks.load_task`.
Each task file's `metadata` is the one home of what this project adds about its benchmark: its primary
metric, the unit a paired comparison resamples and the statistic that recomputes the metric on units.
"""

from functools import cache
from pathlib import Path

import yaml

TASKS_DIR = Path(__file__).parent


class DataLayoutError(FileNotFoundError):
    """A benchmark's local data is missing or unusable (raised before any model work, naming the fix)."""


class _TagBlindLoader(yaml.SafeLoader):
    """Reads a task file without resolving its `!function` tags (that would import lmms-eval)."""


_TagBlindLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


@cache
def _task_file(task: str) -> dict:
    return yaml.load((TASKS_DIR / f"{task}.yaml").read_text(), Loader=_TagBlindLoader)


def declared(task: str) -> dict:
    """The `metadata` section of task `task`'s YAML file."""
    return _task_file(task)["metadata"]


def metric_names(task: str) -> list[str]:
    """The metrics task `task` reports, as its process_results names them."""
    return [m["metric"] for m in _task_file(task)["metric_list"]]
