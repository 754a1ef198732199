"""The times a schedule acts at: its spec compiled, and the next time after any instant.

Pure computation on integer seconds since the epoch (Temporal's resolution). Calendars
match the wall clock of the spec's time zone literally, as Temporal's do: a wall time a
spring-forward skips never matches, and one a fall-back repeats matches twice (once in
each offset). Days whose offset does not change are mapped to instants by one subtraction;
a day with a transition is split into its two constant-offset segments, in instant order.
"""

from __future__ import annotations

import bisect
import calendar as _calendar
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from perdure._common.schedule_spec import (
    MAX_YEAR,
    ScheduleCalendarSpec,
    ScheduleRange,
    ScheduleSpec,
    load_zone,
)

_DAY = 86400
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Slot:
    """One time a schedule acts: ``nominal`` as the spec says (whole seconds), ``actual``
    with the slot's jitter added."""

    nominal: int
    actual: float


def _values(ranges: tuple[ScheduleRange, ...] | list[ScheduleRange]) -> frozenset[int]:
    out: set[int] = set()
    for r in ranges:
        out.update(range(r.start, max(r.end, r.start) + 1, r.step or 1))
    return frozenset(out)


class _Calendar:
    """One calendar spec, ready to match wall times and find the next one."""

    def __init__(self, cal: ScheduleCalendarSpec, zone: tzinfo) -> None:
        self.zone = zone
        self.years = _values(list(cal.year)) or None
        self.months = _values(list(cal.month))
        self.days = _values(list(cal.day_of_month))
        self.weekdays = _values(list(cal.day_of_week))
        hours = sorted(_values(list(cal.hour)))
        minutes = sorted(_values(list(cal.minute)))
        seconds = sorted(_values(list(cal.second)))
        # Seconds of the day that match, in order (at most 86,400; usually a handful).
        self.times = [h * 3600 + m * 60 + s for h in hours for m in minutes for s in seconds]

    def day_matches(self, d: date) -> bool:
        return (
            (self.years is None or d.year in self.years)
            and d.month in self.months
            and d.day in self.days
            and (d.weekday() + 1) % 7 in self.weekdays
        )

    def matches(self, instant: int) -> bool:
        wall = datetime.fromtimestamp(instant, self.zone)
        sod = wall.hour * 3600 + wall.minute * 60 + wall.second
        return self.day_matches(wall.date()) and _contains(self.times, sod)

    def next(self, after: int) -> int | None:
        """The first matching instant after ``after``, or None (none before 2101)."""
        if not self.times:
            return None
        start = datetime.fromtimestamp(after, self.zone).date() - timedelta(days=1)
        for day in self._days_from(start):
            for lo, hi, offset in _segments(day, self.zone):
                # Wall seconds (since the epoch, as if UTC) of this segment's instants.
                wall_lo = max(lo, after + 1) + offset
                wall_hi = hi + offset  # exclusive
                midnight = (day - _EPOCH).days * _DAY
                i = bisect.bisect_left(self.times, wall_lo - midnight)
                if i < len(self.times) and midnight + self.times[i] < wall_hi:
                    return midnight + self.times[i] - offset
        return None

    def _days_from(self, start: date) -> Iterator[date]:
        day = start
        while day.year <= MAX_YEAR:
            if self.years is not None and day.year not in self.years:
                day = date(day.year + 1, 1, 1)
            elif day.month not in self.months:
                day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
            else:
                if self.day_matches(day):
                    yield day
                day += timedelta(days=1)


def _contains(ordered: list[int], value: int) -> bool:
    i = bisect.bisect_left(ordered, value)
    return i < len(ordered) and ordered[i] == value


def _offset(instant: int, zone: tzinfo) -> int:
    delta = datetime.fromtimestamp(instant, UTC).astimezone(zone).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def _segments(day: date, zone: tzinfo) -> list[tuple[int, int, int]]:
    """The instants of a local day as (first, end exclusive, UTC offset) segments in order:
    one, or two around a transition (found by bisection)."""
    first = int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())
    following = day + timedelta(days=1)
    end = int(datetime(following.year, following.month, following.day, tzinfo=zone).timestamp())
    a, b = _offset(first, zone), _offset(end - 1, zone)
    if a == b:
        return [(first, end, a)]
    lo, hi = first, end - 1  # offset(lo) == a, offset(hi) == b
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(mid, zone) == a:
            lo = mid
        else:
            hi = mid
    return [(first, hi, a), (hi, end, b)]


class CompiledSpec:
    """A canonical :class:`ScheduleSpec`, compiled; ``seed`` makes its jitter its own."""

    def __init__(self, spec: ScheduleSpec, seed: str = "") -> None:
        zone: tzinfo = load_zone(spec.time_zone_name) if spec.time_zone_name else UTC
        self.calendars = [_Calendar(c, zone) for c in spec.calendars]
        self.skip = [_Calendar(c, zone) for c in spec.skip]
        self.intervals = [
            (
                max(int(i.every.total_seconds()), 1),
                int(i.offset.total_seconds()) if i.offset else 0,
            )
            for i in spec.intervals
        ]
        self.start_at = int(spec.start_at.timestamp()) if spec.start_at else None
        self.end_at = spec.end_at.timestamp() if spec.end_at else None
        self.jitter = spec.jitter.total_seconds() if spec.jitter else 0.0
        self.seed = seed

    def _raw_next(self, after: int) -> int | None:
        found = [t for c in self.calendars if (t := c.next(after)) is not None]
        found.extend(
            ((after - phase) // every + 1) * every + phase for every, phase in self.intervals
        )
        return min(found) if found else None

    def next_slot(self, after: float) -> Slot | None:
        """The first slot whose nominal time is after ``after``, or None."""
        cursor = int(after // 1)
        if self.start_at is not None:
            cursor = max(cursor, self.start_at - 1)
        while True:
            nominal = self._raw_next(cursor)
            if nominal is None or nominal > MAX_INSTANT:
                return None
            if self.end_at is not None and nominal > self.end_at:
                return None
            if not any(s.matches(nominal) for s in self.skip):
                break
            cursor = nominal
        return Slot(nominal, nominal + self._jitter(nominal))

    def slots(self, after: float, limit: int) -> list[Slot]:
        """The next ``limit`` slots after ``after``."""
        out: list[Slot] = []
        while len(out) < limit:
            slot = self.next_slot(after)
            if slot is None:
                break
            out.append(slot)
            after = slot.nominal
        return out

    def _jitter(self, nominal: int) -> float:
        """A delay fixed per slot (a hash of the seed and the time), at most ``jitter`` and
        never past the next nominal time."""
        if not self.jitter:
            return 0.0
        limit = self.jitter
        following = self._raw_next(nominal)
        if following is not None:
            limit = min(limit, float(following - nominal))
        digest = hashlib.sha256(f"{self.seed}:{nominal}".encode()).digest()
        fraction = int.from_bytes(digest[:8], "big") / 2**64
        return round(fraction * limit, 3)


# The last second calendars reach (Temporal stops at the year 2100 too).
MAX_INSTANT = _calendar.timegm((MAX_YEAR, 12, 31, 23, 59, 59))
