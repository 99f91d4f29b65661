"""`gprune`: one parser with a sub-command per task; bad input ends in one line on stderr, exit 2."""

import argparse
import sys
from importlib.metadata import version

from . import dashboards, library, regress, sweeps


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gprune", description="G-Prune evaluation and sweep service "
                                     "(docs/ARCHITECTURE.md); `gprune COMMAND -h` shows each command's options")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('gprune-sweep')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    library.register(commands)
    sweeps.register(commands)
    dashboards.register(commands)
    regress.register(commands)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # usage errors (exit 2), --help and --version (exit 0)
        return stop.code if isinstance(stop.code, int) else 2
    import datasets
    from loguru import logger

    logger.disable("lmms_eval")  # its task-loading chatter would bury our table
    datasets.disable_progress_bars()
    try:
        return args.func(args)
    except (ValueError, OSError) as error:  # bad input, missing files, unreachable stores: one message
        print(f"gprune: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before Tune took over (it handles its own): runs are closed KILLED
        print("gprune: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
