"""How the ``perdure`` command prints: tables with relative times for people, JSON for
scripts, colour only on a terminal (``click.echo`` drops it elsewhere)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import click
import orjson

_STATUS_COLOURS = {
    "RUNNING": "blue",
    "COMPLETED": "green",
    "FAILED": "red",
    "TIMED_OUT": "red",
    "TERMINATED": "magenta",
    "CANCELED": "yellow",
    "CONTINUED_AS_NEW": "cyan",
}
_MAX_CELL = 60


def dump_json(value: Any) -> str:
    """JSON text of a value: datetimes as RFC 3339, dataclasses as objects, keys sorted as
    given; anything else by its ``str``."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def echo_json(value: Any, *, indent: bool = True, err: bool = False) -> None:
    """Print a value as JSON (indented for ``-o json``, one line for ``-o jsonl``)."""
    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    click.echo(orjson.dumps(value, default=str, option=option).decode(), err=err)


def status(name: str) -> str:
    """A workflow status, coloured."""
    return click.style(name, fg=_STATUS_COLOURS.get(name))


def relative(moment: datetime | None, now: datetime | None = None) -> str:
    """``3 minutes ago``, ``in 2 hours``, ``just now``; ``-`` for no time."""
    if moment is None:
        return "-"
    now = now or datetime.now(UTC)
    seconds = (now - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 1:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size:
            n = int(seconds // size)
            text = f"{n} {unit}{'s' if n != 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    return "just now"


def duration(seconds: float | None) -> str:
    """``850ms``, ``12.3s``, ``4m05s``, ``2h10m``, ``3d4h``; ``-`` for none."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h"


def timestamp(moment: datetime | None) -> str:
    """RFC 3339 in UTC, to the millisecond."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def clip(text: str, width: int = _MAX_CELL) -> str:
    """One line of at most ``width`` characters (an id may be 1,000 long)."""
    line = text.replace("\n", " ")
    return line if len(line) <= width else line[: width - 1] + "…"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Aligned columns with a bold heading; cells clipped so a row fits the terminal."""
    cells = [[clip(str(c)) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], click.unstyle(cell).__len__())
    if sys.stdout.isatty():
        room = shutil.get_terminal_size().columns - 2 * (len(headers) - 1)
        while sum(widths) > room and max(widths) > 12:
            widest = widths.index(max(widths))
            widths[widest] -= 1
        for row in cells:
            for i, cell in enumerate(row):
                plain = click.unstyle(cell)
                if len(plain) > widths[i]:
                    row[i] = plain[: widths[i] - 1] + "…"
    click.echo(
        "  ".join(
            click.style(h.ljust(w), bold=True) for h, w in zip(headers, widths, strict=True)
        ).rstrip()
    )
    for row in cells:
        padded = [c + " " * (w - len(click.unstyle(c))) for c, w in zip(row, widths, strict=True)]
        click.echo("  ".join(padded).rstrip())


def fields(pairs: Sequence[tuple[str, str]]) -> None:
    """``Name  value`` lines, the names aligned (``describe``'s layout)."""
    if not pairs:
        return
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        lines = str(value).splitlines() or [""]
        click.echo(f"{click.style(key.ljust(width), bold=True)}  {lines[0]}")
        for more in lines[1:]:
            click.echo(f"{' ' * width}  {more}")
