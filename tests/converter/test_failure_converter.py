"""Failure encoding (Temporal's ``encode_common_attributes``): a failure's message and stack
trace move into a payload at every level of its cause chain, and come back when read, by any
failure converter."""

from __future__ import annotations

from typing import Any

from perdure.converter import (
    AesGcmCodec,
    DataConverter,
    DefaultFailureConverter,
    DefaultFailureConverterWithEncodedAttributes,
    FailureConverter,
)
from perdure.exceptions import ApplicationError, FailureError

PAYLOADS = DataConverter().payload_converter


def raised() -> ApplicationError:
    """An error with a stack trace and a cause, as workflow code would raise it."""
    try:
        try:
            raise ValueError("card 4242 expired")
        except ValueError as inner:
            raise ApplicationError("payment failed for 4242", {"card": "4242"}) from inner
    except ApplicationError as err:
        return err


def chain(failure: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = []
    while failure is not None:
        out.append(failure)
        failure = failure.get("cause")
    return out


def test_the_default_converter_keeps_messages_in_place() -> None:
    assert DataConverter().failure_converter_class is DefaultFailureConverter
    failure = DefaultFailureConverter().to_failure(raised(), PAYLOADS)
    assert failure["message"] == "payment failed for 4242"
    assert "ValueError: card 4242 expired" in failure["cause"]["stack_trace"]
    assert "encoded_attributes" not in failure


def test_encoding_moves_message_and_stack_trace_at_every_level() -> None:
    failure = DefaultFailureConverterWithEncodedAttributes().to_failure(raised(), PAYLOADS)
    levels = chain(failure)
    assert len(levels) == 2
    for level in levels:
        assert level["message"] == "Encoded failure"
        assert level["stack_trace"] == ""
        assert level["encoded_attributes"].metadata["encoding"] == b"json/plain"
    # What the store reads to decide on retries stays where it was.
    assert failure["type"] == "ApplicationError" and failure["non_retryable"] is False
    assert [PAYLOADS.from_payload(d) for d in failure["details"]] == [{"card": "4242"}]


def test_any_converter_reads_an_encoded_failure_back() -> None:
    stored = DefaultFailureConverter(encode_common_attributes=True).to_failure(raised(), PAYLOADS)
    for reader in (FailureConverter(), DefaultFailureConverterWithEncodedAttributes()):
        err = reader.from_failure(stored, PAYLOADS)
        assert isinstance(err, ApplicationError)
        assert err.message == "payment failed for 4242"
        assert list(err.details) == [{"card": "4242"}]
        assert "payment failed for 4242" in (err.failure or {})["stack_trace"]
        assert isinstance(err.cause, FailureError)
        assert err.cause.message == "card 4242 expired"
        assert "encoded_attributes" not in (err.failure or {})
    assert stored["message"] == "Encoded failure"  # the stored failure is left as it was


def test_a_failure_read_back_and_passed_on_stays_encoded() -> None:
    converter = DefaultFailureConverterWithEncodedAttributes()
    stored = converter.to_failure(raised(), PAYLOADS)
    err = converter.from_failure(stored, PAYLOADS)  # never raised: it carries its failure
    again = converter.to_failure(err, PAYLOADS)
    assert [level["message"] for level in chain(again)] == ["Encoded failure"] * 2
    assert converter.from_failure(again, PAYLOADS).message == "payment failed for 4242"


def test_an_encoded_failure_whose_attributes_cannot_be_read_is_left_as_stored() -> None:
    stored = DefaultFailureConverterWithEncodedAttributes().to_failure(raised(), PAYLOADS)
    stored["encoded_attributes"] = PAYLOADS.to_payload("not a dict")
    assert FailureConverter().from_failure(stored, PAYLOADS).message == "Encoded failure"


async def test_the_data_converter_codes_the_encoded_attributes() -> None:
    converter = DataConverter(
        payload_codec=AesGcmCodec(bytes(32), key_id="k"),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
    failure = await converter.encode_failure(raised())
    for level in chain(failure):
        assert level["encoded_attributes"].metadata["encoding"] == b"binary/encrypted"
    assert [d.metadata["encoding"] for d in failure["details"]] == [b"binary/encrypted"]
    err = await converter.decode_failure(failure)
    assert isinstance(err, ApplicationError)
    assert err.message == "payment failed for 4242"
    assert list(err.details) == [{"card": "4242"}]
    assert err.cause is not None and "card 4242 expired" in str(err.cause)
