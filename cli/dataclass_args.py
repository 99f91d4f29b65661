"""A frozen config dataclass (PruneConfig, Decoding) as command-line options: names, defaults, help and
choices all read from its fields, so none is restated here."""

import argparse
from dataclasses import MISSING, fields


def add_dataclass_args(parser: argparse.ArgumentParser, cls, title: str) -> None:
    group = parser.add_argument_group(title)
    for field in fields(cls):
        assert field.default is not MISSING, field.name
        group.add_argument(f"--{field.name}", type=type(field.default), default=field.default,
                           choices=field.metadata.get("choices"), help=field.metadata["help"])


def from_args(cls, args: argparse.Namespace):
    return cls(**{field.name: getattr(args, field.name) for field in fields(cls)})
