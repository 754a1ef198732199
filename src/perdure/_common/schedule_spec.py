"""When a schedule acts: Temporal's ``ScheduleSpec`` and its parts, as plain data.

The public classes (``perdure.client`` re-exports them) live here, below the store, because
the store computes a schedule's times from them (``schedule_times``). A spec is stored in its
canonical form, as Temporal's server keeps it: cron expressions become calendars (or
intervals, for ``@every``), their ``CRON_TZ=`` the spec's time zone and their ``# comment``
the calendar's comment. Cron strings are parsed by ``cronsim`` (a small, dependency-free,
maintained library): perdure reads its parsed fields and turns them into ranges, so cron
expressions and calendars share one matcher, with Temporal's rules (day of month AND day of
week; no special handling of DST).
"""

from __future__ import annotations

import enum
import re
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from perdure._errors import InvalidArgumentError

MIN_YEAR = 2000
MAX_YEAR = 2100
MAX_COMMENT = 200


class ScheduleOverlapPolicy(enum.IntEnum):
    """What a schedule does when an action is due while the workflow it started is still
    running (Temporal's names and values)."""

    SKIP = 1
    """Start nothing (the default); counted in ``num_actions_skipped_overlap``."""
    BUFFER_ONE = 2
    """Start it once the running one closes, but buffer at most one such start."""
    BUFFER_ALL = 3
    """Buffer every start, to run one after another as each closes."""
    CANCEL_OTHER = 4
    """Ask the running one to cancel, and start the new one once it has closed."""
    TERMINATE_OTHER = 5
    """Terminate the running one and start the new one at once."""
    ALLOW_ALL = 6
    """Start it whatever runs (such runs are not tracked as running)."""


@dataclass(frozen=True)
class ScheduleRange:
    """An inclusive range of values for one field of a calendar spec.

    ``end`` below ``start`` (the default) means ``start`` alone; ``step`` 0 means 1.
    """

    start: int
    end: int = 0
    step: int = 0

    def __post_init__(self) -> None:
        if self.end < self.start:
            object.__setattr__(self, "end", self.start)
        if self.step == 0:
            object.__setattr__(self, "step", 1)


@dataclass
class ScheduleCalendarSpec:
    """Calendar times an action happens at, in the spec's time zone.

    A time matches when each field matches one of its ranges (year: any year if empty). The
    defaults match midnight of every day.

    Example::

        # 09:30 on weekdays
        ScheduleCalendarSpec(hour=[ScheduleRange(9)], minute=[ScheduleRange(30)],
                             day_of_week=[ScheduleRange(1, 5)], comment="weekday mornings")
    """

    second: Sequence[ScheduleRange] = (ScheduleRange(0),)
    minute: Sequence[ScheduleRange] = (ScheduleRange(0),)
    hour: Sequence[ScheduleRange] = (ScheduleRange(0),)
    day_of_month: Sequence[ScheduleRange] = (ScheduleRange(1, 31),)
    month: Sequence[ScheduleRange] = (ScheduleRange(1, 12),)
    year: Sequence[ScheduleRange] = ()
    day_of_week: Sequence[ScheduleRange] = (ScheduleRange(0, 6),)
    """0-6, 0 is Sunday."""
    comment: str | None = None


@dataclass
class ScheduleIntervalSpec:
    """Every ``every`` since the Unix epoch, shifted by ``offset``: ``epoch + n * every +
    offset`` (an hour with an offset of 19 minutes is every xx:19:00 UTC)."""

    every: timedelta
    offset: timedelta | None = None


@dataclass
class ScheduleSpec:
    """When a schedule's action happens: the union of ``calendars``, ``intervals`` and
    ``cron_expressions``, without the times ``skip`` matches, from ``start_at`` to ``end_at``
    (inclusive), each time delayed by up to ``jitter`` (a delay fixed per time).

    ``cron_expressions`` take 5 fields (minute hour day-of-month month day-of-week), 6 (a
    year after them) or 7 (a second before them); ``@yearly``, ``@monthly``, ``@weekly``,
    ``@daily``, ``@hourly``; ``@every 90m`` or ``@every 1d/6h`` (an interval and offset);
    an optional ``CRON_TZ=Europe/Paris`` prefix and ``# comment``. As in Temporal, they are
    stored as calendars (which ``describe()`` returns), and day of month and day of week
    must both match.

    ``time_zone_name`` is an IANA name (``America/New_York``; default UTC). Calendars match
    the wall clock there: a 02:30 schedule does not run on the day that has no 02:30, and
    a 01:30 one runs twice on the day that has two.
    """

    calendars: Sequence[ScheduleCalendarSpec] = field(default_factory=list)
    intervals: Sequence[ScheduleIntervalSpec] = field(default_factory=list)
    cron_expressions: Sequence[str] = field(default_factory=list)
    skip: Sequence[ScheduleCalendarSpec] = field(default_factory=list)
    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter: timedelta | None = None
    time_zone_name: str | None = None


# -- canonical form ---------------------------------------------------------------------------
_FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day_of_month", 1, 31),
    ("month", 1, 12),
    ("year", MIN_YEAR, MAX_YEAR),
    ("day_of_week", 0, 6),
)


def canonical(spec: ScheduleSpec) -> ScheduleSpec:
    """The spec as it is stored: cron expressions turned into calendars and intervals, every
    part checked.

    Raises:
        InvalidArgumentError: a malformed cron expression, a value out of range, an unknown
            time zone, time zones that disagree, an interval under a second.
    """
    calendars = [_checked_calendar(c, "calendars") for c in spec.calendars]
    intervals = [_checked_interval(i) for i in spec.intervals]
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
    start, end = (_aware(t, n) for t, n in ((spec.start_at, "start_at"), (spec.end_at, "end_at")))
    return ScheduleSpec(
        calendars=calendars,
        intervals=intervals,
        cron_expressions=[],
        skip=[_checked_calendar(c, "skip") for c in spec.skip],
        start_at=start,
        end_at=end,
        jitter=spec.jitter or None,
        time_zone_name=zone,
    )


def load_zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone ``name``.

    Raises:
        InvalidArgumentError: no such time zone here.
    """
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidArgumentError(
            f"Unknown time zone {name!r}: give an IANA name such as 'America/New_York' or "
            "'Europe/Paris' (on Windows, pip install tzdata)"
        ) from exc


def _aware(moment: datetime | None, name: str) -> datetime | None:
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        raise InvalidArgumentError(f"ScheduleSpec.{name} must be a datetime, not {moment!r}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _checked_calendar(cal: ScheduleCalendarSpec, where: str) -> ScheduleCalendarSpec:
    if not isinstance(cal, ScheduleCalendarSpec):
        raise InvalidArgumentError(
            f"ScheduleSpec.{where} takes ScheduleCalendarSpec values, not {cal!r}"
        )
    out: dict[str, Any] = {}
    for name, low, high in _FIELDS:
        ranges = tuple(getattr(cal, name))
        for r in ranges:
            if not isinstance(r, ScheduleRange):
                raise InvalidArgumentError(
                    f"ScheduleCalendarSpec.{name} takes ScheduleRange values, not {r!r}"
                )
            if not low <= r.start <= r.end <= high or r.step < 0:
                raise InvalidArgumentError(
                    f"ScheduleCalendarSpec.{name} has {r}: its values must be within "
                    f"{low}-{high} (end not before start, step not negative)"
                )
        out[name] = ranges
    if cal.comment is not None and len(cal.comment) > MAX_COMMENT:
        raise InvalidArgumentError(
            f"A calendar's comment is {len(cal.comment)} characters; at most {MAX_COMMENT}"
        )
    return ScheduleCalendarSpec(**out, comment=cal.comment or None)


def _checked_interval(iv: ScheduleIntervalSpec) -> ScheduleIntervalSpec:
    if not isinstance(iv, ScheduleIntervalSpec):
        raise InvalidArgumentError(
            f"ScheduleSpec.intervals takes ScheduleIntervalSpec values, not {iv!r}"
        )
    offset = iv.offset or timedelta(0)
    if iv.every < timedelta(seconds=1):
        raise InvalidArgumentError(f"A schedule interval is at least a second, not {iv.every}")
    if offset < timedelta(0) or offset >= iv.every:
        raise InvalidArgumentError(
            f"A schedule interval's offset ({offset}) must be at least 0 and less than its "
            f"interval ({iv.every})"
        )
    return ScheduleIntervalSpec(every=iv.every, offset=iv.offset or None)


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
    return ParsedCron([_checked_calendar(calendar, "cron_expressions")], [], zone)


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
    return _checked_interval(ScheduleIntervalSpec(every=every, offset=offset))


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


# -- stored form ------------------------------------------------------------------------------
def spec_to_dict(spec: ScheduleSpec) -> dict[str, Any]:
    """The JSON form of a canonical spec (times in epoch seconds, durations in seconds)."""
    return {
        "calendars": [_calendar_to_dict(c) for c in spec.calendars],
        "intervals": [
            {"every": i.every.total_seconds(), "offset": _seconds(i.offset)} for i in spec.intervals
        ],
        "skip": [_calendar_to_dict(c) for c in spec.skip],
        "start_at": spec.start_at.timestamp() if spec.start_at else None,
        "end_at": spec.end_at.timestamp() if spec.end_at else None,
        "jitter": _seconds(spec.jitter),
        "time_zone_name": spec.time_zone_name,
    }


def spec_from_dict(data: dict[str, Any]) -> ScheduleSpec:
    """The spec :func:`spec_to_dict` wrote."""
    return ScheduleSpec(
        calendars=[_calendar_from_dict(c) for c in data.get("calendars", ())],
        intervals=[
            ScheduleIntervalSpec(
                every=timedelta(seconds=i["every"]),
                offset=timedelta(seconds=i["offset"]) if i.get("offset") is not None else None,
            )
            for i in data.get("intervals", ())
        ],
        skip=[_calendar_from_dict(c) for c in data.get("skip", ())],
        start_at=_moment(data.get("start_at")),
        end_at=_moment(data.get("end_at")),
        jitter=timedelta(seconds=data["jitter"]) if data.get("jitter") else None,
        time_zone_name=data.get("time_zone_name"),
    )


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _moment(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _calendar_to_dict(cal: ScheduleCalendarSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        name: [[r.start, r.end, r.step] for r in getattr(cal, name)] for name, _, _ in _FIELDS
    }
    out["comment"] = cal.comment
    return out


def _calendar_from_dict(data: dict[str, Any]) -> ScheduleCalendarSpec:
    ranges = {name: tuple(ScheduleRange(*r) for r in data.get(name, ())) for name, _, _ in _FIELDS}
    return ScheduleCalendarSpec(**ranges, comment=data.get("comment"))


def describe_calendar(cal: ScheduleCalendarSpec) -> str:
    """A calendar in cron's field order (``second minute hour day month day-of-week year``),
    for people: ``0 30 2 * * * *``."""
    parts = []
    for name in ("second", "minute", "hour", "day_of_month", "month", "day_of_week", "year"):
        ranges = getattr(cal, name)
        low = dict((n, lo) for n, lo, _ in _FIELDS)[name]
        high = dict((n, hi) for n, _, hi in _FIELDS)[name]
        if not ranges or (len(ranges) == 1 and ranges[0] == ScheduleRange(low, high)):
            parts.append("*")
            continue
        parts.append(",".join(_range_text(r) for r in ranges))
    text = " ".join(parts)
    return f"{text} # {cal.comment}" if cal.comment else text


def _range_text(r: ScheduleRange) -> str:
    if r.start == r.end:
        return str(r.start)
    return f"{r.start}-{r.end}" + (f"/{r.step}" if r.step != 1 else "")


__all__ = [
    "ScheduleCalendarSpec",
    "ScheduleIntervalSpec",
    "ScheduleOverlapPolicy",
    "ScheduleRange",
    "ScheduleSpec",
    "canonical",
]
