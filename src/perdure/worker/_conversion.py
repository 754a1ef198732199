"""Converting what an activity hands back: its result, its heartbeat details, its error.

A value the payload converter cannot take (an object JSON cannot hold, ``float("nan")``)
would be the same on every attempt, so retrying cannot help: it fails the attempt with a
non-retryable :class:`~perdure.exceptions.PayloadConverterError` that says what could not be
converted and why. A codec that fails (a key service that is down) is another matter: that
error is the attempt's, retried as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from perdure._common.payload import Payload
from perdure._errors import PayloadConverterError
from perdure.converter import DataConverter, PayloadConverter


def _refused(what: str, exc: Exception) -> PayloadConverterError:
    return PayloadConverterError(f"{what} cannot be converted to a payload: {exc}", cause=exc)


def convert_result(converter: PayloadConverter, value: Any, what: str) -> Payload:
    """``value`` as a payload (the converter only, no codec).

    Raises:
        PayloadConverterError: the converter cannot take ``value`` (``what`` names it).
    """
    try:
        return converter.to_payload(value)
    except Exception as exc:
        raise _refused(what, exc) from exc


async def encode_result(conv: DataConverter, value: Any, what: str) -> Payload:
    """``value`` as its stored payload (converter, then codec).

    Raises:
        PayloadConverterError: the converter cannot take ``value`` (``what`` names it).
    """
    payload = convert_result(conv.payload_converter, value, what)
    if conv._store_codec is not None:
        return (await conv._store_codec.encode([payload]))[0]
    return payload


def check_details(converter: PayloadConverter, details: Sequence[Any], what: str) -> list[Payload]:
    """Heartbeat details as payloads, refused at the call that passed them if the converter
    cannot take them.

    Raises:
        PayloadConverterError: one of ``details`` cannot be converted.
    """
    try:
        return converter.to_payloads(list(details))
    except Exception as exc:
        raise _refused(what, exc) from exc


def failure_of(conv: DataConverter, exc: BaseException) -> dict[str, Any]:
    """The failure an activity's error is recorded as; if the error carries details the
    converter cannot take, a non-retryable ``PayloadConverterError`` that says so."""
    failures, payloads = conv.failure_converter, conv.payload_converter
    try:
        return failures.to_failure(exc, payloads)
    except Exception as err:
        refused = PayloadConverterError(
            f"the details of the {type(exc).__name__} raised ({exc}) cannot be converted to a "
            f"payload: {err}"
        )
        return failures.to_failure(refused, payloads)


def loggable(converter: DataConverter, exc: BaseException) -> tuple[str, BaseException | None]:
    """What a worker may log of an error, and the exception to log the traceback of: with
    failure attributes encoded (``encode_common_attributes``), messages and stack traces may
    hold secrets, kept out of the database by the codec: the log says the type only."""
    if getattr(converter.failure_converter, "encode_common_attributes", False):
        return (
            f"{type(exc).__name__} (message and stack trace not logged: the data converter "
            "encodes failure attributes)",
            None,
        )
    return f"{type(exc).__name__}: {exc}", exc
