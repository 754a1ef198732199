"""What every ``perdure`` subcommand that reaches a database shares: ``--db`` (or
``$PERDURE_DB``), ``--namespace`` and ``-o/--output``, one connected client for the command,
and errors as exit codes: 1 when the operation failed (the message on stderr), 2 for a usage
error (click's)."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import click

from perdure._errors import PerdureError
from perdure._store import sqlite_target
from perdure.client import Client

OUTPUTS = ("text", "json", "jsonl")


@dataclass(frozen=True)
class Cli:
    """The options every subcommand takes."""

    db: str
    namespace: str
    output: str

    @property
    def text(self) -> bool:
        """Whether to print for people (tables) rather than for scripts (JSON)."""
        return self.output == "text"


def db_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--db``, ``--namespace`` and ``-o`` (accepted on every subcommand, as Temporal's CLI
    takes ``--address`` and ``--output``)."""
    fn = click.option(
        "-o",
        "--output",
        type=click.Choice(OUTPUTS),
        default="text",
        show_default=True,
        help="text: tables for people; json / jsonl: for scripts.",
    )(fn)
    fn = click.option(
        "--namespace", "-n", default="default", show_default=True, help="The namespace."
    )(fn)
    return click.option(
        "--db",
        required=True,
        envvar="PERDURE_DB",
        help="Database URL: sqlite:///app.db or postgresql://... (env PERDURE_DB).",
    )(fn)


def connected(
    *, creates: bool = False
) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., None]]:
    """Run an async command body with a client on ``--db``.

    A SQLite file that does not exist is an error (a typo would otherwise create an empty
    database and find nothing in it), unless the command ``creates`` work: ``start``.
    """

    def decorate(body: Callable[..., Awaitable[None]]) -> Callable[..., None]:
        @db_options
        @functools.wraps(body)
        def command(db: str, namespace: str, output: str, **kwargs: Any) -> None:
            cli = Cli(db=db, namespace=namespace, output=output)
            if not creates:
                check_exists(cli.db)
            asyncio.run(_run(cli, body, kwargs))

        return command

    return decorate


def check_exists(db: str) -> None:
    """Refuse a SQLite URL naming no file (see :func:`connected`)."""
    try:
        path = sqlite_target(db).path if db.startswith("sqlite:") else ":memory:"
    except (PerdureError, ValueError) as exc:
        raise click.ClickException(message(exc)) from None
    if path != ":memory:" and not os.path.exists(path):
        raise click.ClickException(
            f"No database at {path}: check --db (or $PERDURE_DB). perdure creates the file "
            "when a worker or your application first opens it."
        )


async def _run(cli: Cli, body: Callable[..., Awaitable[None]], kwargs: dict[str, Any]) -> None:
    client = await connect(cli)
    try:
        await body(cli, client, **kwargs)
    except (PerdureError, ValueError, TypeError) as exc:
        raise click.ClickException(message(exc)) from None
    finally:
        await client.close()


async def connect(cli: Cli) -> Client:
    """A client on the command's database."""
    try:
        client = await Client.connect(cli.db, namespace=cli.namespace)
    except (PerdureError, ValueError) as exc:
        raise click.ClickException(message(exc)) from None
    return client


def message(exc: BaseException) -> str:
    """An error for the terminal: its message, then its causes."""
    parts = [str(exc) or type(exc).__name__]
    cause = getattr(exc, "cause", None) or exc.__cause__
    while cause is not None and len(parts) < 5:
        parts.append(f"caused by {type(cause).__name__}: {cause}")
        cause = getattr(cause, "cause", None) or cause.__cause__
    return "\n  ".join(parts)
