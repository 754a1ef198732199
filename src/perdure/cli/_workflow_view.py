"""``perdure workflow describe | show | list | count``: looking at workflows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from perdure._common.events import EventType, HistoryEvent
from perdure._operate.shapes import (
    count_json,
    decoded_attributes,
    description_json,
    search_attributes_json,
    workflow_json,
)
from perdure.cli._common import Cli, connected
from perdure.cli._render import (
    clip,
    dump_json,
    duration,
    echo_json,
    fields,
    relative,
    status,
    table,
    timestamp,
)
from perdure.cli._workflow_run import run_id_option, workflow_id_option
from perdure.client import Client, PendingActivityInfo, WorkflowExecution
from perdure.converter import DataConverter

query_option = click.option(
    "-q",
    "--query",
    default=None,
    help="A visibility query, e.g. \"WorkflowType = 'Order' AND ExecutionStatus = 'Running'\".",
)


@click.command("list")
@query_option
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many.")
@connected()
async def list_command(cli: Cli, client: Client, query: str | None, limit: int | None) -> None:
    """List workflows (newest first), optionally those a visibility query matches."""
    executions = client.list_workflows(query, limit=limit)
    if cli.output == "jsonl":
        async for wf in executions:
            echo_json(workflow_json(wf), indent=False)
        return
    found = [wf async for wf in executions]
    if cli.output == "json":
        echo_json([workflow_json(wf) for wf in found])
        return
    if not found:
        click.echo("No workflows" + (" match the query" if query else ""), err=True)
        return
    now = datetime.now(UTC)
    table(
        ["STATUS", "WORKFLOW ID", "TYPE", "STARTED", "DURATION"],
        [_row(wf, now) for wf in found],
    )


def _row(wf: WorkflowExecution, now: datetime) -> list[str]:
    end = wf.close_time or now
    return [
        status(wf.status.name),
        wf.id,
        wf.workflow_type,
        relative(wf.start_time, now),
        duration((end - wf.start_time).total_seconds()) + ("" if wf.close_time else "…"),
    ]


@click.command("count")
@query_option
@click.option(
    "--max-count",
    type=click.IntRange(min=1),
    help="Stop counting at N (each status's count, with GROUP BY ExecutionStatus): quick on "
    "a big database; a count that stopped shows as N+.",
)
@connected()
async def count_command(cli: Cli, client: Client, query: str | None, max_count: int | None) -> None:
    """Count the workflows a visibility query matches (all of them without one); end the
    query with GROUP BY ExecutionStatus for the count of each status."""
    body = count_json(await client.count_workflows(query, max_count=max_count), query, max_count)
    if not cli.text:
        echo_json(body, indent=cli.output == "json")
        return

    def shown(n: int) -> str:
        return f"{n}+" if max_count is not None and n >= max_count else str(n)

    click.echo(f"Total: {body['count']}{'+' if body.get('capped') else ''}")
    for group in body.get("groups", ()):
        click.echo(f"  {group['status']}: {shown(group['count'])}")


@click.command("describe")
@workflow_id_option
@run_id_option
@connected()
async def describe_command(cli: Cli, client: Client, workflow_id: str, run_id: str | None) -> None:
    """Show a workflow's status, times, history length, and the failure of a stuck workflow
    task."""
    desc = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    if not cli.text:
        echo_json(description_json(desc), indent=cli.output == "json")
        return
    failure = desc.last_workflow_task_failure
    now = datetime.now(UTC)
    end = desc.close_time or now
    rows = [
        ("Workflow ID", desc.id),
        ("Run ID", desc.run_id),
        ("Type", desc.workflow_type),
        ("Status", status(desc.status.name)),
        ("Task queue", desc.task_queue),
        ("Started", f"{timestamp(desc.start_time)} ({relative(desc.start_time, now)})"),
        (
            "Closed",
            f"{timestamp(desc.close_time)} ({relative(desc.close_time, now)})"
            if desc.close_time
            else "-",
        ),
        ("Duration", duration((end - desc.start_time).total_seconds())),
        ("History", f"{desc.history_length} events, {desc.history_size:,} bytes"),
    ]
    if desc.parent_id:
        rows.append(("Parent", f"{desc.parent_id} (run {desc.parent_run_id})"))
    if desc.reset_from:
        r = desc.reset_from
        rows.append(("Reset from", f"run {r.base_run_id} at event {r.event_id}: {r.reason}"))
    if desc.reset_to:
        r = desc.reset_to
        rows.append(("Reset to", f"run {r.new_run_id} from event {r.event_id}: {r.reason}"))
    if desc.memo:
        rows.append(("Memo", dump_json(desc.memo)))
    attributes = search_attributes_json(desc.typed_search_attributes)
    if attributes:
        rows.append(("Search attributes", dump_json(attributes)))
    fields(rows)
    if desc.pending_activities:
        click.echo()
        click.secho(f"Pending activities ({len(desc.pending_activities)})", bold=True)
        table(
            ["ID", "TYPE", "STATE", "ATTEMPT", "LAST HEARTBEAT", "NEXT RETRY", "LAST FAILURE"],
            [_activity_row(a, now) for a in desc.pending_activities],
        )
    if desc.pending_children:
        click.echo()
        click.secho(f"Pending children ({len(desc.pending_children)})", bold=True)
        table(
            ["WORKFLOW ID", "TYPE", "RUN ID"],
            [[c.workflow_id, c.workflow_type_name, c.run_id] for c in desc.pending_children],
        )
    if failure is not None:
        click.echo()
        click.secho(
            f"Workflow task failing (attempt {failure.attempt}, last "
            f"{relative(failure.time, now)}): {failure.type}: {failure.message}",
            fg="red",
        )
        if failure.stack_trace:
            click.echo(failure.stack_trace.rstrip())


def _activity_row(activity: PendingActivityInfo, now: datetime) -> list[str]:
    attempts = str(activity.attempt)
    if activity.maximum_attempts:
        attempts += f"/{activity.maximum_attempts}"
    failure = activity.last_failure
    return [
        activity.activity_id,
        activity.activity_type.name,
        activity.state.name,
        attempts,
        relative(activity.last_heartbeat_time, now),
        relative(activity.next_attempt_schedule_time, now),
        f"{type(failure).__name__}: {failure}" if failure else "-",
    ]


@click.command("show")
@workflow_id_option
@run_id_option
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing new events until the workflow closes."
)
@connected()
async def show_command(
    cli: Cli, client: Client, workflow_id: str, run_id: str | None, follow: bool
) -> None:
    """Print a workflow's event history: a table of events with their decoded inputs and
    results, or (``-o json``) the ``WorkflowHistory.to_json()`` document."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    if cli.output == "json" and not follow:
        click.echo((await handle.fetch_history()).to_json())
        return
    events = handle.fetch_history_events(wait_new_event=follow)
    if cli.output != "text":
        async for event in events:  # one event per line, in the history document's form
            click.echo(dump_json(event.to_json_dict()))
        return
    heading = f"{'ID':>4}  {'TIME':<24}  {'TYPE':<{_TYPE_WIDTH}}  DETAILS"
    click.echo(click.style(heading, bold=True))
    async for event in events:
        details = await event_summary(client.data_converter, event)
        click.echo(
            f"{event.event_id:>4}  {timestamp(_time(event)):<24}  "
            f"{_type_style(event)}  {clip(details, 200)}".rstrip()
        )


def _time(event: HistoryEvent) -> datetime:
    return datetime.fromtimestamp(event.event_time, UTC)


_FAILED = {
    EventType.WORKFLOW_TASK_FAILED,
    EventType.ACTIVITY_TASK_FAILED,
    EventType.ACTIVITY_TASK_TIMED_OUT,
    EventType.WORKFLOW_EXECUTION_FAILED,
    EventType.WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.CHILD_WORKFLOW_EXECUTION_FAILED,
    EventType.WORKFLOW_EXECUTION_TERMINATED,
}


_TYPE_WIDTH = 34


def _type_style(event: HistoryEvent) -> str:
    name = event.event_type.value.ljust(_TYPE_WIDTH)
    if event.event_type in _FAILED:
        return click.style(name, fg="red")
    if event.event_type is EventType.WORKFLOW_EXECUTION_COMPLETED:
        return click.style(name, fg="green")
    return name


# What the DETAILS column shows of an event, in this order; the rest is in -o json.
_SHOWN = (
    "workflow_type",
    "activity_type",
    "signal_name",
    "name",
    "update_id",
    "workflow_id",
    "seq",
    "attempt",
    "duration",
    "patch_id",
    "reason",
    "input",
    "result",
    "details",
    "memo",
    "search_attributes",
    "failure",
    "cause",
)


# Attributes that are names: shown bare, not as JSON strings.
_NAMES = {
    "workflow_type",
    "activity_type",
    "signal_name",
    "name",
    "update_id",
    "workflow_id",
    "patch_id",
    "reason",
    "cause",
}


async def event_summary(converter: DataConverter, event: HistoryEvent) -> str:
    """One line of an event's attributes that matter to a reader, payloads decoded."""
    attrs = await decoded_attributes(converter, event.attributes)
    parts = []
    for key in _SHOWN:
        if key not in attrs or attrs[key] in (None, [], {}):
            continue
        value = attrs[key]
        if key == "failure" and isinstance(value, dict):
            parts.append(f"failure={failure_line(value)}")
        elif key == "duration" and isinstance(value, int | float):
            parts.append(f"duration={duration(value)}")
        elif key in _NAMES and isinstance(value, str):
            parts.append(f"{key}={value}")
        else:  # values as JSON, so that "42" and 42 differ
            parts.append(f"{key}={dump_json(value)}")
    return "  ".join(parts)


def failure_line(failure: dict[str, Any]) -> str:
    """A stored failure's message (decoded if its common attributes were encoded), with its
    causes."""
    parts = []
    current: dict[str, Any] | None = failure
    while current:
        encoded = current.get("encoded_attributes")
        message = current.get("message", "")
        if isinstance(encoded, dict) and "message" in encoded:
            message = encoded["message"]
        kind = current.get("type") or current.get("failure_type") or ""
        parts.append(f"{kind}: {message}" if kind else str(message))
        cause = current.get("cause")
        current = cause if isinstance(cause, dict) else None
    return " <- ".join(parts)
