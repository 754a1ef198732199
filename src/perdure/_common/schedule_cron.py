"""Cron expressions as Temporal reads them, and a spec's canonical (stored) form.

As Temporal's server does, a spec is stored with its cron expressions turned into calendars
(or intervals, for ``@every``), their ``CRON_TZ=`` made the spec's time zone and their
``# comment`` the calendar's comment. The fields of a cron expression are parsed by
``cronsim`` (small, pure Python, no dependencies, maintained: the parser of healthchecks.io);
perdure reads the sets of values it parsed and turns them into ranges, so cron expressions
and calendars share one matcher (``schedule_times``) with Temporal's rules: day of month AND
day of week, no special handling of DST.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from perdure._common.schedule_spec import (
    MAX_YEAR,
    MIN_YEAR,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleRange,
    ScheduleSpec,
    aware,
    checked_calendar,
    checked_interval,
    load_zone,
)
from perdure._errors import InvalidArgumentError


def canonical(spec: ScheduleSpec) -> ScheduleSpec:
    """The spec as it is stored: cron expressions turned into calendars and intervals, every
    part checked.

    Raises:
        InvalidArgumentError: a malformed cron expression, a value out of range, an unknown
            time zone, time zones that disagree, an interval under a second.
    """
    calendars = [checked_calendar(c, "calendars") for c in spec.calendars]
    intervals = [checked_interval(i) for i in spec.intervals]
    zone = spec.time_zone_name or None
    cron_zone: str | None = None
    for i, expression in enumerate(spec.cron_expressions):
        parsed = parse_cron(expression)
        if i and parsed.time_zone != cron_zone:
            raise InvalidArgumentError(
                f"The cron expressions name different time zones ({cron_zone!r} and "
                f"{parsed.time_zone!r}): a schedule has one time zone"
            )
        cron_zone = parsed.time_zone
        calendars.extend(parsed.calendars)
        intervals.extend(parsed.intervals)
    if cron_zone:
        if zone and zone != cron_zone:
            raise InvalidArgumentError(
                f"CRON_TZ={cron_zone} in a cron expression disagrees with time_zone_name="
                f"{zone!r}: give the time zone once"
            )
        zone = cron_zone
    if zone is not None:
        load_zone(zone)
    if spec.jitter is not None and spec.jitter < timedelta(0):
        raise InvalidArgumentError(f"ScheduleSpec.jitter is negative ({spec.jitter})")
    start, end = (aware(t, n) for t, n in ((spec.start_at, "start_at"), (spec.end_at, "end_at")))
    return ScheduleSpec(
        calendars=calendars,
        intervals=intervals,
        cron_expressions=[],
        skip=[checked_calendar(c, "skip") for c in spec.skip],
        start_at=start,
        end_at=end,
        jitter=spec.jitter or None,
        time_zone_name=zone,
    )


# -- cron expressions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ParsedCron:
    """What one cron expression means: a calendar or an interval, and a time zone."""

    calendars: list[ScheduleCalendarSpec]
    intervals: list[ScheduleIntervalSpec]
    time_zone: str | None


_SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_cron(expression: str) -> ParsedCron:
    """One cron expression, as Temporal reads it (see :class:`ScheduleSpec`).

    Raises:
        InvalidArgumentError: it is malformed (the message says where).
    """
    if not isinstance(expression, str):
        raise InvalidArgumentError(f"A cron expression is a str, not {expression!r}")
    text = expression.strip()
    zone: str | None = None
    if text.startswith(("TZ=", "CRON_TZ=")):
        prefix, _, text = text.partition(" ")
        zone = prefix.partition("=")[2] or None
        if not text.strip():
            raise InvalidArgumentError(
                f"Cron expression {expression!r} has a time zone but no fields"
            )
    # A comment follows " #" (a "#" inside a field is Quartz's nth weekday, refused below).
    text, _, comment_text = re.sub(r"^#", " #", text).partition(" #")
    text, comment = text.strip(), comment_text.strip() or None
    if text.startswith("@every"):
        return ParsedCron([], [_parse_every(text, expression)], zone)
    text = _SHORTHANDS.get(text, text)
    fields = text.split()
    if len(fields) not in (5, 6, 7):
        raise InvalidArgumentError(
            f"Cron expression {expression!r} has {len(fields)} fields: give 5 (minute hour "
            "day-of-month month day-of-week), 6 (and a year) or 7 (a second first, and a "
            "year), or @daily, @hourly, @every 1h ..."
        )
    year: Sequence[ScheduleRange] = ()
    if len(fields) >= 6:
        year = _parse_year(fields.pop(), expression)
    calendar = _cron_calendar(fields, expression)
    calendar.year = year
    calendar.comment = comment
    return ParsedCron([checked_calendar(calendar, "cron_expressions")], [], zone)


def _cron_calendar(fields: list[str], expression: str) -> ScheduleCalendarSpec:
    """The calendar of a cron expression's 5 fields (or 6, a second first), parsed by
    cronsim; its Quartz extensions (``L``, ``W``, ``#``, ``?``) are refused, as by Temporal."""
    import cronsim

    special = [t for f in fields for t in re.split(r"[,/-]", f.upper()) if _special(t)]
    if special:
        raise InvalidArgumentError(
            f"Cron expression {expression!r} uses {special[0]!r}: L, W, # and ? are not "
            "supported in schedules (as in Temporal); list the days instead"
        )
    try:
        parsed = cronsim.CronSim(" ".join(fields), datetime(2000, 1, 1))
    except cronsim.CronSimError as exc:
        raise InvalidArgumentError(f"Cron expression {expression!r} is malformed: {exc}") from exc
    weekdays = {int(d) % 7 for d in parsed.weekdays if isinstance(d, int)}
    return ScheduleCalendarSpec(
        second=_ranges(parsed.seconds),
        minute=_ranges(parsed.minutes),
        hour=_ranges(parsed.hours),
        day_of_month=_ranges(parsed.days),
        month=_ranges(parsed.months),
        day_of_week=_ranges(weekdays),
    )


def _special(token: str) -> bool:
    """A Quartz extension (``L``, ``5L``, ``15W``, ``MON#2``, ``?``), not a name (``JUL``)."""
    if token.isalpha() and len(token) == 3:
        return False
    return any(c in token for c in "LW#?")


def _parse_year(text: str, expression: str) -> tuple[ScheduleRange, ...]:
    """A year field: ``*``, ``2027``, ``2026-2030``, ``2026/2``, ``2026-2030/2``, or a
    comma-separated list of them (cronsim has no year field)."""
    if text == "*":
        return ()
    values: set[int] = set()
    for term in text.split(","):
        part, _, step_text = term.partition("/")
        start_text, dash, end_text = part.partition("-")
        try:
            start = int(start_text)
            end = int(end_text) if dash else (MAX_YEAR if step_text else start)
            step = int(step_text) if step_text else 1
        except ValueError:
            raise InvalidArgumentError(
                f"Cron expression {expression!r} has a malformed year {term!r}"
            ) from None
        if not MIN_YEAR <= start <= end <= MAX_YEAR or step < 1:
            raise InvalidArgumentError(
                f"Cron expression {expression!r}: year {term!r} must be within "
                f"{MIN_YEAR}-{MAX_YEAR}"
            )
        values.update(range(start, end + 1, step))
    return _ranges(values)


def _parse_every(text: str, expression: str) -> ScheduleIntervalSpec:
    _, _, rest = text.partition(" ")
    every_text, _, offset_text = rest.strip().partition("/")
    every = _parse_duration(every_text, expression)
    offset = _parse_duration(offset_text, expression) if offset_text else None
    return checked_interval(ScheduleIntervalSpec(every=every, offset=offset))


def _parse_duration(text: str, expression: str) -> timedelta:
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise InvalidArgumentError(
            f"Cron expression {expression!r}: {text!r} is not a duration (@every 90m, "
            "@every 1h30m, @every 1d/6h: units s, m, h, d)"
        )
    return timedelta(seconds=total)


def _ranges(values: Iterable[int]) -> tuple[ScheduleRange, ...]:
    """Sorted values as few ranges as greedy arithmetic runs give (``*/15`` is one)."""
    ordered = sorted(set(values))
    out: list[ScheduleRange] = []
    i = 0
    while i < len(ordered):
        if i + 1 == len(ordered):
            out.append(ScheduleRange(ordered[i]))
            break
        step = ordered[i + 1] - ordered[i]
        j = i + 1
        while j + 1 < len(ordered) and ordered[j + 1] - ordered[j] == step:
            j += 1
        if j == i + 1 and step != 1:  # two values: keep them apart, the next may run on
            out.append(ScheduleRange(ordered[i]))
            i += 1
            continue
        out.append(ScheduleRange(ordered[i], ordered[j], step))
        i = j + 1
    return tuple(out)


# Temporal's CalendarSpec: each field a string in cron's syntax, with these defaults.
_CALENDAR_DEFAULTS = {
    "second": "0",
    "minute": "0",
    "hour": "0",
    "day_of_month": "*",
    "month": "*",
    "year": "*",
    "day_of_week": "*",
}
_CALENDAR_KEYS = {
    "second": "second",
    "minute": "minute",
    "hour": "hour",
    "dayOfMonth": "day_of_month",
    "day_of_month": "day_of_month",
    "month": "month",
    "year": "year",
    "dayOfWeek": "day_of_week",
    "day_of_week": "day_of_week",
    "comment": "comment",
}


def calendar_from_strings(fields: Mapping[str, str]) -> ScheduleCalendarSpec:
    """A calendar from Temporal's ``CalendarSpec`` form, each field in cron's syntax
    (``{"dayOfWeek": "MON-FRI", "hour": "9", "minute": "30"}``): second, minute and hour
    default to 0, the others to ``*``.

    Raises:
        InvalidArgumentError: an unknown field, or a malformed value.
    """
    values = dict(_CALENDAR_DEFAULTS)
    comment = None
    for key, value in fields.items():
        name = _CALENDAR_KEYS.get(key)
        if name is None:
            raise InvalidArgumentError(
                f"Unknown calendar field {key!r}: the fields are second, minute, hour, "
                "dayOfMonth, month, year, dayOfWeek and comment"
            )
        if name == "comment":
            comment = str(value)
        else:
            values[name] = str(value).strip() or "*"
    what = f"calendar {dict(fields)!r}"
    year = _parse_year(values.pop("year"), what)
    cron = " ".join(
        values[n] for n in ("second", "minute", "hour", "day_of_month", "month", "day_of_week")
    )
    calendar = _cron_calendar(cron.split(), what)
    calendar.year = year
    calendar.comment = comment
    return checked_calendar(calendar, "calendars")
