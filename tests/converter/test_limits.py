"""Payload size limits: a warning past 512 KiB, PayloadSizeError past 2 MiB."""

from __future__ import annotations

import logging

import pytest

from perdure._errors import PayloadSizeError
from perdure.converter import Payload
from perdure.converter._limits import PAYLOAD_LIMIT_BYTES, PAYLOAD_WARN_BYTES, check_payloads

KIB = 1024
MIB = 1024 * KIB
WHAT = "argument 1 of workflow 'Order'"


def payload_of(size: int) -> Payload:
    """A payload whose :meth:`Payload.size` is exactly ``size``."""
    metadata = {"encoding": b"binary/plain"}
    overhead = Payload(metadata=metadata).size()
    return Payload(metadata=metadata, data=b"x" * (size - overhead))


def test_the_limits() -> None:
    assert PAYLOAD_WARN_BYTES == 512 * KIB
    assert PAYLOAD_LIMIT_BYTES == 2 * MIB


def test_small_payloads_pass_quietly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        check_payloads([], WHAT)
        check_payloads([payload_of(100), payload_of(1000)], WHAT)
        check_payloads([payload_of(PAYLOAD_WARN_BYTES)], WHAT)
    assert caplog.records == []


def test_a_warning_past_512_kib_names_what_and_the_size(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="perdure.converter"):
        check_payloads([payload_of(600 * KIB)], WHAT)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.name == "perdure.converter"
    message = record.getMessage()
    assert WHAT in message
    assert "600 KiB" in message
    assert "store large data elsewhere" in message


def test_one_warning_per_call_for_the_total(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="perdure.converter"):
        check_payloads([payload_of(300 * KIB), payload_of(400 * KIB)], "arguments of 'Order'")
    [record] = caplog.records
    message = record.getMessage()
    assert "700 KiB" in message
    assert "the largest, number 2, is 400 KiB" in message


def test_the_warning_goes_to_the_logger_given(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("perdure.test.limits")
    with caplog.at_level(logging.WARNING):
        check_payloads([payload_of(1 * MIB)], WHAT, logger=logger)
    assert [r.name for r in caplog.records] == ["perdure.test.limits"]


def test_exactly_the_limit_is_allowed(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="perdure.converter"):
        check_payloads([payload_of(PAYLOAD_LIMIT_BYTES)], WHAT)
    assert len(caplog.records) == 1


def test_past_2_mib_raises_naming_what_the_size_and_the_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="perdure.converter"),
        pytest.raises(PayloadSizeError) as info,
    ):
        check_payloads([payload_of(PAYLOAD_LIMIT_BYTES + 1)], WHAT)
    message = str(info.value)
    assert WHAT in message
    assert "2,048 KiB (2,097,153 bytes)" in message
    assert "limit of 2,048 KiB" in message
    assert "store large data elsewhere (a blob store, a database) and pass a reference" in message
    assert "ZlibCodec" in message
    # The error says it all; no warning as well.
    assert caplog.records == []


def test_the_limit_is_on_the_total_of_one_call() -> None:
    with pytest.raises(PayloadSizeError, match=r"in 3 payloads \(the largest, number 1"):
        check_payloads([payload_of(1 * MIB), payload_of(MIB // 2), payload_of(MIB // 2 + 1)], WHAT)


def test_limits_can_be_set_per_call(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="perdure.converter"):
        check_payloads([payload_of(2 * KIB)], WHAT, warn_bytes=KIB, limit_bytes=4 * KIB)
    assert len(caplog.records) == 1
    with pytest.raises(PayloadSizeError, match="limit of 4 KiB"):
        check_payloads([payload_of(5 * KIB)], WHAT, warn_bytes=KIB, limit_bytes=4 * KIB)
