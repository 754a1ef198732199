"""Turning values into stored payloads and back: JSON by default, with pluggable converters
and codecs. No pickle, ever, by default."""

from perdure._common.payload import Payload
from perdure.converter._codecs import AesGcmCodec, CompositeCodec, ZlibCodec
from perdure.converter._data_converter import DataConverter, PayloadCodec, default
from perdure.converter._failure import (
    DefaultFailureConverter,
    DefaultFailureConverterWithEncodedAttributes,
    FailureConverter,
)
from perdure.converter._payload_converter import (
    BinaryNullPayloadConverter,
    BinaryPlainPayloadConverter,
    CompositePayloadConverter,
    DefaultPayloadConverter,
    EncodingPayloadConverter,
    JSONPlainPayloadConverter,
    PayloadConverter,
)

__all__ = [
    "AesGcmCodec",
    "BinaryNullPayloadConverter",
    "BinaryPlainPayloadConverter",
    "CompositeCodec",
    "CompositePayloadConverter",
    "DataConverter",
    "DefaultFailureConverter",
    "DefaultFailureConverterWithEncodedAttributes",
    "DefaultPayloadConverter",
    "EncodingPayloadConverter",
    "FailureConverter",
    "JSONPlainPayloadConverter",
    "Payload",
    "PayloadCodec",
    "PayloadConverter",
    "ZlibCodec",
    "default",
]
