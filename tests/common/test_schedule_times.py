"""A schedule's times, computed without a database: cron expressions as Temporal reads them,
calendars with ranges, intervals with offsets, skips, start and end, jitter, and time zones
across daylight-saving changes (Temporal's rule: wall-clock times match literally)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from perdure._common.schedule_cron import canonical, parse_cron
from perdure._common.schedule_spec import (
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleRange,
    ScheduleSpec,
    spec_from_dict,
    spec_to_dict,
)
from perdure._common.schedule_times import CompiledSpec
from perdure.exceptions import InvalidArgumentError


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def times(spec: ScheduleSpec, after: datetime, n: int, seed: str = "s") -> list[datetime]:
    compiled = CompiledSpec(canonical(spec), seed)
    return [datetime.fromtimestamp(s.actual, UTC) for s in compiled.slots(after.timestamp(), n)]


def cron(expression: str, after: datetime, n: int, zone: str | None = None) -> list[datetime]:
    return times(ScheduleSpec(cron_expressions=[expression], time_zone_name=zone), after, n)


def test_five_field_cron_with_ranges_steps_and_names() -> None:
    # Every 20 minutes from 9 to 10, Monday to Friday, in March (2026-03-06 is a Friday).
    got = cron("*/20 9-10 * MAR MON-FRI", utc(2026, 3, 6, 10, 30), 4)
    assert got == [
        utc(2026, 3, 6, 10, 40),
        utc(2026, 3, 9, 9, 0),
        utc(2026, 3, 9, 9, 20),
        utc(2026, 3, 9, 9, 40),
    ]


def test_six_and_seven_fields_carry_a_year_and_seconds() -> None:
    assert cron("0 12 1 1 * 2028", utc(2026, 1, 1), 2) == [utc(2028, 1, 1, 12)]
    assert cron("15,45 0 12 * * * 2026", utc(2026, 5, 1), 3) == [
        utc(2026, 5, 1, 12, 0, 15),
        utc(2026, 5, 1, 12, 0, 45),
        utc(2026, 5, 2, 12, 0, 15),
    ]


def test_shorthands() -> None:
    start = utc(2026, 3, 4, 5, 6)
    assert cron("@daily", start, 1) == [utc(2026, 3, 5)]
    assert cron("@hourly", start, 1) == [utc(2026, 3, 4, 6)]
    assert cron("@weekly", start, 1) == [utc(2026, 3, 8)]  # a Sunday
    assert cron("@monthly", start, 1) == [utc(2026, 4, 1)]
    assert cron("@yearly", start, 1) == [utc(2027, 1, 1)]


def test_every_with_an_offset_is_an_interval() -> None:
    parsed = parse_cron("@every 14h/3h")
    assert parsed.calendars == []
    assert parsed.intervals == [
        ScheduleIntervalSpec(every=timedelta(hours=14), offset=timedelta(hours=3))
    ]
    got = cron("@every 14h/3h", utc(1970, 1, 1), 2)
    assert got == [utc(1970, 1, 1, 3), utc(1970, 1, 1, 17)]


def test_interval_with_offset_counts_from_the_epoch() -> None:
    spec = ScheduleSpec(
        intervals=[ScheduleIntervalSpec(every=timedelta(hours=1), offset=timedelta(minutes=19))]
    )
    assert times(spec, utc(2026, 3, 1, 10, 19), 2) == [
        utc(2026, 3, 1, 11, 19),
        utc(2026, 3, 1, 12, 19),
    ]


def test_cron_tz_and_comment() -> None:
    parsed = parse_cron("CRON_TZ=Europe/Paris 0 9 * * * # morning")
    assert parsed.time_zone == "Europe/Paris"
    assert parsed.calendars[0].comment == "morning"
    spec = canonical(ScheduleSpec(cron_expressions=["CRON_TZ=Europe/Paris 0 9 * * *"]))
    assert spec.time_zone_name == "Europe/Paris"
    assert spec.cron_expressions == []
    # 09:00 in Paris is 08:00 UTC in winter.
    assert cron("TZ=Europe/Paris 0 9 * * *", utc(2026, 1, 10), 1) == [utc(2026, 1, 10, 8)]


def test_day_of_month_and_day_of_week_both_match() -> None:
    # Temporal does not take cron's "either" rule: Friday the 13th only.
    got = cron("0 0 13 * FRI", utc(2026, 1, 1), 2)
    assert got == [utc(2026, 2, 13), utc(2026, 3, 13)]


def test_sunday_is_0_or_7() -> None:
    assert cron("0 0 * * 7", utc(2026, 3, 2), 1) == cron("0 0 * * 0", utc(2026, 3, 2), 1)


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("0 0 L * *", "L, W, # and ?"),
        ("0 0 * * MON#2", "L, W, # and ?"),
        ("0 0 15W * *", "L, W, # and ?"),
        ("61 * * * *", "malformed"),
        ("* * *", "3 fields"),
        ("0 0 * * * 1999", "year"),
        ("@every 0s", "at least a second"),
        ("@every soon", "not a duration"),
    ],
)
def test_malformed_cron_expressions_are_refused(expression: str, says: str) -> None:
    with pytest.raises(InvalidArgumentError, match=says):
        canonical(ScheduleSpec(cron_expressions=[expression]))


def test_month_and_day_names_with_l_and_w_are_names() -> None:
    assert cron("0 0 1 JUL WED", utc(2026, 1, 1), 1) == [utc(2026, 7, 1)]  # a Wednesday


def test_time_zones_must_agree_and_exist() -> None:
    with pytest.raises(InvalidArgumentError, match="Unknown time zone"):
        canonical(ScheduleSpec(cron_expressions=["@daily"], time_zone_name="Mars/Olympus"))
    with pytest.raises(InvalidArgumentError, match="disagrees"):
        canonical(
            ScheduleSpec(
                cron_expressions=["CRON_TZ=Europe/Paris @daily"], time_zone_name="Asia/Tokyo"
            )
        )


def test_calendar_ranges_with_steps_and_years() -> None:
    spec = ScheduleSpec(
        calendars=[
            ScheduleCalendarSpec(
                hour=[ScheduleRange(8, 18, 5)],  # 8, 13, 18
                day_of_month=[ScheduleRange(1), ScheduleRange(15)],
                year=[ScheduleRange(2027, 2028)],
                comment="twice a month",
            )
        ]
    )
    assert times(spec, utc(2026, 6, 1), 4) == [
        utc(2027, 1, 1, 8),
        utc(2027, 1, 1, 13),
        utc(2027, 1, 1, 18),
        utc(2027, 1, 15, 8),
    ]


def test_calendar_values_out_of_range_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="hour"):
        canonical(ScheduleSpec(calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(24)])]))


def test_skip_start_and_end() -> None:
    spec = ScheduleSpec(
        cron_expressions=["0 12 * * *"],
        skip=[ScheduleCalendarSpec(hour=[ScheduleRange(12)], day_of_week=[ScheduleRange(0, 0)])],
        start_at=utc(2026, 3, 6, 12),  # inclusive
        end_at=utc(2026, 3, 10, 12),  # inclusive
    )
    got = times(spec, utc(2026, 1, 1), 10)
    # 2026-03-08 is a Sunday: skipped.
    assert got == [
        utc(2026, 3, 6, 12),
        utc(2026, 3, 7, 12),
        utc(2026, 3, 9, 12),
        utc(2026, 3, 10, 12),
    ]


def test_jitter_is_fixed_per_slot_bounded_and_never_past_the_next_slot() -> None:
    spec = ScheduleSpec(cron_expressions=["@hourly"], jitter=timedelta(minutes=10))
    first = times(spec, utc(2026, 3, 1), 24, seed="a")
    again = times(spec, utc(2026, 3, 1), 24, seed="a")
    other = times(spec, utc(2026, 3, 1), 24, seed="b")
    assert first == again
    assert first != other
    for i, t in enumerate(first):
        nominal = utc(2026, 3, 1, i + 1) if i < 23 else utc(2026, 3, 2)
        assert nominal <= t <= nominal + timedelta(minutes=10)
    assert len({t.minute for t in first}) > 3  # spread, not all at one delay
    # A jitter longer than the interval is capped by the next slot.
    wide = ScheduleSpec(
        intervals=[ScheduleIntervalSpec(every=timedelta(minutes=1))], jitter=timedelta(hours=1)
    )
    slots = times(wide, utc(2026, 3, 1), 30)
    assert all(b - a < timedelta(minutes=2) for a, b in itertools.pairwise(slots))


def test_spring_forward_skips_a_wall_time_that_does_not_exist() -> None:
    # America/New_York: 2026-03-08 02:00 EST jumps to 03:00 EDT; there is no 02:30.
    got = cron("30 2 * * *", utc(2026, 3, 6, 12), 3, zone="America/New_York")
    assert got == [
        utc(2026, 3, 7, 7, 30),  # 02:30 EST
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT: the 8th has none
        utc(2026, 3, 10, 6, 30),
    ]


def test_fall_back_runs_a_repeated_wall_time_twice_and_others_once() -> None:
    # America/New_York: 2026-11-01 02:00 EDT falls back to 01:00 EST: 01:30 happens twice,
    # 02:30 once.
    assert cron("30 2 * * *", utc(2026, 10, 31, 12), 2, zone="America/New_York") == [
        utc(2026, 11, 1, 7, 30),  # 02:30 EST
        utc(2026, 11, 2, 7, 30),
    ]
    assert cron("30 1 * * *", utc(2026, 10, 31, 12), 3, zone="America/New_York") == [
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT
        utc(2026, 11, 1, 6, 30),  # 01:30 EST
        utc(2026, 11, 2, 6, 30),
    ]


def test_hourly_in_a_zone_across_both_changes_is_hourly_in_utc() -> None:
    for after in (utc(2026, 3, 8, 5), utc(2026, 11, 1, 4)):
        got = cron("0 * * * *", after, 4, zone="America/New_York")
        assert [b - a for a, b in itertools.pairwise(got)] == [timedelta(hours=1)] * 3


def test_stored_form_round_trips() -> None:
    spec = canonical(
        ScheduleSpec(
            cron_expressions=["CRON_TZ=America/New_York 30 2 * * 1-5 # weekdays"],
            intervals=[ScheduleIntervalSpec(every=timedelta(hours=6), offset=timedelta(hours=1))],
            skip=[ScheduleCalendarSpec(month=[ScheduleRange(12)])],
            start_at=utc(2026, 1, 1),
            end_at=utc(2027, 1, 1),
            jitter=timedelta(seconds=30),
        )
    )
    assert spec_from_dict(spec_to_dict(spec)) == spec


def test_calendar_from_temporal_string_fields() -> None:
    from perdure._common.schedule_cron import calendar_from_strings

    cal = calendar_from_strings({"dayOfWeek": "MON-FRI", "hour": "9", "minute": "*/30"})
    assert cal.day_of_week == (ScheduleRange(1, 5),)
    assert cal.minute == (ScheduleRange(0), ScheduleRange(30))
    assert cal.second == (ScheduleRange(0),)
    assert cal.year == ()
    spec = ScheduleSpec(calendars=[cal])
    assert times(spec, utc(2026, 3, 6, 9, 15), 2) == [utc(2026, 3, 6, 9, 30), utc(2026, 3, 9, 9)]
    with pytest.raises(InvalidArgumentError, match="Unknown calendar field"):
        calendar_from_strings({"weekday": "1"})
