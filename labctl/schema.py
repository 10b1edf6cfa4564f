"""Declarative, bounded validation of data read from YAML (station files, plans).

A schema is a tree of :class:`Field` objects. ``field.check(value, path)``
returns the value (mappings as new dicts) or raises :class:`Invalid` with the
key path and a one-line problem (``must be within 0…1372 °C, got inf``).
Numbers are finite and bounded, ``bool`` is not a number, unknown keys get a
"did you mean". :meth:`Field.describe` gives the type and range for docs.
"""

from __future__ import annotations

import difflib
import math
import re
import reprlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The field's default, documented only (the driver or simulator applies its own).
NO_DEFAULT: Any = type("NoDefault", (), {"__repr__": lambda self: "—"})()


class Invalid(Exception):
    """A value does not fit its field: ``path`` is the key path, ``message`` the problem.

    ``line_path`` is the key path whose line best locates the problem (for an
    unknown key: the key itself; default: ``path``).
    """

    def __init__(self, path: Sequence[Any], message: str, line_path: Sequence[Any] | None = None):
        self.path = tuple(path)
        self.message = message
        self.line_path = tuple(line_path) if line_path is not None else self.path
        super().__init__(f"{dotted(self.path)}: {message}" if self.path else message)


def dotted(path: Sequence[Any]) -> str:
    """``("instruments", "furnace", "options")`` → ``instruments.furnace.options``."""
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")


_repr = reprlib.Repr()  # keyword arguments only from Python 3.12
_repr.maxlevel, _repr.maxstring, _repr.maxother = 2, 40, 40
_repr.maxdict = _repr.maxlist = _repr.maxtuple = _repr.maxset = 3


def show(value: Any) -> str:
    """A value as the user wrote it in YAML, bounded in length (``true``, ``inf``, ``'x'``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # inf, -inf, nan
    text = _repr.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _did_you_mean(word: Any, choices: Sequence[str]) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fmt(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True, kw_only=True)
class Field:
    """Base of all fields: ``doc`` and ``default`` are for the reference tables."""

    doc: str = ""
    default: Any = NO_DEFAULT

    def check(self, value: Any, path: tuple = ()) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class Number(Field):
    """A finite real number (int or float, never bool) within [lo, hi] (ends open if asked)."""

    lo: float = -math.inf
    hi: float = math.inf
    unit: str = ""
    lo_open: bool = False
    hi_open: bool = False

    def range_text(self) -> str:
        u = f" {self.unit}" if self.unit else ""
        lo_ok, hi_ok = math.isfinite(self.lo), math.isfinite(self.hi)
        if lo_ok and hi_ok and not (self.lo_open or self.hi_open):
            return f"within {_fmt(self.lo)}…{_fmt(self.hi)}{u}"
        parts = []
        if lo_ok and self.lo == 0 and self.lo_open:
            parts.append("positive")
        elif lo_ok:
            parts.append(f"{'>' if self.lo_open else '≥'} {_fmt(self.lo)}")
        if hi_ok:
            parts.append(f"{'<' if self.hi_open else '≤'} {_fmt(self.hi)}")
        return " and ".join(parts) + u

    def check(self, value: Any, path: tuple = ()) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(path, f"must be a number {self.range_text()}, got {show(value)}")
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise Invalid(path, f"must be {self.range_text()}, got {show(value)}")
        x = float(value)
        if not math.isfinite(x):
            rng = self.range_text()
            joint = " and " if rng.startswith("within") else ", "
            raise Invalid(path, f"must be finite{joint}{rng}, got {show(value)}")
        below = x <= self.lo if self.lo_open else x < self.lo
        above = x >= self.hi if self.hi_open else x > self.hi
        if below or above:
            raise Invalid(path, f"must be {self.range_text()}, got {show(value)}")
        return value

    def describe(self) -> str:
        return f"number, {self.range_text()}"


@dataclass(frozen=True, kw_only=True)
class Integer(Field):
    """An integer (never bool, never a float) within [lo, hi]."""

    lo: int = 0
    hi: int = 2**31 - 1
    unit: str = ""

    def range_text(self) -> str:
        return f"{self.lo}…{self.hi}" + (f" {self.unit}" if self.unit else "")

    def check(self, value: Any, path: tuple = ()) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(path, f"must be an integer within {self.range_text()}, got {show(value)}")
        if not self.lo <= value <= self.hi:
            raise Invalid(path, f"must be within {self.range_text()}, got {show(value)}")
        return value

    def describe(self) -> str:
        return f"integer, {self.range_text()}"


@dataclass(frozen=True, kw_only=True)
class Choice(Field):
    """One of a fixed set of values (strings or integers; bool never matches an int).

    ``what`` names the kind of thing for the message (``unknown instrument model …``).
    """

    values: tuple = ()
    what: str = ""
    ignore_case: bool = False

    def _key(self, v: Any) -> Any:
        return v.upper() if self.ignore_case and isinstance(v, str) else v

    def check(self, value: Any, path: tuple = ()) -> Any:
        if not isinstance(value, bool) and isinstance(value, str | int):
            if any(
                type(value) is type(v) and self._key(value) == self._key(v) for v in self.values
            ):
                return value
        names = [str(v) for v in self.values]
        hint = _did_you_mean(value, names)
        if not hint and not isinstance(value, str) and str(value) in names:
            hint = f" (a number; quote it: '{value}')"
        known = ", ".join(repr(v) for v in self.values)
        if self.what:
            raise Invalid(path, f"unknown {self.what} {show(value)}{hint} (known: {known})")
        raise Invalid(path, f"must be one of {known}, got {show(value)}{hint}")

    def describe(self) -> str:
        return "one of " + ", ".join(f"`{v}`" for v in self.values)


@dataclass(frozen=True, kw_only=True)
class Flag(Field):
    """``true`` or ``false`` (not the strings, not 0/1)."""

    def check(self, value: Any, path: tuple = ()) -> Any:
        if not isinstance(value, bool):
            raise Invalid(path, f"must be true or false, got {show(value)}")
        return value

    def describe(self) -> str:
        return "true/false"


@dataclass(frozen=True, kw_only=True)
class Text(Field):
    """A string of bounded length, optionally matching ``pattern`` (explained by ``rule``)."""

    min_len: int = 1
    max_len: int = 200
    pattern: str = ""
    rule: str = ""

    def check(self, value: Any, path: tuple = ()) -> Any:
        if not isinstance(value, str):
            raise Invalid(path, f"must be a string, got {show(value)}")
        if not self.min_len <= len(value) <= self.max_len:
            raise Invalid(
                path,
                f"must be {self.min_len}…{self.max_len} characters long, got {len(value)}",
            )
        if any(not c.isprintable() and c not in "\t" for c in value):
            raise Invalid(path, f"must not contain control characters, got {show(value)}")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise Invalid(path, f"{self.rule or 'malformed'}, got {show(value)}")
        return value

    def describe(self) -> str:
        return self.rule or f"string, ≤ {self.max_len} characters"


@dataclass(frozen=True, kw_only=True)
class Null(Field):
    """``null`` (only useful inside :class:`AnyOf`)."""

    def check(self, value: Any, path: tuple = ()) -> Any:
        if value is not None:
            raise Invalid(path, f"must be null, got {show(value)}")
        return None

    def describe(self) -> str:
        return "null"


@dataclass(frozen=True, kw_only=True)
class AnyOf(Field):
    """The first alternative that accepts the value; else one message listing them all."""

    options: tuple[Field, ...] = ()
    rule: str = ""  # how to say the alternatives together (default: each one's description)

    def check(self, value: Any, path: tuple = ()) -> Any:
        for option in self.options:
            try:
                return option.check(value, path)
            except Invalid:
                continue
        raise Invalid(path, f"must be {self.describe()}, got {show(value)}")

    def describe(self) -> str:
        return self.rule or " or ".join(o.describe() for o in self.options)


Check = Callable[[dict, tuple], None]


@dataclass(frozen=True, kw_only=True)
class Record(Field):
    """A mapping with known keys: unknown keys refused (with a "did you mean"),
    required keys enforced, every value checked by its field, then ``checks``
    (cross-field rules, each ``check(values, path)`` raising :class:`Invalid`).

    ``null`` counts as an empty mapping when ``null_is_empty``.
    """

    fields: dict[str, Field] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    checks: tuple[Check, ...] = ()
    null_is_empty: bool = True

    def check(self, value: Any, path: tuple = ()) -> dict:
        if value is None and self.null_is_empty:
            value = {}
        if not isinstance(value, dict):
            raise Invalid(path, f"must be a mapping of keys to values, got {show(value)}")
        out: dict = {}
        for key, item in value.items():
            spec = self.fields.get(key) if isinstance(key, str) else None
            if spec is None:
                known = ", ".join(self.fields) or "none"
                hint = _did_you_mean(key, list(self.fields))
                raise Invalid(
                    path,
                    f"unknown key {show(key)}{hint or f' (known: {known})'}",
                    line_path=(*path, key),
                )
            out[key] = spec.check(item, (*path, key))
        missing = [k for k in self.fields if k in self.required and k not in out]
        if missing:
            raise Invalid(path, f"missing required key {missing[0]!r}")
        for rule in self.checks:
            rule(out, path)
        return out

    def describe(self) -> str:
        return "mapping"


@dataclass(frozen=True, kw_only=True)
class MapOf(Field):
    """A mapping of user-chosen names (checked by ``key``) to values of one field.

    ``value`` is a field or a function ``name → field`` (a value's shape may
    depend on its name).
    """

    key: Field = Text()
    value: Field | Callable[[str], Field] = Field()
    min_items: int = 0
    max_items: int = 64
    checks: tuple[Check, ...] = ()

    def check(self, value: Any, path: tuple = ()) -> dict:
        if not isinstance(value, dict):
            raise Invalid(path, f"must be a mapping of names to entries, got {show(value)}")
        if not self.min_items <= len(value) <= self.max_items:
            raise Invalid(
                path, f"must have {self.min_items}…{self.max_items} entries, got {len(value)}"
            )
        out: dict = {}
        for name, item in value.items():
            try:
                self.key.check(name, (*path, name))
            except Invalid as exc:
                raise Invalid(path, f"name {show(name)}: {exc.message}", (*path, name)) from None
            spec = self.value if isinstance(self.value, Field) else self.value(name)
            out[name] = spec.check(item, (*path, name))
        for rule in self.checks:
            rule(out, path)
        return out

    def describe(self) -> str:
        return "mapping of names"
