"""Large payloads kept outside the database: ``DataConverter(external_storage=...)``.

A payload larger than the storage's ``threshold`` (after the codec: an encrypted payload is
stored encrypted) is written to the storage as a blob named by the SHA-256 of its bytes, and
history keeps a small reference in its place (``perdure._common.external``). Reading it
back fetches the blob, checks its hash, and hands it to the codec. The 2 MB limit of a
payload in history applies to the reference, so a 100 MB activity result round-trips.

A reference names the storage it is in (``uri``), so a process configured without the
storage (``perdure workflow show``, the web UI) still reads the payloads of a
``FileStorage``, or of an ``S3Storage`` with credentials in its environment.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
import urllib.parse
from collections.abc import Sequence
from typing import Protocol

import orjson

from perdure._common import external
from perdure._common.events import HistoryEvent
from perdure._common.payload import Payload
from perdure._errors import PerdureError
from perdure.converter._storage import ExternalStorage, FileStorage
from perdure.converter._visitor import decode_events


def pack(payload: Payload) -> bytes:
    """A payload as one blob: the length of its metadata, its metadata (JSON), its data."""
    meta = orjson.dumps(Payload(payload.metadata).to_json()["metadata"])
    return struct.pack(">I", len(meta)) + meta + payload.data


def unpack(blob: bytes) -> Payload:
    """The payload :func:`pack` made ``blob`` of."""
    (n,) = struct.unpack_from(">I", blob)
    metadata = Payload.from_json({"metadata": orjson.loads(blob[4 : 4 + n])}).metadata
    return Payload(metadata, blob[4 + n :])


def storage_from_uri(uri: str) -> ExternalStorage:
    """The storage a reference names, for a process not configured with it.

    Raises:
        PerdureError: a kind of storage this process cannot open from its URI alone.
    """
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme == "file":
        return FileStorage(urllib.parse.unquote(parts.path))
    if parts.scheme == "s3":
        from perdure.converter._s3 import S3Storage  # http.client, email: only when used

        return S3Storage.from_uri(uri)
    raise PerdureError(
        f"Cannot read offloaded payloads from {uri!r}: give the client or worker the "
        "storage that wrote them, DataConverter(external_storage=...)"
    )


class _Codec(Protocol):
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]: ...

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]: ...


class StorageCodec:
    """The payload codec perdure runs between values and the store: the user's codec, then
    offloading (encode); resolving references, then the user's codec (decode)."""

    def __init__(self, codec: _Codec | None, storage: ExternalStorage | None) -> None:
        self.codec = codec
        self.storage = storage
        self._opened: dict[str, ExternalStorage] = {}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        coded = list(payloads) if self.codec is None else await self.codec.encode(payloads)
        storage = self.storage
        if storage is None:
            return coded
        large = [i for i, p in enumerate(coded) if p.size() > storage.threshold]
        if large:
            refs = await asyncio.gather(*(self._offload(storage, coded[i]) for i in large))
            for i, ref in zip(large, refs, strict=True):
                coded[i] = ref
        return coded

    async def _offload(self, storage: ExternalStorage, payload: Payload) -> Payload:
        blob = await asyncio.to_thread(pack, payload) if payload.size() > 1 << 20 else pack(payload)
        key = await asyncio.to_thread(_sha256, blob) if len(blob) > 1 << 20 else _sha256(blob)
        await storage.put(key, blob)
        return external.reference(key, len(blob), storage.uri)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        resolved = await self.resolve(payloads)
        return resolved if self.codec is None else await self.codec.decode(resolved)

    async def resolve(self, payloads: Sequence[Payload]) -> list[Payload]:
        """The payloads with each reference replaced by the payload it stands for (as the
        codec wrote it)."""
        out = list(payloads)
        refs = [i for i, p in enumerate(out) if external.is_reference(p)]
        if refs:
            fetched = await asyncio.gather(*(self._fetch(out[i]) for i in refs))
            for i, payload in zip(refs, fetched, strict=True):
                out[i] = payload
        return out

    def _storage_for(self, uri: str | None) -> ExternalStorage:
        if self.storage is not None and (uri is None or uri == self.storage.uri):
            return self.storage
        if uri is None:
            raise PerdureError(
                "A payload is stored outside the database and no external storage is "
                "configured: DataConverter(external_storage=...)"
            )
        if uri not in self._opened:
            self._opened[uri] = storage_from_uri(uri)
        return self._opened[uri]

    async def _fetch(self, ref: Payload) -> Payload:
        info = external.reference_info(ref)
        blob = await self._storage_for(info.uri).get(info.key)
        digest = await asyncio.to_thread(_sha256, blob) if len(blob) > 1 << 20 else _sha256(blob)
        if digest != info.key:
            raise PerdureError(
                f"Offloaded payload {info.key} is corrupt: its blob's SHA-256 is {digest}"
            )
        return await asyncio.to_thread(unpack, blob) if len(blob) > 1 << 20 else unpack(blob)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Resolver:
    """A codec whose decode only fetches offloaded payloads back."""

    def __init__(self, codec: StorageCodec) -> None:
        self.codec = codec

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return await self.codec.resolve(payloads)


async def resolve_events(
    storage: ExternalStorage | None, events: Sequence[HistoryEvent]
) -> list[HistoryEvent]:
    """Events with their offloaded payloads fetched back (still encoded by the codec): what
    ``fetch_history`` returns and archives hold. Blobs are read from ``storage``, or from
    the storage each reference names."""
    return await decode_events(_Resolver(StorageCodec(None, storage)), events)
