"""Every `gprune` command: the module that builds its options and runs it, and its one-line help.

Light on purpose: `gprune --help` and a mistyped command are answered from this table alone; a command's
module (and the torch, lmms-eval, Ray or MLflow it needs) is imported only when that command is given.
"""

COMMANDS = {
    "eval": ("library", "evaluate one pruning config on benchmarks"),
    "fixtures": ("library", "write small benchmark fixtures in the real schemas"),
    "train-tiny": ("library", "train the small model behind --model tiny, on CPU"),
    "benchmarks": ("library", "list the benchmarks, their tasks, metrics and data"),
    "methods": ("library", "list the token-reduction methods and their parameters"),
    "sweep": ("sweeps", "sweep pruning configs with Ray Tune, tracked in MLflow"),
    "presets": ("sweeps", "list the embedded sweep files"),
    "doctor": ("sweeps", "check what a sweep would use: the Ray cluster (nodes, GPUs, auth) and the tracking store"),
    "report": ("dashboards", "Table 1, Figure 3, Table 3 and a paired bootstrap for a sweep"),
    "samples": ("dashboards", "write a logged run's records as lmms-eval's samples JSONL (one file per benchmark)"),
    "ui": ("dashboards", "the MLflow UI on a tracking store, bound to 127.0.0.1 by default"),
    "regress": ("regress", "run a regression suite against its pinned reference (exit 0 passed, 1 regressed, "
                           "3 the run failed, 4 not comparable)"),
    "schedule": ("regress", "run a regression suite on a cron schedule (APScheduler)"),
}


def add_command(commands, name: str, **kwargs):
    """The sub-parser of command `name`, with its help from the table."""
    return commands.add_parser(name, help=COMMANDS[name][1], **kwargs)
