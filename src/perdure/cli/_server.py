"""``perdure server``: the HTTP API and web UI of a database; ``perdure server token create``
adds a token to its token file.

The server's packages (the ``server`` extra) are imported only when the command runs, so the
rest of the CLI, and ``import perdure``, do without them.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

from perdure.cli._common import check_exists
from perdure.cli._worker import _load, discover

_TOKEN_FILE_HELP = (
    "The token file (TOKEN ROLE per line). Default: beside the SQLite file (app.db.tokens), "
    "else ~/.perdure/tokens."
)


def _server_modules() -> Any:
    try:
        from perdure.server import _run, _tokens
    except ImportError as exc:
        raise click.ClickException(
            f"perdure server needs the server extra ({exc.name} is missing): "
            "pip install 'perdure[server]'"
        ) from None
    return _run, _tokens


def _shown(db: str) -> str:
    """The database URL without its password."""
    parts = urlsplit(db)
    if parts.password is None:
        return db
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class _ServerCommand(click.Command):
    """``perdure server [OPTIONS] [MODULE]``, and ``perdure server token ...``: a first
    argument ``token`` is the token group's, not a module."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args[:1] == ["token"]:
            ctx.meta["perdure.server.token_args"] = args[1:]
            return []
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        token_args = ctx.meta.get("perdure.server.token_args")
        if token_args is not None:
            # Named "server token" under the top group, so its usage reads as typed.
            with token_group.make_context(
                "server token", list(token_args), parent=ctx.parent
            ) as sub:
                return token_group.invoke(sub)
        return super().invoke(ctx)


@click.group("token")
def token_group() -> None:
    """Manage the server's tokens."""


@token_group.command("create")
@click.option(
    "--role",
    type=click.Choice(["read", "write"]),
    default="write",
    show_default=True,
    help="read: sees everything, changes nothing (may ask queries); write: everything.",
)
@click.option(
    "--token-file", type=click.Path(dir_okay=False, path_type=Path), help=_TOKEN_FILE_HELP
)
@click.option("--db", envvar="PERDURE_DB", help="The database (to find the default token file).")
def token_create_command(role: str, token_file: Path | None, db: str | None) -> None:
    """Add a new random token with ROLE to the token file (created, mode 0600, if missing)
    and print it. A running server accepts it at once."""
    _, tokens = _server_modules()
    if token_file is None:
        if db is None:
            raise click.UsageError("Give --token-file, or --db to use its default token file")
        token_file = tokens.default_token_file(db)
    token, created = tokens.append_token(token_file, tokens.Role(role))
    click.echo(token)
    click.echo(f"{'Created' if created else 'Added to'} {token_file}: a {role} token", err=True)


@click.command("server", cls=_ServerCommand)
@click.option(
    "--db",
    required=True,
    envvar="PERDURE_DB",
    help="Database URL: sqlite:///app.db or postgresql://... (env PERDURE_DB).",
)
@click.option("--namespace", "-n", default="default", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8233, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token-file", type=click.Path(dir_okay=False, path_type=Path), help=_TOKEN_FILE_HELP
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Serve everyone with every right, without tokens: only on a loopback --host.",
)
@click.option(
    "--public-metrics",
    is_flag=True,
    help="Serve /metrics without a token (it shows queue and type names and counts).",
)
@click.option("--log-level", default="INFO", show_default=True)
@click.argument("module", required=False)
def server_command(
    db: str,
    namespace: str,
    host: str,
    port: int,
    token_file: Path | None,
    insecure_no_auth: bool,
    public_metrics: bool,
    log_level: str,
    module: str | None,
) -> None:
    """Serve the HTTP API (JSON under /api/v1/, docs at /api/v1/docs) and the web UI of a
    database until SIGTERM or Ctrl-C.

    Every route but /healthz and /readyz needs a token of the token file (/metrics too,
    a read token is enough, unless --public-metrics). At the first start
    the file is created with a write token, and a login URL is printed. `perdure server token
    create [--role read]` adds a token. MODULE (e.g. myapp.workflows), if given, is the
    application's workflow code.
    """
    run, tokens = _server_modules()
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if insecure_no_auth:
        if token_file is not None:
            raise click.UsageError("--insecure-no-auth takes no --token-file")
        if not run.is_loopback(host):
            raise click.UsageError(
                f"--insecure-no-auth lets anyone who reaches the server do anything: it is "
                f"refused on --host {host}. Listen on 127.0.0.1 (the default), or use tokens."
            )
    check_exists(db)
    workflows: list[type] = []
    if module is not None:
        if "" not in sys.path:
            sys.path.insert(0, "")
        workflows = discover(_load(module), (), ())[0]
    new_token = None
    if not insecure_no_auth:
        token_file = token_file or tokens.default_token_file(db)
        if not token_file.exists():
            new_token, _ = tokens.append_token(token_file, tokens.Role.WRITE)
    options = run.ServeOptions(
        db=db,
        namespace=namespace,
        host=host,
        port=port,
        token_file=token_file,
        workflows=workflows,
        log_level=log_level,
        public_metrics=public_metrics,
    )

    def ready(url: str) -> None:
        where = "without authentication" if token_file is None else f"tokens in {token_file}"
        click.echo(f"perdure server: listening on {url} for {_shown(db)} ({where})")
        if new_token is not None:
            click.echo(f"perdure server: created {token_file} with a write token; log in at:")
            click.echo(f"    {url}/?token={new_token}")
        click.echo(f"perdure server: API docs at {url}/api/v1/docs")
        sys.stdout.flush()

    try:
        asyncio.run(run.serve(options, ready))
    except (ValueError, FileNotFoundError) as exc:  # the token file
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"Cannot listen on {host}:{port}: {exc.strerror}") from None
    click.echo("perdure server: stopped")
