"""``perdure schedule create | list | describe | toggle | trigger | backfill | update |
delete``: Temporal CLI's schedule verbs and flags, on the schedules of a database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
import orjson

from perdure._common.schedule_cron import calendar_from_strings, parse_cron
from perdure._common.schedule_spec import ScheduleIntervalSpec, describe_calendar
from perdure._operate.shapes import schedule_json, schedule_list_json, spec_json
from perdure.cli._common import Cli, connected
from perdure.cli._params import DURATION, inputs, key_values, search_attributes
from perdure.cli._render import echo_json, fields, relative, table, timestamp
from perdure.cli._workflow_run import input_options
from perdure.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from perdure.common import TypedSearchAttributes

# Temporal CLI's spellings of the overlap policies.
OVERLAP = {
    "Skip": ScheduleOverlapPolicy.SKIP,
    "BufferOne": ScheduleOverlapPolicy.BUFFER_ONE,
    "BufferAll": ScheduleOverlapPolicy.BUFFER_ALL,
    "CancelOther": ScheduleOverlapPolicy.CANCEL_OTHER,
    "TerminateOther": ScheduleOverlapPolicy.TERMINATE_OTHER,
    "AllowAll": ScheduleOverlapPolicy.ALLOW_ALL,
}


class _Time(click.ParamType):  # type: ignore[type-arg]
    """An RFC 3339 time (``2026-03-07T02:30:00Z``; no zone: UTC)."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is not a time: write it as 2026-03-07T02:30:00Z", param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


TIME = _Time()

schedule_id_option = click.option("-s", "--schedule-id", required=True, help="The schedule id.")


def overlap_option(default: str | None) -> Callable[[Any], Any]:
    return click.option(
        "--overlap-policy",
        type=click.Choice(list(OVERLAP)),
        default=default,
        show_default=default is not None,
        help="What to do when an action is due while the last one still runs.",
    )


def spec_options(fn: Any) -> Any:
    for option in reversed(
        [
            schedule_id_option,
            click.option(
                "--cron",
                multiple=True,
                help="A cron expression (repeatable): '30 2 * * *', '@daily', "
                "'CRON_TZ=Europe/Paris 0 9 * * MON-FRI', '@every 90m'.",
            ),
            click.option(
                "--interval",
                multiple=True,
                help="Every so long since the epoch, optionally /offset (repeatable): 45m, 6h/5h.",
            ),
            click.option(
                "--calendar",
                multiple=True,
                metavar="JSON",
                help='A calendar (repeatable), e.g. \'{"dayOfWeek": "MON-FRI", "hour": "9"}\'.',
            ),
            click.option("--start-time", type=TIME, help="No action before this time."),
            click.option("--end-time", type=TIME, help="No action after this time."),
            click.option("--jitter", type=DURATION, help="Delay each action by up to this."),
            click.option("--time-zone", help="IANA time zone of calendars and crons."),
            click.option("--type", "workflow_type", required=True, help="The workflow type."),
            click.option("-t", "--task-queue", required=True, help="The task queue."),
            click.option(
                "-w",
                "--workflow-id",
                required=True,
                help="The workflow id; each run's is WORKFLOW_ID-<slot time>.",
            ),
            click.option("--execution-timeout", type=DURATION),
            click.option("--run-timeout", type=DURATION),
            click.option("--task-timeout", type=DURATION),
            click.option("--memo", multiple=True, metavar="KEY=JSON", help="Of each run."),
            click.option(
                "--search-attribute",
                multiple=True,
                metavar="KEY=JSON",
                help="Of each run (repeatable).",
            ),
            overlap_option("Skip"),
            click.option("--catchup-window", type=DURATION, help="Default 365d; at least 10s."),
            click.option("--pause-on-failure", is_flag=True, help="Pause when a run fails."),
            click.option("--paused", is_flag=True, help="Start paused."),
            click.option("--notes", help="A note on the schedule's state."),
            click.option(
                "--remaining-actions",
                type=click.IntRange(min=0),
                default=0,
                help="Take only this many scheduled actions (0: no limit).",
            ),
            input_options,
        ]
    ):
        fn = option(fn)
    return fn


def _spec(options: dict[str, Any]) -> ScheduleSpec:
    intervals = []
    for text in options["interval"]:
        intervals.extend(parse_cron(f"@every {text}").intervals)
    calendars = []
    for text in options["calendar"]:
        try:
            fields_ = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise click.BadParameter(f"--calendar is not JSON: {text!r}: {exc}") from None
        if not isinstance(fields_, dict):
            raise click.BadParameter(f"--calendar takes a JSON object, not {text!r}")
        calendars.append(calendar_from_strings(fields_))
    if not (options["cron"] or intervals or calendars):
        raise click.UsageError("Say when it acts: --cron, --interval or --calendar")
    return ScheduleSpec(
        calendars=calendars,
        intervals=[ScheduleIntervalSpec(every=i.every, offset=i.offset) for i in intervals],
        cron_expressions=list(options["cron"]),
        start_at=options["start_time"],
        end_at=options["end_time"],
        jitter=options["jitter"],
        time_zone_name=options["time_zone"],
    )


def _schedule(options: dict[str, Any]) -> Schedule:
    policy = SchedulePolicy(
        overlap=OVERLAP[options["overlap_policy"]],
        pause_on_failure=options["pause_on_failure"],
    )
    if options["catchup_window"] is not None:
        policy.catchup_window = options["catchup_window"]
    remaining = options["remaining_actions"]
    return Schedule(
        action=ScheduleActionStartWorkflow(
            options["workflow_type"],
            args=inputs(options["input_values"], options["input_file"]),
            id=options["workflow_id"],
            task_queue=options["task_queue"],
            execution_timeout=options["execution_timeout"],
            run_timeout=options["run_timeout"],
            task_timeout=options["task_timeout"],
            memo=key_values(options["memo"], "--memo") or None,
            typed_search_attributes=search_attributes(options["search_attribute"])
            or TypedSearchAttributes.empty,
        ),
        spec=_spec(options),
        policy=policy,
        state=ScheduleState(
            note=options["notes"],
            paused=options["paused"],
            limited_actions=remaining > 0,
            remaining_actions=remaining,
        ),
    )


async def _show(cli: Cli, desc: ScheduleDescription) -> None:
    if not cli.text:
        echo_json(await schedule_json(desc), indent=cli.output == "json")
        return
    schedule, info = desc.schedule, desc.info
    action = schedule.action
    spec = spec_json(schedule.spec)
    when = [describe_calendar(c) for c in schedule.spec.calendars]
    when += [
        f"every {i.every}" + (f" + {i.offset}" if i.offset else "") for i in schedule.spec.intervals
    ]
    pairs = [
        ("Schedule ID", desc.id),
        ("Workflow type", getattr(action, "workflow", "-")),
        ("Workflow ID", f"{getattr(action, 'id', '-')}-<slot time>"),
        ("Task queue", getattr(action, "task_queue", "-")),
        ("When", "\n".join(when) or "-"),
        ("Time zone", spec["time_zone_name"] or "UTC"),
        ("Overlap policy", schedule.policy.overlap.name),
        ("Paused", "yes" if schedule.state.paused else "no"),
        ("Notes", schedule.state.note or "-"),
        ("Actions", str(info.num_actions)),
        ("Missed (catch-up window)", str(info.num_actions_missed_catchup_window)),
        ("Skipped (overlap)", str(info.num_actions_skipped_overlap)),
        (
            "Running",
            "\n".join(getattr(r, "workflow_id", "") for r in info.running_actions) or "-",
        ),
        (
            "Next actions",
            "\n".join(f"{timestamp(t)} ({relative(t)})" for t in info.next_action_times[:5]) or "-",
        ),
        ("Created", timestamp(info.created_at)),
    ]
    if schedule.state.limited_actions:
        pairs.insert(10, ("Remaining actions", str(schedule.state.remaining_actions)))
    fields(pairs)


@click.group("schedule")
def schedule_group() -> None:
    """Create, inspect and act on schedules (on --db or $PERDURE_DB)."""


@schedule_group.command("create")
@spec_options
@connected(creates=True)
async def create_command(cli: Cli, client: Client, schedule_id: str, **options: Any) -> None:
    """Create a schedule; running workers take its actions."""
    handle = await client.create_schedule(schedule_id, _schedule(options))
    if cli.text:
        click.echo(f"Created schedule {schedule_id}")
    await _show(cli, await handle.describe())


@schedule_group.command("update")
@spec_options
@connected()
async def update_command(cli: Cli, client: Client, schedule_id: str, **options: Any) -> None:
    """Replace a schedule's action, spec, policy and state (as Temporal's CLI does)."""
    schedule = _schedule(options)

    def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=schedule)

    handle = client.get_schedule_handle(schedule_id)
    await handle.update(replace)
    if cli.text:
        click.echo(f"Updated schedule {schedule_id}")
    await _show(cli, await handle.describe())


@schedule_group.command("describe")
@schedule_id_option
@connected()
async def describe_command(cli: Cli, client: Client, schedule_id: str) -> None:
    """Show a schedule: when it acts, what it did, what it will do."""
    await _show(cli, await client.get_schedule_handle(schedule_id).describe())


@schedule_group.command("list")
@click.option("-q", "--query", default=None, help='e.g. "TemporalSchedulePaused = true".')
@connected()
async def list_command(cli: Cli, client: Client, query: str | None) -> None:
    """List the schedules, by id."""
    found = [s async for s in await client.list_schedules(query)]
    if cli.output == "jsonl":
        for s in found:
            echo_json(await schedule_list_json(s), indent=False)
        return
    if cli.output == "json":
        echo_json([await schedule_list_json(s) for s in found])
        return
    if not found:
        click.echo("No schedules" + (" match the query" if query else ""), err=True)
        return
    rows = []
    for s in found:
        sched, info = s.schedule, s.info
        nxt = info.next_action_times[0] if info and info.next_action_times else None
        rows.append(
            [
                s.id,
                getattr(sched.action, "workflow", "-") if sched else "-",
                "paused" if sched and sched.state.paused else "active",
                relative(nxt) if nxt else "-",
            ]
        )
    table(["SCHEDULE ID", "WORKFLOW TYPE", "STATE", "NEXT ACTION"], rows)


@schedule_group.command("toggle")
@schedule_id_option
@click.option("--pause", "action", flag_value="pause", help="Pause it.")
@click.option("--unpause", "action", flag_value="unpause", help="Unpause it.")
@click.option("--reason", default=None, help="Why (the schedule's note).")
@connected()
async def toggle_command(
    cli: Cli, client: Client, schedule_id: str, action: str | None, reason: str | None
) -> None:
    """Pause or unpause a schedule."""
    if action is None:
        raise click.UsageError("Give --pause or --unpause")
    handle = client.get_schedule_handle(schedule_id)
    note = reason or f"{action.capitalize()}d via perdure CLI"
    if action == "pause":
        await handle.pause(note=note)
    else:
        await handle.unpause(note=note)
    _done(cli, schedule_id, f"{action}d")


@schedule_group.command("trigger")
@schedule_id_option
@overlap_option(None)
@connected()
async def trigger_command(
    cli: Cli, client: Client, schedule_id: str, overlap_policy: str | None
) -> None:
    """Take one action now (even if paused)."""
    overlap = OVERLAP[overlap_policy] if overlap_policy else None
    await client.get_schedule_handle(schedule_id).trigger(overlap=overlap)
    _done(cli, schedule_id, "triggered")


@schedule_group.command("backfill")
@schedule_id_option
@click.option("--start-time", type=TIME, required=True, help="From this time (included).")
@click.option("--end-time", type=TIME, required=True, help="To this time (included).")
@overlap_option(None)
@connected()
async def backfill_command(
    cli: Cli,
    client: Client,
    schedule_id: str,
    start_time: datetime,
    end_time: datetime,
    overlap_policy: str | None,
) -> None:
    """Take now the actions of a past period, as if it were passing."""
    overlap = OVERLAP[overlap_policy] if overlap_policy else None
    await client.get_schedule_handle(schedule_id).backfill(
        ScheduleBackfill(start_at=start_time, end_at=end_time, overlap=overlap)
    )
    _done(cli, schedule_id, "backfilled")


@schedule_group.command("delete")
@schedule_id_option
@connected()
async def delete_command(cli: Cli, client: Client, schedule_id: str) -> None:
    """Delete a schedule (the workflows it started run on)."""
    await client.get_schedule_handle(schedule_id).delete()
    _done(cli, schedule_id, "deleted")


def _done(cli: Cli, schedule_id: str, what: str) -> None:
    if cli.text:
        click.echo(f"Schedule {schedule_id} {what}")
    else:
        echo_json({"schedule_id": schedule_id, "result": what}, indent=cli.output == "json")
