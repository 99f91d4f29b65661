"""The benchmarks by name: which lmms-eval task runs each, and whether its data is in place.

Light to import (no lmms-eval until a task is loaded): the command line lists benchmarks from it."""

from .tasks import TASKS_DIR, DataLayoutError, declared

TASKS = {
    "gqa": "gqa_local",
    "vqav2": "vqav2_val_local",
    "mme": "mme_local",
    "pope": "pope_local",
    "mmbench": "mmbench_en_dev_local",
    "chartqa": "chartqa_local",
    "docvqa": "docvqa_val_local",
    "textvqa": "textvqa_val_local",
    "easyvqa": "easyvqa",
}
# The metric each benchmark's headline number (and a sweep's retention) is measured on, as in the
# paper's Table 1: declared in its task file, with the unit and statistic of paired comparisons.
PRIMARY = {name: declared(task)["primary"] for name, task in TASKS.items()}
# lmms-eval's own task of the same data: its `--log_samples` files are named after it.
UPSTREAM = {name: declared(task)["upstream"] for name, task in TASKS.items() if "upstream" in declared(task)}
# How to read each benchmark's numbers, printed with its results.
NOTES = {name: declared(task)["note"] for name, task in TASKS.items() if "note" in declared(task)}


def resolve_benchmarks(names) -> list[str]:
    """Names from a list or a comma-separated string; `all` means all nine."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = list(names)
    if not names:
        raise ValueError(f"no benchmark named; choose from {', '.join(TASKS)} or all")
    if names == ["all"]:
        return list(TASKS)
    unknown = [n for n in names if n not in TASKS]
    if unknown:
        raise ValueError(f"benchmark(s) {', '.join(map(repr, unknown))} unknown; choose from {', '.join(TASKS)} or all")
    return list(names)


def task_config(name: str) -> dict:
    """The task's YAML with its `!function`s resolved (imports lmms-eval: only when a task is used)."""
    from lmms_eval.utils import load_yaml_config

    return load_yaml_config(str(TASKS_DIR / f"{TASKS[name]}.yaml"))


def check_data(names, data_dir=None) -> None:
    """Fail before any model work if a benchmark's local data is missing, listing every problem."""
    problems = []
    for name in resolve_benchmarks(names):
        config = task_config(name)
        try:
            config["class"].check_data(config, data_dir)
        except DataLayoutError as error:
            problems.append(f"{name}: {error}")
    if problems:
        raise DataLayoutError("benchmark data missing or unusable:\n  " + "\n  ".join(problems))


def load_task(name: str, data_dir=None):
    """The lmms-eval task object for benchmark `name`, reading its data under `data_dir`."""
    config = task_config(name)
    return config["class"](config=config, data_dir=data_dir)
