"""``perdure namespace describe | update``: a namespace's retention period and archive
(Temporal CLI's ``operator namespace``, with its ``--retention`` flag)."""

from __future__ import annotations

import re
from datetime import timedelta

import click

from perdure.cli._common import Cli, connected
from perdure.cli._render import echo_json
from perdure.client import Client, NamespaceDescription

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_retention(text: str) -> timedelta | None:
    """``30d``, ``12h``, ``90m``, ``1w2d`` (or ``forever`` / ``0``: keep forever).

    Raises:
        click.BadParameter: not such a duration.
    """
    text = text.strip().lower()
    if text in ("forever", "none", "0"):
        return None
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhdw])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise click.BadParameter(
            f"{text!r} is not a duration: use a number and a unit (s, m, h, d, w), e.g. 30d, "
            "or 'forever'"
        )
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


def _show(cli: Cli, ns: NamespaceDescription) -> None:
    retention = None if ns.retention is None else ns.retention.total_seconds()
    if cli.text:
        kept = "forever" if ns.retention is None else str(ns.retention)
        click.echo(f"Namespace       {ns.name}")
        click.echo(f"Retention       {kept}")
        click.echo(f"Archive         {ns.archive_uri or '-'}")
    else:
        echo_json(
            {"name": ns.name, "retention_seconds": retention, "archive_uri": ns.archive_uri},
            indent=cli.output == "json",
        )


@click.group("namespace")
def namespace_group() -> None:
    """A namespace's data lifecycle: how long closed workflows are kept, where they are
    archived first."""


@namespace_group.command("describe")
@connected()
async def describe_command(cli: Cli, client: Client) -> None:
    """Show the namespace's retention period and archive."""
    _show(cli, await client.describe_namespace())


@namespace_group.command("update")
@click.option(
    "--retention",
    default=None,
    help="Keep closed workflows this long after they close (30d, 12h, 1w; 'forever').",
)
@click.option(
    "--archive-uri",
    default=None,
    help="Archive each history here before deleting it (file:///var/archive); '' for none.",
)
@connected()
async def update_command(
    cli: Cli, client: Client, retention: str | None, archive_uri: str | None
) -> None:
    """Change the namespace's retention period or archive (what is not given stays)."""
    changes: dict[str, object] = {}
    if retention is not None:
        changes["retention"] = parse_retention(retention)
    if archive_uri is not None:
        changes["archive_uri"] = archive_uri or None
    if not changes:
        raise click.UsageError("Give --retention or --archive-uri")
    _show(cli, await client.update_namespace(**changes))  # type: ignore[arg-type]
