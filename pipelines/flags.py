"""Command-line flags generated from frozen dataclasses: one definition per setting.

A ``Flag`` names the dataclass field it sets (a dotted path, e.g. ``"decode.fps"``);
its argparse default is read from a defaults instance of that dataclass, so no default
is written a second time. ``add_flags`` puts a table of flags on a parser; ``from_args``
turns the parsed values back into a copy of the defaults instance, replacing every
nested dataclass once, with all of its changes at a time (so validation that relates
two fields, such as ``min_s <= max_s``, sees the final values).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Flag:
    """One command-line option bound to dataclass fields.

    Attributes:
        name: the option, e.g. ``--fps``; its argparse ``dest`` follows from it.
        path: dotted path of the field it sets (e.g. ``decode.fps``); it gives the default.
        also: paths of more fields set to the same value (their defaults must agree).
        help: the help line.
        choices: allowed values, if limited.
        negate: a ``--no-...`` switch for a bool field that is True by default.
        switch: an on switch for a bool field that is False by default.
        value_type: the argparse type where the default is None (else the default's type).
        optional: the field takes None, spelled ``''`` on the command line.
        repeat: the option may be given several times; the field holds a tuple.
        parse: turns the argparse value into the field's value (after ``value_type``).
        show: turns the field's default into the argparse default (the inverse of parse).
    """

    name: str
    path: str
    help: str
    also: tuple[str, ...] = ()
    choices: tuple[Any, ...] | None = None
    negate: bool = False
    switch: bool = False
    value_type: Callable[[str], Any] | None = None
    optional: bool = False
    repeat: bool = False
    parse: Callable[[Any], Any] | None = None
    show: Callable[[Any], Any] | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path, *self.also)

    @property
    def dest(self) -> str:
        return self.name.lstrip("-").replace("-", "_")

    def default(self, defaults: object) -> Any:
        return field_value(defaults, self.path)

    def add_to(self, parser: Any, defaults: object) -> None:
        default = self.default(defaults)
        if self.negate and default is not True:
            raise ValueError(f"{self.name}: a --no-... flag needs a True default, got {default!r}")
        if self.repeat and default != ():
            raise ValueError(f"{self.name}: a repeated flag needs the default (), got {default!r}")
        if self.negate or self.switch:
            parser.add_argument(self.name, action="store_true", help=self.help)
            return
        if self.repeat:
            parser.add_argument(self.name, action="append", default=[], help=self.help)
            return
        shown = self.show(default) if self.show else default
        kind = self.value_type or (type(shown) if shown is not None else str)
        kwargs: dict[str, Any] = {"default": shown, "help": self.help}
        if self.choices is not None:
            kwargs["choices"] = self.choices
        if kind is not str:
            kwargs["type"] = kind
        parser.add_argument(self.name, **kwargs)

    def value(self, parsed: Any) -> Any:
        """The field value of the argparse value ``parsed``."""
        if self.negate:
            return not parsed
        if self.switch:
            return bool(parsed)
        if self.repeat:
            return tuple(parsed)
        if self.optional and parsed in ("", None):
            return None
        return self.parse(parsed) if self.parse else parsed


def add_flags(parser: Any, flags: Iterable[Flag], defaults: object) -> None:
    """Add ``flags`` to ``parser`` (argparse), each with its default read from ``defaults``."""
    for flag in flags:
        flag.add_to(parser, defaults)


def from_args(args: argparse.Namespace, flags: Iterable[Flag], defaults: T) -> T:
    """A copy of ``defaults`` with the value of every flag in ``flags`` from ``args``."""
    changes: dict[str, Any] = {}
    for flag in flags:
        value = flag.value(getattr(args, flag.dest))
        for path in flag.paths:
            changes[path] = value
    return replace_fields(defaults, changes)


def field_value(obj: object, path: str) -> Any:
    """``obj.a.b`` for ``path`` ``"a.b"``."""
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def replace_fields(obj: T, changes: Mapping[str, Any]) -> T:
    """A copy of the frozen dataclass ``obj`` with the dotted-path fields in ``changes``.

    Each nested dataclass is replaced once with all of its changes.
    """
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in changes.items():
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, inner in nested.items():
        direct[head] = replace_fields(getattr(obj, head), inner)
    return dataclasses.replace(obj, **direct) if direct else obj  # type: ignore[type-var]


def parser_with(description: str | None, *adders: Callable[[Any], None]) -> argparse.ArgumentParser:
    """A parser for a ``python -m`` entry point, with the arguments of each adder."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for add in adders:
        add(parser)
    return parser


def split_csv(text: str) -> tuple[str, ...]:
    """``"agent, customer"`` -> ``("agent", "customer")``."""
    return tuple(part.strip() for part in text.split(","))
