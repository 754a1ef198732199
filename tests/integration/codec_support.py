"""The encrypting data converter the codec tests share (the ``codec_env`` fixture and the
external-storage tests)."""

from __future__ import annotations

import os

from perdure.converter import (
    AesGcmCodec,
    CompositeCodec,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    ZlibCodec,
)

ENCRYPTING = DataConverter(
    payload_codec=CompositeCodec([ZlibCodec(), AesGcmCodec(os.urandom(32), key_id="test")]),
    failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
)
