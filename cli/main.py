"""`gprune`: one parser with a sub-command per task; bad input ends in one line on stderr, exit 2.

Only the module of the command given is imported (cli/commands.py): `gprune --help`, and a mistyped
command, answer without loading torch, lmms-eval, Ray or MLflow."""

import argparse
import importlib
import os
import secrets
import sys
from importlib.metadata import version


def private_ray_auth(argv: list[str]) -> None:
    """A sweep that starts its own Ray cluster (no --address) gets token auth with a fresh random token.
    Ray's servers listen on every interface (Ray 2.60 has no loopback-only option), so without it anyone
    who can reach the machine could run code on it. Ray reads its auth mode once, when it is first
    imported: this runs before any command module imports it. An explicit RAY_AUTH_MODE is respected,
    and joining a cluster (--address) keeps that cluster's own settings."""
    joins = any(arg == "--address" or arg.startswith("--address=") for arg in argv)
    if argv[:1] == ["sweep"] and not joins and "RAY_AUTH_MODE" not in os.environ:
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser with every command's options, or, given the arguments, with only the given command's
    (the others as their one-line help: enough to list them and to refuse a mistyped one)."""
    from .commands import COMMANDS

    parser = argparse.ArgumentParser(prog="gprune", description="G-Prune evaluation and sweep service "
                                     "(docs/ARCHITECTURE.md); `gprune COMMAND -h` shows each command's options")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('gprune-sweep')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    given = next((a for a in argv if not a.startswith("-")), None) if argv is not None else None
    if argv is None:
        modules = {module for module, _ in COMMANDS.values()}
    else:
        modules = {COMMANDS[given][0]} if given in COMMANDS else set()
    built = set()
    for name, (module, help_text) in COMMANDS.items():
        if module in modules and module not in built:
            importlib.import_module(f"cli.{module}").register(commands)  # all of that module's commands
            built.add(module)
        elif module not in modules:
            commands.add_parser(name, help=help_text)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    private_ray_auth(argv)
    try:
        args = build_parser(argv).parse_args(argv)
    except SystemExit as stop:  # usage errors (exit 2), --help and --version (exit 0)
        return stop.code if isinstance(stop.code, int) else 2
    import datasets
    from loguru import logger

    logger.disable("lmms_eval")  # its task-loading chatter would bury our table
    datasets.disable_progress_bars()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per records.json otherwise
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
