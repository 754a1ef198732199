"""When a schedule acts: Temporal's ``ScheduleSpec`` and its parts, as plain data.

The public classes (``perdure.client`` re-exports them) live here, below the store, because
the store computes a schedule's times from them (``schedule_times``). A spec is stored in its
canonical form (``schedule_cron.canonical``), cron expressions turned into calendars.
"""

from __future__ import annotations

import enum
import zoneinfo
from collections.abc import Sequence
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
FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day_of_month", 1, 31),
    ("month", 1, 12),
    ("year", MIN_YEAR, MAX_YEAR),
    ("day_of_week", 0, 6),
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


def aware(moment: datetime | None, name: str) -> datetime | None:
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        raise InvalidArgumentError(f"ScheduleSpec.{name} must be a datetime, not {moment!r}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def checked_calendar(cal: ScheduleCalendarSpec, where: str) -> ScheduleCalendarSpec:
    if not isinstance(cal, ScheduleCalendarSpec):
        raise InvalidArgumentError(
            f"ScheduleSpec.{where} takes ScheduleCalendarSpec values, not {cal!r}"
        )
    out: dict[str, Any] = {}
    for name, low, high in FIELDS:
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


def checked_interval(iv: ScheduleIntervalSpec) -> ScheduleIntervalSpec:
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
        name: [[r.start, r.end, r.step] for r in getattr(cal, name)] for name, _, _ in FIELDS
    }
    out["comment"] = cal.comment
    return out


def _calendar_from_dict(data: dict[str, Any]) -> ScheduleCalendarSpec:
    ranges = {name: tuple(ScheduleRange(*r) for r in data.get(name, ())) for name, _, _ in FIELDS}
    return ScheduleCalendarSpec(**ranges, comment=data.get("comment"))


def describe_calendar(cal: ScheduleCalendarSpec) -> str:
    """A calendar as a cron expression, for people: ``30 2 * * 1-5`` (5 fields), with a
    year after them if it has one and a second before them if it is not 0."""
    bounds = {name: (low, high) for name, low, high in FIELDS}
    parts = []
    for name in ("second", "minute", "hour", "day_of_month", "month", "day_of_week", "year"):
        ranges = tuple(getattr(cal, name))
        low, high = bounds[name]
        if not ranges or ranges == (ScheduleRange(low, high),):
            parts.append("*")
        else:
            parts.append(",".join(_range_text(r) for r in ranges))
    second, year = parts[0], parts[6]
    fields = parts[1:6] + ([year] if year != "*" or second != "0" else [])
    text = " ".join(([second] if second != "0" else []) + fields)
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
]
