"""Run ids are version 7 UUIDs: in the order they were made, from one millisecond to the
next, so that indexes keyed by run id grow at their end."""

from __future__ import annotations

import time
import uuid

from perdure._common.run_ids import new_run_id


def test_a_run_id_is_a_version_7_uuid() -> None:
    run_id = new_run_id()
    parsed = uuid.UUID(run_id)
    assert str(parsed) == run_id
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert abs((parsed.int >> 80) - time.time_ns() // 1_000_000) < 60_000


def test_run_ids_sort_by_the_millisecond_they_were_made_in() -> None:
    # The order holds from one millisecond to the next; within one it is random.
    ids = [new_run_id(ms) for ms in (1_700_000_000_000, 1_700_000_000_001, 1_800_000_000_000)]
    assert ids == sorted(ids)
    assert [uuid.UUID(i).int >> 80 for i in ids] == [
        1_700_000_000_000,
        1_700_000_000_001,
        1_800_000_000_000,
    ]
    assert len({new_run_id() for _ in range(10_000)}) == 10_000
