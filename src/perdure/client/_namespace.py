"""A namespace's data lifecycle settings (Temporal's UpdateNamespace / DescribeNamespace,
``workflow_execution_retention_ttl`` and history archival), and the archivers that keep a
copy of each history before retention deletes it."""

from __future__ import annotations

import asyncio
import os
import tempfile
import urllib.parse
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perdure._errors import PerdureError
from perdure._store._types import NamespaceRow

if TYPE_CHECKING:
    from perdure._store import Store
    from perdure.client._history import WorkflowHistory

_UNSET: Any = object()


@dataclass(frozen=True)
class NamespaceDescription:
    """What ``describe_namespace()`` returns.

    Attributes:
        name: the namespace.
        retention: how long closed workflows are kept (None: forever, the default).
        archive_uri: where each history is archived before retention deletes it (None:
            not archived).
    """

    name: str
    retention: timedelta | None
    archive_uri: str | None


class Archiver(ABC):
    """Keeps a closed run's history before retention deletes it from the database.

    Workers archive each run (``archive``) and delete it only once that returned. A namespace
    names its archiver by URI (``update_namespace(archive_uri=...)``): ``file:///path`` is a
    :class:`FileArchiver`; another kind is given to the workers that sweep,
    ``Worker(..., archiver=MyArchiver())``, whose ``uri`` must be the namespace's.
    """

    @property
    @abstractmethod
    def uri(self) -> str:
        """Where the archives go, as the namespace names it."""

    @abstractmethod
    async def archive(self, namespace: str, history: WorkflowHistory) -> None:
        """Keep ``history`` (a ``WorkflowHistory``: ``to_json()`` is its document). Called
        again for a run whose deletion did not commit: overwrite."""


class FileArchiver(Archiver):
    """Each history as a JSON file, ``<path>/<namespace>/<workflow id>/<run id>.json`` (the
    ``WorkflowHistory.to_json()`` document, which ``perdure history import`` reads back).

    Example::

        await client.update_namespace(retention=timedelta(days=30),
                                      archive_uri=FileArchiver("/var/archive").uri)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).absolute()

    @property
    def uri(self) -> str:
        return self.path.as_uri()

    def file_of(self, namespace: str, workflow_id: str, run_id: str) -> Path:
        """The file a run's history is archived in."""
        quote = urllib.parse.quote
        return (
            self.path / quote(namespace, safe="") / quote(workflow_id, safe="") / f"{run_id}.json"
        )

    async def archive(self, namespace: str, history: WorkflowHistory) -> None:
        file = self.file_of(namespace, history.workflow_id, history.run_id)
        await asyncio.to_thread(_write, file, history.to_json().encode())


def _write(file: Path, data: bytes) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def archiver_from_uri(uri: str) -> Archiver:
    """The built-in archiver a URI names.

    Raises:
        PerdureError: a URI no built-in archiver takes.
    """
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme == "file" and parts.path:
        return FileArchiver(urllib.parse.unquote(parts.path))
    raise PerdureError(
        f"No built-in archiver for {uri!r} (file:///path is one): give the workers one, "
        "Worker(..., archiver=...), whose uri is this"
    )


def _check_archive_uri(uri: str | None) -> str | None:
    if uri is None:
        return None
    parts = urllib.parse.urlsplit(uri)
    if not parts.scheme or not (parts.path or parts.netloc):
        raise ValueError(f"Not an archive URI: {uri!r} (file:///var/archive, for example)")
    return uri


class NamespaceMethods:
    """``Client``'s namespace methods."""

    if TYPE_CHECKING:
        namespace: str

        @property
        def store(self) -> Store: ...

    async def describe_namespace(self) -> NamespaceDescription:
        """This client's namespace's settings."""
        row = await self.store.get_namespace(self.namespace)
        return _description(row)

    async def update_namespace(
        self,
        *,
        retention: timedelta | None = _UNSET,
        archive_uri: str | None = _UNSET,
    ) -> NamespaceDescription:
        """Change this client's namespace's settings (what is not passed stays).

        Args:
            retention: how long closed workflows (and all they own) are kept after they
                close; None keeps them forever (the default). Running workers delete them.
            archive_uri: where each history is archived before it is deleted
                (``file:///var/archive``, or the ``uri`` of the archiver the workers are
                given); None: deleted without archiving.

        Example::

            await client.update_namespace(retention=timedelta(days=30))
        """
        row = await self.store.get_namespace(self.namespace)
        if retention is not _UNSET:
            if retention is not None and not isinstance(retention, timedelta):
                raise TypeError(f"retention must be a timedelta or None, not {retention!r}")
            row.retention = None if retention is None else retention.total_seconds()
        if archive_uri is not _UNSET:
            row.archive_uri = _check_archive_uri(archive_uri)
        return _description(await self.store.update_namespace(row))


def _description(row: NamespaceRow) -> NamespaceDescription:
    retention = None if row.retention is None else timedelta(seconds=row.retention)
    return NamespaceDescription(row.name, retention, row.archive_uri)
