"""A frozen config dataclass (PruneConfig, Decoding) as command-line options: names, defaults, help and
choices all read from its fields, so none is restated here. An option left out is None in the parsed
arguments (its field's default applies), so what the user gave can be told from what was defaulted."""

import argparse
from dataclasses import MISSING, fields


def add_dataclass_args(parser: argparse.ArgumentParser, cls, title: str) -> None:
    group = parser.add_argument_group(title)
    for field in fields(cls):
        assert field.default is not MISSING, field.name
        group.add_argument(f"--{field.name}", type=type(field.default), default=None,
                           choices=field.metadata.get("choices"),
                           help=f"{field.metadata['help']} (default: {field.default})")


def given_args(cls, args: argparse.Namespace) -> set[str]:
    """The fields of `cls` the command line set."""
    return {field.name for field in fields(cls) if getattr(args, field.name) is not None}


def from_args(cls, args: argparse.Namespace):
    return cls(**{field.name: getattr(args, field.name) for field in fields(cls) if getattr(args, field.name)
                  is not None})
