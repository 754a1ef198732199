"""Parsing the command line's values: durations, JSON inputs and ``KEY=JSON`` pairs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import orjson

from perdure._operate.inputs import typed_search_attributes
from perdure.common import TypedSearchAttributes

_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str) -> timedelta:
    """``90`` (seconds), ``500ms``, ``30s``, ``5m``, ``1h30m``, ``2d``, ``1w``.

    Raises:
        ValueError: not such a duration.
    """
    s = text.strip().lower()
    try:
        return timedelta(seconds=float(s))
    except ValueError:
        pass
    pos = 0
    total = 0.0
    for match in _PART.finditer(s):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(s) or not s:
        raise ValueError(
            f"{text!r} is not a duration: write it as 90 (seconds), 500ms, 30s, 5m, 1h30m, 2d or 1w"
        )
    return timedelta(seconds=total)


class Duration(click.ParamType):  # type: ignore[type-arg]
    """A click parameter of :func:`parse_duration`'s forms."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()


def parse_json(text: str, what: str) -> Any:
    """One JSON value from the command line, or a usage error saying which option held it."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        hint = ""
        if text and text[0] not in '{["-0123456789tfn':
            hint = f" (a string is quoted in JSON: --input '\"{text}\"')"
        raise click.BadParameter(f"{what} is not valid JSON: {text!r}: {exc}{hint}") from None


def inputs(values: Sequence[str], files: Sequence[str]) -> list[Any]:
    """The arguments given as ``-i JSON`` (repeatable) or ``--input-file PATH`` (each file one
    JSON argument), in order; not both."""
    if values and files:
        raise click.UsageError("Give the arguments with --input or with --input-file, not both")
    if files:
        out = []
        for name in files:
            try:
                text = Path(name).read_text()
            except OSError as exc:
                raise click.BadParameter(f"cannot read {name}: {exc.strerror}") from None
            out.append(parse_json(text, f"--input-file {name}"))
        return out
    return [parse_json(v, "--input") for v in values]


def key_values(pairs: Sequence[str], option: str) -> dict[str, Any]:
    """``KEY=JSON`` pairs (``--memo``, ``--search-attribute``) as a dict."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{option} takes KEY=JSON, e.g. {option} customer='\"acme\"'")
        out[key] = parse_json(raw, f"{option} {key}")
    return out


def search_attributes(pairs: Sequence[str]) -> TypedSearchAttributes | None:
    """``--search-attribute KEY=JSON`` pairs, typed by their JSON value (see
    :func:`perdure._operate.inputs.typed_search_attributes`)."""
    values = key_values(pairs, "--search-attribute")
    if not values:
        return None
    try:
        return typed_search_attributes(values)
    except ValueError as exc:
        raise click.BadParameter(
            str(exc).replace("search attribute", "--search-attribute", 1)
        ) from None
