"""The virtual clock: it stands still, jumps, or owes real time and then catches up and
follows it (while an activity runs in the time-skipping environment), and wakes its waiters
as it passes their deadlines."""

from __future__ import annotations

import asyncio

import pytest

from perdure._common.clock import VirtualClock
from perdure._store._notify import Flag

pytestmark = pytest.mark.realtime


async def test_a_standing_clock_moves_only_when_advanced() -> None:
    clock = VirtualClock(1000.0)
    sleeper = asyncio.ensure_future(clock.sleep_until(1010.0))
    await asyncio.sleep(0.02)
    assert clock.now() == 1000.0 and not sleeper.done()
    clock.advance_to(1010.0)
    await sleeper
    assert clock.now() == 1010.0


async def test_owed_time_is_paid_by_catching_up_then_real_time_is_followed() -> None:
    clock = VirtualClock(1000.0)
    early = asyncio.ensure_future(clock.sleep_until(1000.01))
    clock.owe_real_time()
    await asyncio.sleep(0.02)
    assert clock.now() == 1000.0 and not early.done()  # owing, it stands still
    owed = clock.owed()
    assert owed >= 0.02
    clock.catch_up()
    assert clock.now() >= 1000.0 + owed and clock.following_real_time
    await early
    # Following real time, it wakes a waiter when real time brings its deadline.
    await asyncio.wait_for(clock.wait(Flag(), clock.now() + 0.02), 5)


async def test_stand_still_keeps_the_time_reached_and_forgets_what_is_owed() -> None:
    clock = VirtualClock(1000.0)
    clock.owe_real_time()
    clock.catch_up()
    await asyncio.wait_for(clock.sleep_until(1000.02), 5)
    clock.stand_still()
    reached = clock.now()
    assert reached >= 1000.02 and not clock.following_real_time
    clock.owe_real_time()
    clock.stand_still()
    clock.catch_up()  # nothing owed any more
    sleeper = asyncio.ensure_future(clock.sleep_until(reached + 0.01))
    await asyncio.sleep(0.03)
    assert clock.now() == reached and not sleeper.done()
    clock.advance_to(reached + 0.01)
    await sleeper


async def test_a_jump_while_following_keeps_following_from_there() -> None:
    clock = VirtualClock(1000.0)
    clock.owe_real_time()
    clock.catch_up()
    jumped = asyncio.ensure_future(clock.sleep_until(2000.0))
    after = asyncio.ensure_future(clock.sleep_until(2000.02))
    await asyncio.sleep(0)
    clock.advance_to(2000.0)
    await jumped
    assert not after.done()
    await asyncio.wait_for(after, 5)
    assert clock.now() >= 2000.02
