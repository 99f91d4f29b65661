"""`gprune`: one parser with a sub-command per task; bad input ends in one line on stderr, exit 2."""

import argparse
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


def build_parser() -> argparse.ArgumentParser:
    from . import dashboards, library, regress, sweeps

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
    private_ray_auth(sys.argv[1:] if argv is None else list(argv))
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
