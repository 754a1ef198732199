"""Ready-made payload codecs: compression, encryption, and a composite to chain them.

Both :class:`ZlibCodec` and :class:`AesGcmCodec` wrap the *whole* original payload (metadata
and data), so the stored payload reveals only the codec's own encoding and decode restores
the original exactly. The wrapped form is a small versioned binary framing (see
:func:`_serialize_payload`), never pickle.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from perdure._common.payload import Payload
from perdure.converter._data_converter import PayloadCodec
from perdure.converter._payload_converter import ENCODING_KEY

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# --- Framing ---------------------------------------------------------------------------------
#
# Version 1, all integers big-endian:
#
#     u8   version (1)
#     u16  number of metadata entries
#     per entry:  u16 key length, key (UTF-8), u32 value length, value
#     the rest:   data
#
# Data runs to the end, so it needs no length and is not copied twice on the way in.

_FRAMING_V1 = 1
_HEADER = struct.Struct(">BH")
_KEY_LEN = struct.Struct(">H")
_VALUE_LEN = struct.Struct(">I")


def _serialize_payload(payload: Payload) -> bytes:
    """``payload`` (metadata and data) as bytes that :func:`_deserialize_payload` reads back."""
    if len(payload.metadata) > 0xFFFF:
        raise ValueError(f"payload has {len(payload.metadata)} metadata entries; at most 65535")
    parts = [_HEADER.pack(_FRAMING_V1, len(payload.metadata))]
    for key, value in payload.metadata.items():
        key_bytes = key.encode()
        if len(key_bytes) > 0xFFFF:
            raise ValueError(f"payload metadata key {key[:40]!r}... is over 65535 bytes")
        if len(value) > 0xFFFFFFFF:
            raise ValueError(f"payload metadata value for {key!r} is over 4 GiB")
        parts += (_KEY_LEN.pack(len(key_bytes)), key_bytes, _VALUE_LEN.pack(len(value)), value)
    parts.append(payload.data)
    return b"".join(parts)


def _deserialize_payload(raw: bytes) -> Payload:
    """The payload written by :func:`_serialize_payload`; ``ValueError`` if ``raw`` is not one."""
    view = memoryview(raw)
    if not view or view[0] != _FRAMING_V1:
        found = view[0] if view else "none"
        raise ValueError(
            f"serialized payload has framing version {found}, but this perdure reads only "
            f"version {_FRAMING_V1}; it was written by a newer perdure or is not a payload"
        )
    try:
        _, count = _HEADER.unpack_from(view, 0)
        offset = _HEADER.size
        metadata: dict[str, bytes] = {}
        for _ in range(count):
            (key_len,) = _KEY_LEN.unpack_from(view, offset)
            offset += _KEY_LEN.size
            key = _take(view, offset, key_len).decode()
            offset += key_len
            (value_len,) = _VALUE_LEN.unpack_from(view, offset)
            offset += _VALUE_LEN.size
            metadata[key] = _take(view, offset, value_len)
            offset += value_len
    except (struct.error, UnicodeDecodeError) as e:
        raise ValueError(f"malformed serialized payload: {e}") from e
    return Payload(metadata=metadata, data=bytes(view[offset:]))


def _take(view: memoryview, offset: int, length: int) -> bytes:
    if offset + length > len(view):
        raise struct.error(f"a field of {length} bytes at offset {offset} runs past the end")
    return bytes(view[offset : offset + length])


# --- Compression -----------------------------------------------------------------------------

ZLIB_ENCODING = b"binary/zlib"


class ZlibCodec(PayloadCodec):
    """Compresses payloads with zlib when that makes them smaller.

    A payload whose data is at least ``min_size`` bytes is compressed (metadata included);
    if the result is not smaller than the original, the original is kept. Small and
    incompressible payloads pass through unchanged, and decode passes through any payload
    this codec did not write, so it can be turned on for an existing store.

    Args:
        level: zlib compression level, 0 (none) to 9 (smallest, slowest).
        min_size: payloads with less data than this are not worth compressing.

    Example::

        converter = DataConverter(payload_codec=ZlibCodec())
    """

    def __init__(self, level: int = 6, *, min_size: int = 256) -> None:
        if not 0 <= level <= 9:
            raise ValueError(f"ZlibCodec level must be 0 to 9, got {level}")
        if min_size < 0:
            raise ValueError(f"ZlibCodec min_size must be 0 or more, got {min_size}")
        self.level = level
        self.min_size = min_size

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encode_one(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decode_one(p) for p in payloads]

    def _encode_one(self, payload: Payload) -> Payload:
        if len(payload.data) < self.min_size:
            return payload
        compressed = Payload(
            metadata={ENCODING_KEY: ZLIB_ENCODING},
            data=zlib.compress(_serialize_payload(payload), self.level),
        )
        return compressed if compressed.size() < payload.size() else payload

    def _decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get(ENCODING_KEY) != ZLIB_ENCODING:
            return payload
        try:
            raw = zlib.decompress(payload.data)
        except zlib.error as e:
            raise ValueError(f"cannot decompress binary/zlib payload: {e}") from e
        return _deserialize_payload(raw)


# --- Encryption ------------------------------------------------------------------------------

ENCRYPTED_ENCODING = b"binary/encrypted"
KEY_ID_KEY = "encryption-key-id"
_NONCE_SIZE = 12
_TAG_SIZE = 16
_KEY_SIZES = (16, 24, 32)


def _load_aesgcm() -> type[AESGCM]:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as e:
        raise ImportError(
            "AesGcmCodec needs the 'cryptography' package: pip install 'perdure[crypto]'"
        ) from e
    return AESGCM


def _check_key(key: object, key_id: str) -> bytes:
    if not isinstance(key, bytes | bytearray):
        raise TypeError(
            f"AesGcmCodec key {key_id!r} must be bytes, got {type(key).__name__}; decode a "
            "text key first, e.g. bytes.fromhex(...) or base64.b64decode(...)"
        )
    if len(key) not in _KEY_SIZES:
        raise ValueError(
            f"AesGcmCodec key {key_id!r} is {len(key)} bytes; an AES key must be 16, 24 or 32 "
            "bytes (32 for AES-256, e.g. AESGCM.generate_key(bit_length=256))"
        )
    return bytes(key)


def _check_key_id(key_id: object) -> str:
    if not isinstance(key_id, str) or not key_id:
        raise ValueError(f"AesGcmCodec key id must be a non-empty string, got {key_id!r}")
    return key_id


class AesGcmCodec(PayloadCodec):
    """Encrypts payloads with AES-GCM, with key ids for key rotation.

    Each payload (metadata included) is encrypted under ``key`` with a fresh random 12-byte
    nonce; the stored payload's metadata names only the encoding and ``key_id``, and the key
    id is bound to the ciphertext as associated data, so it cannot be swapped. Decode picks
    the key named by the payload, from ``key`` or ``previous_keys``; any other payload passes
    through unchanged. To rotate, give the new key a new id and move the old one to
    ``previous_keys`` until nothing encrypted with it is still needed.

    Random nonces are safe for about 2**32 payloads per key; rotate well before that.

    Args:
        key: the key new payloads are encrypted with: 32 bytes for AES-256 (16 and 24 are
            accepted for AES-128 and AES-192).
        key_id: the name stored with each payload so decode can find its key.
        previous_keys: older keys by id, used only to decrypt.

    Raises:
        ImportError: the ``cryptography`` package is not installed
            (``pip install 'perdure[crypto]'``).
        ValueError: a key is not 16, 24 or 32 bytes, or a key id is empty or given twice
            with different keys.

    Example::

        codec = AesGcmCodec(new_key, key_id="2025-06", previous_keys={"2024-01": old_key})
        converter = DataConverter(payload_codec=CompositeCodec([ZlibCodec(), codec]))
    """

    def __init__(
        self,
        key: bytes,
        *,
        key_id: str = "default",
        previous_keys: Mapping[str, bytes] | None = None,
    ) -> None:
        aesgcm = _load_aesgcm()
        self.key_id = _check_key_id(key_id)
        self._key_id_bytes = self.key_id.encode()
        current = _check_key(key, self.key_id)
        self._ciphers: dict[bytes, AESGCM] = {self._key_id_bytes: aesgcm(current)}
        for old_id, old_key in (previous_keys or {}).items():
            old_id = _check_key_id(old_id)
            old_key = _check_key(old_key, old_id)
            if old_id == self.key_id:
                if old_key != current:
                    raise ValueError(
                        f"AesGcmCodec key id {old_id!r} is both the current key and a "
                        "different previous key; give each key its own id"
                    )
                continue
            self._ciphers[old_id.encode()] = aesgcm(old_key)

    def __repr__(self) -> str:
        old = sorted(k.decode() for k in self._ciphers if k != self._key_id_bytes)
        return f"AesGcmCodec(key_id={self.key_id!r}, previous_key_ids={old!r})"

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self._ciphers[self._key_id_bytes]
        out = []
        for payload in payloads:
            nonce = os.urandom(_NONCE_SIZE)
            sealed = cipher.encrypt(nonce, _serialize_payload(payload), self._key_id_bytes)
            out.append(
                Payload(
                    metadata={ENCODING_KEY: ENCRYPTED_ENCODING, KEY_ID_KEY: self._key_id_bytes},
                    data=nonce + sealed,
                )
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decode_one(p) for p in payloads]

    def _decode_one(self, payload: Payload) -> Payload:
        from cryptography.exceptions import InvalidTag

        if payload.metadata.get(ENCODING_KEY) != ENCRYPTED_ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_KEY)
        if key_id is None:
            raise ValueError(
                f"cannot decrypt payload: it has no {KEY_ID_KEY!r} metadata, so it was not "
                "written by AesGcmCodec or was tampered with"
            )
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            known = ", ".join(repr(k.decode()) for k in self._ciphers)
            raise ValueError(
                f"cannot decrypt payload: it was encrypted with key id "
                f"{key_id.decode(errors='replace')!r}, which this codec does not have "
                f"(it has {known}); pass that key in previous_keys"
            )
        if len(payload.data) < _NONCE_SIZE + _TAG_SIZE:
            raise ValueError("cannot decrypt payload: wrong key or tampered data (too short)")
        nonce, sealed = payload.data[:_NONCE_SIZE], payload.data[_NONCE_SIZE:]
        try:
            raw = cipher.decrypt(nonce, sealed, key_id)
        except InvalidTag:
            raise ValueError(
                f"cannot decrypt payload: wrong key or tampered data (key id "
                f"{key_id.decode(errors='replace')!r})"
            ) from None
        return _deserialize_payload(raw)


# --- Composition -----------------------------------------------------------------------------


class CompositeCodec(PayloadCodec):
    """Runs codecs in order on encode and in reverse order on decode.

    Put compression before encryption: encrypted bytes do not compress.

    Example::

        codec = CompositeCodec([ZlibCodec(), AesGcmCodec(key)])  # compress, then encrypt
    """

    def __init__(self, codecs: Sequence[PayloadCodec]) -> None:
        self.codecs = tuple(codecs)

    def __repr__(self) -> str:
        return f"CompositeCodec({list(self.codecs)!r})"

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = list(payloads)
        for codec in self.codecs:
            out = await codec.encode(out)
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = list(payloads)
        for codec in reversed(self.codecs):
            out = await codec.decode(out)
        return out
