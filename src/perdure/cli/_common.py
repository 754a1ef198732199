"""What every ``perdure`` subcommand that reaches a database shares: ``--db`` (or
``$PERDURE_DB``), ``--namespace``, ``--data-converter`` and ``-o/--output``, one connected
client for the command, and errors as exit codes: 1 when the operation failed (the message on
stderr), 2 for a usage error (click's)."""

from __future__ import annotations

import asyncio
import functools
import importlib
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import click

from perdure._errors import PerdureError
from perdure._store import sqlite_target
from perdure.client import Client
from perdure.converter import DataConverter

OUTPUTS = ("text", "json", "jsonl")


@dataclass(frozen=True)
class Cli:
    """The options every subcommand takes."""

    db: str
    namespace: str
    output: str
    data_converter: str | None = None

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
    fn = data_converter_option(fn)
    fn = click.option(
        "--namespace", "-n", default="default", show_default=True, help="The namespace."
    )(fn)
    return click.option(
        "--db",
        required=True,
        envvar="PERDURE_DB",
        help="Database URL: sqlite:///app.db or postgresql://... (env PERDURE_DB).",
    )(fn)


def data_converter_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--data-converter MODULE:NAME``: the application's DataConverter (its codec, its
    converter), to read and write payloads as the application does."""
    return click.option(
        "--data-converter",
        default=None,
        envvar="PERDURE_DATA_CONVERTER",
        metavar="MODULE:NAME",
        help="Your application's DataConverter (or a function returning one), e.g. "
        "myapp.converters:data_converter, for payloads written through a codec "
        "(env PERDURE_DATA_CONVERTER).",
    )(fn)


def load_named(path: str, option: str, example: str, expected: tuple[type, ...], what: str) -> Any:
    """The instance of ``expected`` that ``MODULE:NAME`` names: the object itself, or what
    calling it (a class, a factory function) returns. Mistakes are ``BadParameter`` errors of
    ``option`` that say what to give."""
    module_name, sep, name = path.partition(":")
    if not sep or not module_name or not name:
        raise click.BadParameter(f"{path!r}: give MODULE:NAME, e.g. {example}", param_hint=option)
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise click.BadParameter(f"cannot load {path}: {exc}", param_hint=option) from None
    if callable(found) and not isinstance(found, expected):
        try:
            found = found()
        except Exception as exc:  # the application's own code: say what, not our frames
            raise click.BadParameter(
                f"calling {path}() failed: {type(exc).__name__}: {exc}", param_hint=option
            ) from None
    if not isinstance(found, expected):
        raise click.BadParameter(
            f"{path} is a {type(found).__name__}, not {what}", param_hint=option
        )
    return found


def load_data_converter(path: str | None) -> DataConverter | None:
    """The DataConverter ``MODULE:NAME`` names (an instance, or a function returning one)."""
    if path is None:
        return None
    converter: DataConverter = load_named(
        path,
        "--data-converter",
        "myapp.converters:data_converter",
        (DataConverter,),
        "a DataConverter",
    )
    return converter


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
        def command(
            db: str, namespace: str, output: str, data_converter: str | None, **kwargs: Any
        ) -> None:
            cli = Cli(db=db, namespace=namespace, output=output, data_converter=data_converter)
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
    converter = load_data_converter(cli.data_converter)
    try:
        client = await Client.connect(cli.db, namespace=cli.namespace, data_converter=converter)
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
    if any("No payload converter for encoding" in part for part in parts):
        parts.append(
            "the payloads were written through a codec (or converter) this command does not "
            "have: give your application's with --data-converter MODULE:NAME"
        )
    return "\n  ".join(parts)
