"""Payload codecs: zlib compression, AES-GCM encryption with key rotation, and chaining."""

from __future__ import annotations

import dataclasses
import os
import random
import struct
import zlib
from collections.abc import Sequence

import pytest

from perdure.converter import (
    AesGcmCodec,
    CompositeCodec,
    DataConverter,
    Payload,
    PayloadCodec,
    ZlibCodec,
)
from perdure.converter._codecs import _deserialize_payload, _serialize_payload

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


@dataclasses.dataclass
class Order:
    id: str
    lines: list[str]
    total_cents: int


def compressible_order(size: int = 100_000) -> Order:
    return Order(id="o-1", lines=["widget, blue, size 10"] * (size // 24), total_cents=1999)


def incompressible(size: int) -> bytes:
    return random.Random(1234).randbytes(size)


async def roundtrip(codec: PayloadCodec, *values: object) -> tuple[list[Payload], list[object]]:
    converter = DataConverter(payload_codec=codec)
    stored = await converter.encode(values)
    back = await converter.decode(stored, [type(v) for v in values])
    return stored, back


# --- Framing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        Payload(),
        Payload(metadata={"encoding": b"json/plain"}, data=b'{"a":1}'),
        Payload(metadata={"encoding": b"binary/plain", "ünïcode": b"\x00\xff", "": b""}, data=b""),
        Payload(metadata={}, data=incompressible(5000)),
    ],
)
def test_framing_round_trips_metadata_and_data_exactly(payload: Payload) -> None:
    assert _deserialize_payload(_serialize_payload(payload)) == payload


def test_framing_is_versioned_and_rejects_garbage() -> None:
    raw = _serialize_payload(Payload(metadata={"encoding": b"json/plain"}, data=b"1"))
    assert raw[0] == 1
    with pytest.raises(ValueError, match="framing version 2"):
        _deserialize_payload(b"\x02" + raw[1:])
    with pytest.raises(ValueError, match="framing version none"):
        _deserialize_payload(b"")
    with pytest.raises(ValueError, match="malformed serialized payload"):
        _deserialize_payload(raw[:6])
    # A metadata value length that runs past the end.
    with pytest.raises(ValueError, match="malformed serialized payload"):
        _deserialize_payload(struct.pack(">BHH", 1, 1, 1) + b"k" + struct.pack(">I", 99) + b"v")


# --- ZlibCodec -------------------------------------------------------------------------------


async def test_zlib_round_trips_dataclasses_and_compresses_large_ones() -> None:
    order = compressible_order()
    small = Order(id="o-2", lines=[], total_cents=0)
    stored, back = await roundtrip(ZlibCodec(), order, small, None, b"raw")
    assert back == [order, small, None, b"raw"]
    assert stored[0].metadata == {"encoding": b"binary/zlib"}
    assert stored[0].size() < 5_000
    # Small payloads are not worth compressing and pass through as the converter wrote them.
    assert stored[1].metadata == {"encoding": b"json/plain"}
    assert stored[2].metadata == {"encoding": b"binary/null"}


async def test_zlib_restores_the_original_payload_exactly() -> None:
    original = Payload(metadata={"encoding": b"json/plain", "extra": b"x"}, data=b"a" * 1000)
    [stored] = await ZlibCodec().encode([original])
    assert stored.metadata == {"encoding": b"binary/zlib"}
    assert await ZlibCodec().decode([stored]) == [original]


async def test_zlib_keeps_payloads_compression_would_not_shrink() -> None:
    noise = Payload(metadata={"encoding": b"binary/plain"}, data=incompressible(10_000))
    assert await ZlibCodec().encode([noise]) == [noise]


async def test_zlib_min_size_and_level() -> None:
    payload = Payload(metadata={"encoding": b"binary/plain"}, data=b"z" * 300)
    assert await ZlibCodec(min_size=301).encode([payload]) == [payload]
    [compressed] = await ZlibCodec(min_size=300).encode([payload])
    assert compressed.metadata == {"encoding": b"binary/zlib"}
    fast, best = ZlibCodec(level=1), ZlibCodec(level=9)
    assert await fast.decode(await best.encode([payload])) == [payload]
    with pytest.raises(ValueError, match="level must be 0 to 9"):
        ZlibCodec(level=10)
    with pytest.raises(ValueError, match="min_size must be 0 or more"):
        ZlibCodec(min_size=-1)


async def test_zlib_decode_passes_through_other_encodings_and_rejects_corrupt_data() -> None:
    other = Payload(metadata={"encoding": b"json/plain"}, data=b"[1]")
    assert await ZlibCodec().decode([other]) == [other]
    corrupt = Payload(metadata={"encoding": b"binary/zlib"}, data=b"not zlib")
    with pytest.raises(ValueError, match="cannot decompress"):
        await ZlibCodec().decode([corrupt])
    not_framed = Payload(metadata={"encoding": b"binary/zlib"}, data=zlib.compress(b"\x07junk"))
    with pytest.raises(ValueError, match="framing version 7"):
        await ZlibCodec().decode([not_framed])


# --- AesGcmCodec -----------------------------------------------------------------------------


async def test_aes_round_trips_and_hides_the_plaintext() -> None:
    order = Order(id="secret-order-42", lines=["credit card 4111"], total_cents=12345)
    stored, back = await roundtrip(AesGcmCodec(KEY), order, None)
    assert back == [order, None]
    for payload in stored:
        assert payload.metadata == {
            "encoding": b"binary/encrypted",
            "encryption-key-id": b"default",
        }
    assert b"secret-order-42" not in stored[0].data
    assert b"4111" not in stored[0].data
    # The original encoding is encrypted too, not left beside the ciphertext.
    assert b"json/plain" not in stored[0].data
    assert b"binary/null" not in stored[1].data


async def test_aes_uses_a_fresh_nonce_per_payload() -> None:
    payload = Payload(metadata={"encoding": b"binary/plain"}, data=b"same")
    first, second = await AesGcmCodec(KEY).encode([payload, payload])
    assert first.data[:12] != second.data[:12]
    assert first.data != second.data


@pytest.mark.parametrize("size", [16, 24, 32])
async def test_aes_accepts_128_192_and_256_bit_keys(size: int) -> None:
    codec = AesGcmCodec(os.urandom(size))
    payload = Payload(metadata={"encoding": b"binary/plain"}, data=b"x")
    assert await codec.decode(await codec.encode([payload])) == [payload]


@pytest.mark.parametrize("size", [0, 15, 31, 33, 64])
def test_aes_rejects_keys_of_other_lengths(size: int) -> None:
    with pytest.raises(ValueError, match=f"is {size} bytes; an AES key must be 16, 24 or 32"):
        AesGcmCodec(b"k" * size)


def test_aes_rejects_bad_previous_keys_text_keys_and_empty_ids() -> None:
    with pytest.raises(ValueError, match="key 'old' is 5 bytes"):
        AesGcmCodec(KEY, previous_keys={"old": b"short"})
    with pytest.raises(TypeError, match="must be bytes, got str"):
        AesGcmCodec(KEY.hex())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty string"):
        AesGcmCodec(KEY, key_id="")
    with pytest.raises(ValueError, match="give each key its own id"):
        AesGcmCodec(KEY, key_id="k1", previous_keys={"k1": OTHER_KEY})
    # The same key under the same id is harmless.
    AesGcmCodec(KEY, key_id="k1", previous_keys={"k1": KEY})


def test_aes_repr_shows_key_ids_not_keys() -> None:
    codec = AesGcmCodec(KEY, key_id="new", previous_keys={"old": OTHER_KEY})
    assert repr(codec) == "AesGcmCodec(key_id='new', previous_key_ids=['old'])"
    assert KEY.hex() not in repr(codec)


async def test_aes_wrong_key_is_refused() -> None:
    [stored] = await AesGcmCodec(KEY).encode([Payload(data=b"x")])
    with pytest.raises(ValueError, match="cannot decrypt payload: wrong key or tampered data"):
        await AesGcmCodec(OTHER_KEY).decode([stored])


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag", "truncated"])
async def test_aes_tampered_data_is_refused(where: str) -> None:
    [stored] = await AesGcmCodec(KEY).encode([Payload(data=b"pay 10 EUR to alice")])
    data = bytearray(stored.data)
    if where == "nonce":
        data[0] ^= 1
    elif where == "ciphertext":
        data[14] ^= 1
    elif where == "tag":
        data[-1] ^= 1
    else:
        data = data[:20]
    tampered = Payload(metadata=dict(stored.metadata), data=bytes(data))
    with pytest.raises(ValueError, match="cannot decrypt payload: wrong key or tampered data"):
        await AesGcmCodec(KEY).decode([tampered])


async def test_aes_key_id_is_bound_to_the_ciphertext() -> None:
    # Both ids name the same key, so only the associated data can tell them apart.
    codec = AesGcmCodec(KEY, key_id="a", previous_keys={"b": KEY})
    [stored] = await codec.encode([Payload(data=b"x")])
    relabelled = Payload(
        metadata={**stored.metadata, "encryption-key-id": b"b"},
        data=stored.data,
    )
    with pytest.raises(ValueError, match="wrong key or tampered data"):
        await codec.decode([relabelled])


async def test_aes_unknown_key_id_names_it_and_says_what_to_do() -> None:
    [stored] = await AesGcmCodec(KEY, key_id="2024-01").encode([Payload(data=b"x")])
    with pytest.raises(ValueError, match=r"key id '2024-01'.*pass that key in previous_keys"):
        await AesGcmCodec(OTHER_KEY, key_id="2025-06").decode([stored])
    no_id = Payload(metadata={"encoding": b"binary/encrypted"}, data=stored.data)
    with pytest.raises(ValueError, match="no 'encryption-key-id' metadata"):
        await AesGcmCodec(KEY).decode([no_id])


async def test_aes_key_rotation_reads_old_payloads_and_writes_with_the_new_key() -> None:
    old_order = Order(id="before", lines=[], total_cents=1)
    old = DataConverter(payload_codec=AesGcmCodec(KEY, key_id="2024-01"))
    stored_before = await old.encode([old_order])

    rotated = DataConverter(
        payload_codec=AesGcmCodec(OTHER_KEY, key_id="2025-06", previous_keys={"2024-01": KEY})
    )
    assert await rotated.decode(stored_before, [Order]) == [old_order]
    new_order = Order(id="after", lines=[], total_cents=2)
    stored_after = await rotated.encode([new_order])
    assert stored_after[0].metadata["encryption-key-id"] == b"2025-06"
    # Mixed generations in one batch decode together.
    both = await rotated.decode([*stored_before, *stored_after], [Order, Order])
    assert both == [old_order, new_order]
    # The old codec cannot read what the new key wrote.
    with pytest.raises(ValueError, match="key id '2025-06'"):
        await old.decode(stored_after, [Order])


async def test_aes_decode_passes_through_other_encodings() -> None:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b"1")
    assert await AesGcmCodec(KEY).decode([plain]) == [plain]


# --- CompositeCodec --------------------------------------------------------------------------


@dataclasses.dataclass
class Tagging(PayloadCodec):
    """Records the order codecs run in by wrapping data in its name."""

    name: str
    calls: list[str]

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.calls.append(f"encode {self.name}")
        return [Payload(dict(p.metadata), self.name.encode() + p.data) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.calls.append(f"decode {self.name}")
        prefix = self.name.encode()
        for p in payloads:
            assert p.data.startswith(prefix), (self.name, p.data)
        return [Payload(dict(p.metadata), p.data[len(prefix) :]) for p in payloads]


async def test_composite_encodes_in_order_and_decodes_in_reverse() -> None:
    calls: list[str] = []
    codec = CompositeCodec([Tagging("a", calls), Tagging("b", calls)])
    [stored] = await codec.encode([Payload(data=b"x")])
    assert stored.data == b"bax"
    assert await codec.decode([stored]) == [Payload(data=b"x")]
    assert calls == ["encode a", "encode b", "decode b", "decode a"]


async def test_composite_of_nothing_changes_nothing() -> None:
    payload = Payload(data=b"x")
    assert await CompositeCodec([]).encode([payload]) == [payload]
    assert await CompositeCodec([]).decode([payload]) == [payload]


async def test_compress_then_encrypt_actually_compresses() -> None:
    order = compressible_order(100_000)
    plain = await DataConverter().encode([order])
    assert plain[0].size() > 100_000

    stored, back = await roundtrip(CompositeCodec([ZlibCodec(), AesGcmCodec(KEY)]), order)
    assert back == [order]
    assert stored[0].metadata["encoding"] == b"binary/encrypted"
    assert stored[0].size() < 5_000
    assert b"widget" not in stored[0].data

    # The other way round encryption leaves nothing for zlib to find.
    stored_wrong_way, _ = await roundtrip(CompositeCodec([AesGcmCodec(KEY), ZlibCodec()]), order)
    assert stored_wrong_way[0].size() > 100_000
