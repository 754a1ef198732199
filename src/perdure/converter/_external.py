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
import contextlib
import hashlib
import os
import struct
import tempfile
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import orjson

from perdure._common import external
from perdure._common.events import HistoryEvent
from perdure._common.payload import Payload
from perdure._errors import ExternalPayloadNotFoundError, PerdureError
from perdure.converter._visitor import decode_events

DEFAULT_THRESHOLD = 256 * 1024
DEFAULT_DELETE_GRACE = timedelta(hours=1)


class ExternalStorage(ABC):
    """Where payloads too large for history go: a small interface of blobs by key.

    Args:
        threshold: payloads larger than this many bytes (after the codec) are offloaded.
        delete_grace: a blob that no run refers to any more is deleted once it was last
            written at least this long ago (a worker about to record a reference to the
            same bytes has just written them again).

    Implementations must make ``put`` of an existing key refresh its write time, and may be
    called from several tasks at once.
    """

    def __init__(
        self,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        delete_grace: timedelta = DEFAULT_DELETE_GRACE,
    ) -> None:
        if threshold < 1024:
            raise ValueError(f"threshold must be at least 1024 bytes, not {threshold}")
        self.threshold = threshold
        self.delete_grace = delete_grace

    @property
    @abstractmethod
    def uri(self) -> str:
        """Where the blobs are, as references name it (``file:///path``, ``s3://bucket``)."""

    @abstractmethod
    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (or, if it is there, refresh its write time)."""

    @abstractmethod
    async def get(self, key: str) -> bytes:
        """The blob ``key``.

        Raises:
            ExternalPayloadNotFoundError: there is no such blob.
        """

    @abstractmethod
    async def written_at(self, key: str) -> float | None:
        """When the blob was last written (epoch seconds), or None if there is none."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Delete the blob ``key`` (no error if there is none)."""


class FileStorage(ExternalStorage):
    """Blobs as files in a directory (shared by every process that runs workers: a local
    directory for one machine, a network file system for several).

    Example::

        converter = DataConverter(external_storage=FileStorage("/var/lib/myapp/payloads"))
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        threshold: int = DEFAULT_THRESHOLD,
        delete_grace: timedelta = DEFAULT_DELETE_GRACE,
    ) -> None:
        super().__init__(threshold=threshold, delete_grace=delete_grace)
        self.path = Path(path).absolute()

    @property
    def uri(self) -> str:
        return self.path.as_uri()

    def __repr__(self) -> str:
        return f"FileStorage({str(self.path)!r})"

    def _file(self, key: str) -> Path:
        if not key.isalnum():
            raise ValueError(f"Not a payload key: {key!r}")
        return self.path / key[:2] / key

    async def put(self, key: str, data: bytes) -> None:
        try:
            await asyncio.to_thread(self._put, self._file(key), data)
        except OSError as exc:
            raise PerdureError(
                f"Cannot write offloaded payload {key} to {self.path}: {exc}"
            ) from exc

    @staticmethod
    def _put(file: Path, data: bytes) -> None:
        try:
            os.utime(file)  # the same bytes are there: only say they were written now
            return
        except FileNotFoundError:
            pass
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    async def get(self, key: str) -> bytes:
        file = self._file(key)
        try:
            return await asyncio.to_thread(file.read_bytes)
        except FileNotFoundError:
            raise ExternalPayloadNotFoundError(
                f"Offloaded payload {key} is not in {self.path} (no file {file}): it was "
                "deleted, or this is not the directory that stored it"
            ) from None
        except OSError as exc:
            raise PerdureError(
                f"Cannot read offloaded payload {key} from {self.path}: {exc}"
            ) from exc

    async def written_at(self, key: str) -> float | None:
        try:
            return (await asyncio.to_thread(self._file(key).stat)).st_mtime
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._file(key).unlink)


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
        from perdure.converter._s3 import S3Storage

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


async def resolve_events(codec: StorageCodec, events: Sequence[HistoryEvent]) -> list[HistoryEvent]:
    """Events with their offloaded payloads fetched back (still encoded by the codec): what
    ``fetch_history`` returns and archives hold."""
    return await decode_events(_Resolver(codec), events)
