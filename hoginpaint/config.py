"""Command-line options generated from dataclasses: the one place that turns a config dataclass into argparse.

Each configurable thing (`hoginpaint.training.TrainConfig`, `hoginpaint.evaluation.run.EvalConfig`, the CLI's
`InpaintOptions`) is a dataclass whose fields carry their default and help text (`option`); `add_options` gives
every field one ``--field_name`` flag, and `parse_config` parses and validates (the dataclass's `__post_init__`
raises ValueError; the parser turns it into its usage message and exit status 2).

One flag style everywhere: ``--snake_case`` (the diffusers / Accelerate scripts' style). Each flag also answers to
its ``--kebab-case`` spelling (``--batch-size``), hidden from ``--help``.

Field types map to argparse as: ``bool`` → ``--flag`` / ``--no-flag``; ``Literal[...]`` and string enums → choices;
``list[T]`` → one or more values; ``X | None`` → X; a field without a default → a required flag.
"""
from __future__ import annotations

import argparse
import dataclasses
import enum
import types
import typing
from typing import Any, Literal, TypeVar

ConfigT = TypeVar("ConfigT")


def option(default: Any = dataclasses.MISSING, help: str = "") -> Any:
    """A config field with its default (none: a required option) and the help text its flag shows."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def _default(config_field: dataclasses.Field) -> Any:
    if config_field.default_factory is not dataclasses.MISSING:
        return config_field.default_factory()
    return config_field.default


def add_options(parser: argparse.ArgumentParser, config_class: type) -> None:
    """One ``--name`` per field of the dataclass `config_class` (see the module docstring for the type mapping)."""
    hints = typing.get_type_hints(config_class)
    for config_field in dataclasses.fields(config_class):
        kind = hints[config_field.name]
        default = _default(config_field)
        arguments: dict[str, Any] = {"help": config_field.metadata.get("help", ""), "dest": config_field.name}
        if default is dataclasses.MISSING:
            arguments["required"] = True
        else:
            arguments["default"] = default
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # `X | None`
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        if typing.get_origin(kind) is Literal:
            arguments["choices"] = typing.get_args(kind)
        elif isinstance(kind, type) and issubclass(kind, enum.StrEnum):
            arguments.update(choices=list(kind), type=kind)
        elif typing.get_origin(kind) is list:
            arguments.update(nargs="+", type=typing.get_args(kind)[0])
        elif kind is bool:
            arguments["action"] = argparse.BooleanOptionalAction
        else:
            arguments["type"] = kind
            arguments["metavar"] = config_field.name.upper()
        flag = f"--{config_field.name}"
        parser.add_argument(flag, **arguments)
        alias = flag.replace("_", "-")
        if alias != flag:
            hidden = {**arguments, "help": argparse.SUPPRESS}
            hidden.pop("required", None)
            hidden["default"] = argparse.SUPPRESS  # the visible flag holds the default
            parser.add_argument(alias, **hidden)


def build_parser(config_class: type, prog: str | None = None, description: str | None = None
                 ) -> argparse.ArgumentParser:
    """A parser with one flag per field of `config_class`, defaults shown in ``--help``."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_options(parser, config_class)
    return parser


def parse_config(config_class: type[ConfigT], argv: list[str] | None = None,
                 parser: argparse.ArgumentParser | None = None, **parser_kwargs: Any) -> ConfigT:
    """Parse `argv` (default: sys.argv) into a validated `config_class`; a bad value exits with the usage message."""
    parser = parser or build_parser(config_class, **parser_kwargs)
    namespace = parser.parse_args(argv)
    names = {config_field.name for config_field in dataclasses.fields(config_class)}
    try:
        return config_class(**{name: value for name, value in vars(namespace).items() if name in names})
    except ValueError as error:
        parser.error(str(error))
