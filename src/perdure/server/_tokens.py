"""The token file: who may use the server, one ``TOKEN ROLE`` per line.

::

    # perdure server tokens: TOKEN ROLE (read or write; write if omitted)
    kq3JY2r0c3ZlX0bFhQd1mY6oEw7nT5aL9pRzUu2sVtw write
    Qm9vdHN0cmFwIGEgcmVhZC1vbmx5IHRva2VuIGhlcmU read

The file is created with mode 0600 and read again whenever it changes on disk, so a token
added by ``perdure server token create`` (or removed by hand) takes effect on the next request
without a restart. Tokens are compared by their SHA-256 digests, in constant time.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from perdure._store import sqlite_target

log = logging.getLogger("perdure.server")

# A token shorter than this is too easy to guess to guard a server that can terminate
# workflows; generated ones are 43 characters (32 random bytes, base64url).
MIN_TOKEN_LENGTH = 16

_HEADER = "# perdure server tokens: TOKEN ROLE (read or write; write if omitted)\n"


class Role(enum.Enum):
    """What a token may do: ``read`` sees everything and changes nothing (it may ask queries,
    which change nothing either); ``write`` may do everything."""

    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class Token:
    """A token as the server keeps it: its digest (never the text), and its role."""

    digest: bytes
    role: Role

    @property
    def fingerprint(self) -> str:
        """A short public name for the token (in session cookies): not enough to use it."""
        return self.digest[:12].hex()


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    """A fresh random token: 32 bytes, base64url."""
    return secrets.token_urlsafe(32)


def default_token_file(db_url: str) -> Path:
    """Where ``perdure server`` keeps its tokens: beside a SQLite file (``app.db.tokens``),
    else ``~/.perdure/tokens``."""
    if db_url.startswith("sqlite:"):
        path = sqlite_target(db_url).path
        if path != ":memory:":
            return Path(f"{path}.tokens")
    return Path.home() / ".perdure" / "tokens"


def parse_tokens(text: str, source: str) -> dict[bytes, Token]:
    """The tokens of a token file's text, by digest.

    Raises:
        ValueError: a line that is not ``TOKEN [ROLE]``, with its number.
    """
    tokens: dict[bytes, Token] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        where = f"{source}, line {number}"
        if len(fields) > 2:
            raise ValueError(f"{where}: expected TOKEN ROLE, found {len(fields)} fields")
        role_name = fields[1] if len(fields) == 2 else Role.WRITE.value
        try:
            role = Role(role_name)
        except ValueError:
            raise ValueError(f"{where}: the role is {role_name!r}; it is read or write") from None
        if len(fields[0]) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"{where}: a token of {len(fields[0])} characters is too easy to guess; use "
                f"at least {MIN_TOKEN_LENGTH} (perdure server token create makes one)"
            )
        token = Token(digest(fields[0]), role)
        tokens[token.digest] = token
    return tokens


def append_token(path: Path, role: Role) -> tuple[str, bool]:
    """Add a new random token with ``role`` to the file (created 0600 if missing).

    Returns:
        The token, and whether the file was created.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = new_token()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        created = True
    except FileExistsError:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        created = False
    with os.fdopen(fd, "a") as f:
        if created:
            f.write(_HEADER)
        f.write(f"{token} {role.value}\n")
    return token, created


class TokenFile:
    """The tokens of one file, read again when the file changes.

    Raises:
        FileNotFoundError: (at construction) the file does not exist.
        ValueError: (at construction) the file is malformed.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._tokens: dict[bytes, Token] = {}
        if not path.exists():
            raise FileNotFoundError(
                f"No token file at {path}: create one with "
                f"`perdure server token create --token-file {path}`"
            )
        self._reload(strict=True)
        mode = path.stat().st_mode & 0o777
        if os.name == "posix" and mode & 0o077:
            log.warning(
                "The token file %s can be read by other users (mode %o): chmod 600 %s",
                path,
                mode,
                path,
            )

    def _reload(self, *, strict: bool = False) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            if self._tokens:
                log.warning("The token file %s is gone: every request is refused", self.path)
            self._stamp, self._tokens = None, {}
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            tokens = parse_tokens(self.path.read_text(), str(self.path))
        except ValueError as exc:
            if strict:
                raise
            # A half-edited file: keep the tokens read before, and say so once per change.
            log.error("%s; keeping the tokens read before", exc)
            self._stamp = stamp
            return
        self._stamp, self._tokens = stamp, tokens

    def lookup(self, token: str) -> Token | None:
        """The token's entry, or None; every known digest is compared, in constant time."""
        self._reload()
        wanted = digest(token)
        found = None
        for known in self._tokens.values():
            if hmac.compare_digest(wanted, known.digest):
                found = known
        return found

    def by_fingerprint(self, fingerprint: str) -> Token | None:
        """The token a session cookie names, if it is still in the file."""
        self._reload()
        for known in self._tokens.values():
            if hmac.compare_digest(fingerprint, known.fingerprint):
                return known
        return None
