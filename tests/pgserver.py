"""A PostgreSQL server of a test's own, for the tests that stop, crash and restart it.

The shared test server (``pgutil``) must never be restarted: other tests use it. This starts
another one, from the binaries on ``PATH`` (or ``/usr/lib/postgresql/<version>/bin``), in a
temporary directory, listening on a free TCP port of 127.0.0.1 with trust authentication
and PostgreSQL's default durability settings (a crash test needs a real ``fsync``).

initdb and postgres refuse to run as root; as root, they run as the ``postgres`` OS user.
If the binaries or that user are missing the test is skipped, saying why; under
``PERDURE_REQUIRE_POSTGRES=1`` (CI) it fails instead.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pgutil import unavailable

_PROGRAMS = ("initdb", "pg_ctl", "postgres")
# Starting waits for recovery after a crash, which is quick for a test's small database.
_START_SECONDS = 60


def _bin_dir() -> Path | None:
    """A directory holding initdb, pg_ctl and postgres of one PostgreSQL version."""
    candidates = []
    found = shutil.which("pg_ctl")
    if found is not None:
        candidates.append(Path(found).resolve().parent)
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(versions, key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0))[::-1]
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in _PROGRAMS):
            return directory
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresServer:
    """One private PostgreSQL server (a cluster of its own, in a temporary directory).

    Args:
        bin_dir: where initdb, pg_ctl and postgres are.
        root: an empty directory the server's user owns; the data directory goes in it.
        user: the OS user to run the programs as (None: this process's user).
    """

    def __init__(self, bin_dir: Path, root: Path, user: pwd.struct_passwd | None) -> None:
        self._bin = bin_dir
        self._root = root
        self._user = user
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = 0

    @property
    def url(self) -> str:
        """A URL of its ``postgres`` database, as the superuser ``postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str, check: bool = True) -> int:
        as_user: dict[str, Any] = {}
        if self._user is not None:
            as_user = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        done = subprocess.run(
            [str(self._bin / program), *args],
            cwd=self._root,
            capture_output=True,
            text=True,
            timeout=_START_SECONDS + 30,
            check=False,
            **as_user,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(args)} exited with {done.returncode}:\n"
                f"{done.stdout}{done.stderr}\n--- server log ---\n{self.log_tail()}"
            )
        return done.returncode

    def _pg_ctl(self, action: str, *args: str) -> None:
        self._run("pg_ctl", action, "-D", str(self.data), "-l", str(self.log), "-w", *args)

    def init(self) -> None:
        """Create the cluster (about a second or two) and start the server on a free port."""
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        )
        for attempt in range(3):
            self.port = _free_port()
            with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
                # Only TCP: no socket file in a directory someone else owns.
                conf.write(
                    f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                    "unix_socket_directories = ''\n"
                )
            try:
                self.start()
                return
            except RuntimeError:
                if attempt == 2:  # the free port was taken meanwhile, three times over
                    raise

    def start(self) -> None:
        self._pg_ctl("start", "-t", str(_START_SECONDS))

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (roll back sessions, checkpoint), ``immediate`` (a
        crash: processes killed, recovery from the WAL at the next start) or ``smart``."""
        self._pg_ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        self._pg_ctl("restart", "-m", mode, "-t", str(_START_SECONDS))

    def is_running(self) -> bool:
        return self._run("pg_ctl", "status", "-D", str(self.data), check=False) == 0

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self._pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self._root, ignore_errors=True)


@contextlib.contextmanager
def private_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL server of the caller's own, destroyed on exit; or a skip saying
    why there cannot be one."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        unavailable(
            "This test starts a PostgreSQL server of its own and needs initdb, pg_ctl and "
            "postgres on PATH or in /usr/lib/postgresql/<version>/bin"
        )
    user = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            unavailable(
                "PostgreSQL refuses to run as root, and there is no `postgres` OS user to run "
                "a private test server as"
            )
    root = Path(tempfile.mkdtemp(prefix="perdure-pg-"))
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    server = PostgresServer(bin_dir, root, user)
    try:
        server.init()
        yield server
    finally:
        server.destroy()
