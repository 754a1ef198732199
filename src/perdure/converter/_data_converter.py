from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cached_property
from typing import Any, ClassVar

from perdure._common.payload import Payload
from perdure._errors import FailureError
from perdure.converter._failure import DefaultFailureConverter, FailureConverter
from perdure.converter._payload_converter import DefaultPayloadConverter, PayloadConverter
from perdure.converter._visitor import decode_within, encode_within


class PayloadCodec(ABC):
    """Transforms payload bytes on their way to and from the store (compression, encryption).

    Codecs run in the worker and client, outside workflow code, so they may do I/O.
    """

    @abstractmethod
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Payloads as they will be stored."""

    @abstractmethod
    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Payloads as the converter wrote them."""


@dataclasses.dataclass(frozen=True)
class DataConverter:
    """How values become stored payloads: a payload converter, an optional codec, and a
    failure converter.

    The codec, when given, encodes every payload perdure stores (see the guide's "Data
    conversion" for what stays in plain text); with ``failure_converter_class=``
    :class:`DefaultFailureConverterWithEncodedAttributes` the messages and stack traces of
    failures too.

    Example::

        client = await Client.connect("sqlite:///app.db",
                                      data_converter=DataConverter(payload_codec=MyCodec()))
    """

    payload_converter_class: type[PayloadConverter] = DefaultPayloadConverter
    payload_codec: PayloadCodec | None = None
    failure_converter_class: type[FailureConverter] = DefaultFailureConverter

    default: ClassVar[DataConverter]

    @cached_property
    def payload_converter(self) -> PayloadConverter:
        return self.payload_converter_class()

    @cached_property
    def failure_converter(self) -> FailureConverter:
        return self.failure_converter_class()

    async def encode(self, values: Sequence[Any]) -> list[Payload]:
        """Values to stored payloads (converter, then codec)."""
        payloads = self.payload_converter.to_payloads(values)
        if self.payload_codec is not None:
            payloads = await self.payload_codec.encode(payloads)
        return payloads

    async def decode(
        self, payloads: Sequence[Payload], type_hints: Sequence[Any] | None = None
    ) -> list[Any]:
        """Stored payloads to values (codec, then converter)."""
        if self.payload_codec is not None:
            payloads = await self.payload_codec.decode(payloads)
        return self.payload_converter.from_payloads(payloads, type_hints)

    async def encode_failure(self, exception: BaseException) -> dict[str, Any]:
        """An exception as a stored failure (failure converter, then codec)."""
        failure = self.failure_converter.to_failure(exception, self.payload_converter)
        return await encode_within(self.payload_codec, failure)

    async def decode_failure(self, failure: dict[str, Any]) -> FailureError:
        """A stored failure as an exception (codec, then failure converter)."""
        failure = await decode_within(self.payload_codec, failure)
        return self.failure_converter.from_failure(failure, self.payload_converter)


DataConverter.default = DataConverter()


def default() -> DataConverter:
    """The default data converter (``DataConverter.default``), as Temporal's
    ``temporalio.converter.default()`` returns it: ``dataclasses.replace`` it to change a part."""
    return DataConverter.default
