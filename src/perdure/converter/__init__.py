"""Turning values into stored payloads and back: JSON by default, with pluggable converters
and codecs. No pickle, ever, by default."""

from typing import TYPE_CHECKING, Any

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
from perdure.converter._storage import ExternalStorage, FileStorage

if TYPE_CHECKING:
    from perdure.converter._s3 import S3Storage


def __getattr__(name: str) -> Any:
    # S3Storage brings http.client and email along: loaded when it is asked for, so that
    # importing perdure does not (a bigger heap makes every garbage collection dearer).
    if name == "S3Storage":
        from perdure.converter._s3 import S3Storage

        return S3Storage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "ExternalStorage",
    "FailureConverter",
    "FileStorage",
    "JSONPlainPayloadConverter",
    "Payload",
    "PayloadCodec",
    "PayloadConverter",
    "S3Storage",
    "ZlibCodec",
    "default",
]
