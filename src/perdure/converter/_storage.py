"""Where offloaded payloads are kept: the ``ExternalStorage`` interface and ``FileStorage``
(``S3Storage`` is in ``_s3``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from abc import ABC, abstractmethod
from datetime import timedelta
from pathlib import Path

from perdure._errors import ExternalPayloadNotFoundError, PerdureError

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
