"""``ActivityEnvironment.run`` keeps the activity's types, checked by mypy --strict (this file
is in mypy's files) and run as a test."""

from __future__ import annotations

from typing import assert_type

from perdure import activity
from perdure.testing import ActivityEnvironment


@activity.defn
async def double(x: int) -> int:
    return x * 2


@activity.defn
def shout(text: str) -> str:
    return text.upper()


async def test_run_returns_what_the_activity_returns() -> None:
    env = ActivityEnvironment()
    assert_type(await env.run(double, 21), int)
    assert_type(env.run(shout, "hi"), str)
    assert_type(env.info, activity.Info)
    assert await env.run(double, 21) == 42
    assert env.run(shout, "hi") == "HI"
