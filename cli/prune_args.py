"""PruneConfig as command-line options: names, defaults, help and choices all read from its fields."""

import argparse
from dataclasses import MISSING, fields

from gprune.config import PruneConfig


def add_prune_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pruning (gprune.PruneConfig)")
    for field in fields(PruneConfig):
        assert field.default is not MISSING, field.name
        group.add_argument(f"--{field.name}", type=type(field.default), default=field.default,
                           choices=field.metadata.get("choices"), help=field.metadata["help"])


def prune_from_args(args: argparse.Namespace) -> PruneConfig:
    return PruneConfig(**{field.name: getattr(args, field.name) for field in fields(PruneConfig)})
