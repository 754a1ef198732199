from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from perdure._common.payload import Payload, RawValue
from perdure.converter._json import decode_value, encode_value

ENCODING_KEY = "encoding"


class EncodingPayloadConverter(ABC):
    """Converts values of some kinds to payloads of one encoding, and back."""

    @property
    @abstractmethod
    def encoding(self) -> str:
        """The ``encoding`` metadata value this converter writes and reads."""

    @abstractmethod
    def to_payload(self, value: Any) -> Payload | None:
        """The payload for ``value``, or ``None`` when this converter does not handle it."""

    @abstractmethod
    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        """The value in ``payload``, as ``type_hint`` when one is given."""


class PayloadConverter(ABC):
    """Converts values to payloads and back."""

    @abstractmethod
    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        """One payload per value."""

    @abstractmethod
    def from_payloads(
        self, payloads: Sequence[Payload], type_hints: Sequence[Any] | None = None
    ) -> list[Any]:
        """One value per payload, each as its type hint when given."""

    def to_payload(self, value: Any) -> Payload:
        return self.to_payloads([value])[0]

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        return self.from_payloads([payload], [type_hint])[0]


class CompositePayloadConverter(PayloadConverter):
    """Tries its encoding converters in order; the first that takes a value writes it.

    A ``RawValue`` passes through both ways: as a value it is its payload, and as a type
    hint it wraps the payload unread (as in Temporal).
    """

    def __init__(self, *converters: EncodingPayloadConverter) -> None:
        self.converters = {c.encoding.encode(): c for c in converters}

    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        out = []
        for value in values:
            if isinstance(value, RawValue):
                out.append(value.payload)
                continue
            for converter in self.converters.values():
                payload = converter.to_payload(value)
                if payload is not None:
                    out.append(payload)
                    break
            else:
                raise TypeError(
                    f"No payload converter could convert a value of type {type(value).__name__}"
                )
        return out

    def from_payloads(
        self, payloads: Sequence[Payload], type_hints: Sequence[Any] | None = None
    ) -> list[Any]:
        out = []
        for i, payload in enumerate(payloads):
            hint = type_hints[i] if type_hints is not None and i < len(type_hints) else None
            if hint is RawValue:
                out.append(RawValue(payload))
                continue
            encoding = payload.metadata.get(ENCODING_KEY, b"")
            converter = self.converters.get(encoding)
            if converter is None:
                raise TypeError(f"No payload converter for encoding {encoding.decode()!r}")
            out.append(converter.from_payload(payload, hint))
        return out


class BinaryNullPayloadConverter(EncodingPayloadConverter):
    """``None`` as an empty ``binary/null`` payload."""

    @property
    def encoding(self) -> str:
        return "binary/null"

    def to_payload(self, value: Any) -> Payload | None:
        if value is None:
            return Payload(metadata={ENCODING_KEY: b"binary/null"})
        return None

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        return None


class BinaryPlainPayloadConverter(EncodingPayloadConverter):
    """``bytes`` as they are, ``binary/plain``."""

    @property
    def encoding(self) -> str:
        return "binary/plain"

    def to_payload(self, value: Any) -> Payload | None:
        if isinstance(value, bytes):
            return Payload(metadata={ENCODING_KEY: b"binary/plain"}, data=value)
        return None

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        return payload.data


class JSONPlainPayloadConverter(EncodingPayloadConverter):
    """Everything else as JSON (``json/plain``): dataclasses, pydantic models, datetimes,
    UUIDs, enums, collections; decoded back to the type hint."""

    @property
    def encoding(self) -> str:
        return "json/plain"

    def to_payload(self, value: Any) -> Payload | None:
        return Payload(metadata={ENCODING_KEY: b"json/plain"}, data=encode_value(value))

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        return decode_value(payload.data, type_hint)


class DefaultPayloadConverter(CompositePayloadConverter):
    """``None``, ``bytes``, then JSON: the same encodings as Temporal's default converter.

    ``default_encoding_payload_converters`` holds them, for a converter that adds its own
    first (as Temporal's ``custom_converter`` sample does)::

        class MyConverter(CompositePayloadConverter):
            def __init__(self) -> None:
                super().__init__(MyEncoding(),
                                 *DefaultPayloadConverter.default_encoding_payload_converters)
    """

    default_encoding_payload_converters: ClassVar[tuple[EncodingPayloadConverter, ...]]

    def __init__(self) -> None:
        super().__init__(*DefaultPayloadConverter.default_encoding_payload_converters)


DefaultPayloadConverter.default_encoding_payload_converters = (
    BinaryNullPayloadConverter(),
    BinaryPlainPayloadConverter(),
    JSONPlainPayloadConverter(),
)
