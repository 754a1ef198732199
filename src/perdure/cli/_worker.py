"""``perdure worker``: run a worker process from a module of workflows and activities."""

from __future__ import annotations

import asyncio
import gc
import importlib
import inspect
import logging
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import click

from perdure._common.backoff import Retry
from perdure._errors import DatabaseUnavailableError, PerdureError
from perdure.activity._definition import _DEFN_ATTR as _ACTIVITY_ATTR
from perdure.cli._common import data_converter_option, load_data_converter, load_named
from perdure.cli._logs import configure as configure_logging
from perdure.cli._metrics import metrics_server, prometheus_metrics
from perdure.client import Client
from perdure.client import Interceptor as ClientInterceptor
from perdure.converter import DataConverter

if TYPE_CHECKING:
    from perdure.contrib.prometheus import PrometheusMetrics
from perdure.lint import DeterminismLintError
from perdure.worker import Interceptor as WorkerInterceptor
from perdure.worker import Worker
from perdure.worker._lint import DeterminismLint
from perdure.workflow._definition import _DEFN_ATTR as _WORKFLOW_ATTR

log = logging.getLogger("perdure.cli")


def _load(module_path: str) -> ModuleType:
    try:
        return importlib.import_module(module_path)
    except ImportError as exc:
        raise click.ClickException(
            f"Cannot import {module_path!r}: {exc}. Give a module path importable from the "
            "current directory (run from your project root, or set PYTHONPATH)."
        ) from exc
    except Exception as exc:  # the module itself is broken: say where, without our frames
        where = "".join(traceback.format_exception_only(exc)).strip()
        raise click.ClickException(f"Importing {module_path!r} failed: {where}") from exc


def redacted(url: str) -> str:
    """A database URL fit to print: its password, if any, as ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def discover(
    module: ModuleType, workflow_names: Sequence[str], activity_names: Sequence[str]
) -> tuple[list[type], list[Callable[..., Any]]]:
    """The module's workflow classes and activity functions (or only the named ones)."""
    workflows = [
        v
        for v in vars(module).values()
        if inspect.isclass(v) and _WORKFLOW_ATTR in vars(v) and v.__module__ == module.__name__
    ]
    activities = [
        v
        for v in vars(module).values()
        if callable(v)
        and hasattr(v, _ACTIVITY_ATTR)
        and getattr(v, "__module__", None) == module.__name__
    ]
    if workflow_names:
        by_name = {getattr(w, _WORKFLOW_ATTR).name: w for w in workflows}
        missing = [n for n in workflow_names if n not in by_name]
        if missing:
            raise click.ClickException(
                f"No workflow named {', '.join(missing)} in {module.__name__} "
                f"(found: {', '.join(sorted(by_name)) or 'none'})"
            )
        workflows = [by_name[n] for n in workflow_names]
    if activity_names:
        by_name_a = {getattr(a, _ACTIVITY_ATTR).name: a for a in activities}
        missing = [n for n in activity_names if n not in by_name_a]
        if missing:
            raise click.ClickException(
                f"No activity named {', '.join(missing)} in {module.__name__} "
                f"(found: {', '.join(sorted(by_name_a)) or 'none'})"
            )
        activities = [by_name_a[n] for n in activity_names]
    if not workflows and not activities:
        raise click.ClickException(
            f"{module.__name__} defines no @workflow.defn class and no @activity.defn function"
        )
    return workflows, activities


async def run_worker(
    db: str,
    task_queue: str,
    workflows: list[type],
    activities: list[Callable[..., Any]],
    *,
    namespace: str,
    max_concurrent_activities: int,
    max_concurrent_workflow_tasks: int,
    graceful_shutdown: float,
    determinism_lint: DeterminismLint = "warn",
    data_converter: DataConverter | None = None,
    flow: dict[str, Any] | None = None,
    metrics: PrometheusMetrics | None = None,
    interceptors: Sequence[ClientInterceptor | WorkerInterceptor] = (),
) -> None:
    # A client interceptor that is a worker interceptor too serves both (as in Temporal).
    client = await Client.connect(
        db,
        namespace=namespace,
        data_converter=data_converter,
        metrics=metrics,
        interceptors=[i for i in interceptors if isinstance(i, ClientInterceptor)],
    )
    try:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=workflows,
            activities=activities,
            max_concurrent_activities=max_concurrent_activities,
            max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
            graceful_shutdown_timeout=timedelta(seconds=graceful_shutdown),
            determinism_lint=determinism_lint,
            interceptors=[i for i in interceptors if not isinstance(i, ClientInterceptor)],
            **(flow or {}),
        )
    except (DeterminismLintError, ValueError) as exc:
        await client.close()
        raise click.ClickException(str(exc)) from exc
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stopped = asyncio.ensure_future(stop.wait())
    names = [w.__name__ for w in workflows] + [getattr(a, "__name__", "?") for a in activities]
    click.echo(
        f"perdure worker: task queue {task_queue!r} on {redacted(db)} running {', '.join(names)}"
    )
    sys.stdout.flush()
    opening = asyncio.ensure_future(_open_database(client))
    await asyncio.wait({opening, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if not opening.done():  # stopped while waiting for the database
        opening.cancel()
        await asyncio.gather(opening, return_exceptions=True)
        await client.close()
        click.echo("perdure worker: stopped")
        return
    try:
        opening.result()
    except PerdureError as exc:  # refused for good: bad credentials, no such database ...
        await client.close()
        raise click.ClickException(f"Cannot open the database: {exc}") from exc
    _tune_gc()
    runner = asyncio.ensure_future(worker.run())
    await asyncio.wait({runner, stopped}, return_when=asyncio.FIRST_COMPLETED)
    click.echo("perdure worker: stopping (letting running work finish)")
    sys.stdout.flush()
    await worker.shutdown()
    await runner
    await client.close()
    click.echo("perdure worker: stopped")


def _tune_gc() -> None:
    """This process only runs the worker: what is loaded by now (perdure, the application's
    modules) lives as long as the process, so the collector stops walking it (``freeze``),
    and it runs less often. Every in-flight workflow holds about a hundred objects, and
    the default thresholds made full collections of them about 9% of a one-activity
    workflow's CPU (docs/performance.md); a library leaves this to the application, a
    dedicated worker process is the application."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def _open_database(client: Client) -> None:
    """Return once the database answers, waiting (with backoff) while it cannot be reached,
    as a worker does for a database that goes away later. Any other error is final."""
    retry = Retry(log, "Opening the database")
    while True:
        try:
            await client.store.ready()
        except DatabaseUnavailableError as exc:
            await retry.pause(exc)
            continue
        retry.recovered()
        return


@click.command("worker")
@click.option(
    "--db",
    required=True,
    envvar="PERDURE_DB",
    help="Database URL: sqlite:///app.db or postgresql://... (env PERDURE_DB).",
)
@click.option("--task-queue", "-q", required=True, help="The task queue to take tasks from.")
@click.option(
    "--workflow",
    "workflow_names",
    multiple=True,
    help="Run only this workflow type (repeatable); default: all in the module.",
)
@click.option(
    "--activity",
    "activity_names",
    multiple=True,
    help="Run only this activity (repeatable); default: all in the module.",
)
@click.option("--namespace", default="default", show_default=True)
@click.option("--max-concurrent-activities", default=100, show_default=True, type=int)
@click.option("--max-concurrent-workflow-tasks", default=100, show_default=True, type=int)
@click.option(
    "--max-task-queue-activities-per-second",
    type=float,
    help="Activity starts per second across every worker of the queue (default: no limit).",
)
@click.option(
    "--max-activities-per-second",
    type=float,
    help="Activity starts per second of this worker (default: no limit).",
)
@click.option(
    "--max-concurrent-activities-per-key",
    type=int,
    help="Activities of one concurrency_key running at once across the queue's workers.",
)
@click.option(
    "--graceful-shutdown",
    default=10.0,
    show_default=True,
    type=float,
    help="Seconds running activities get to finish on SIGTERM/SIGINT.",
)
@click.option(
    "--determinism-lint",
    type=click.Choice(["warn", "error", "off"]),
    default="warn",
    show_default=True,
    help="Check the workflows' source for code that is not replay-safe at start: log it, "
    "refuse to start, or skip the check.",
)
@click.option("--log-level", default="INFO", show_default=True)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON object per log record, with the workflow's and activity's ids as fields.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus metrics at http://HOST:PORT/metrics (needs perdure[prometheus]).",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="The address --metrics-port listens on (0.0.0.0: every interface).",
)
@click.option(
    "--interceptor",
    "interceptor_paths",
    multiple=True,
    metavar="MODULE:NAME",
    help="An interceptor for this worker (repeatable): a perdure.worker.Interceptor or "
    "perdure.client.Interceptor, its class or a function returning one, e.g. "
    "perdure.contrib.opentelemetry:TracingInterceptor.",
)
@data_converter_option
@click.argument("module")
def worker_command(
    db: str,
    task_queue: str,
    workflow_names: tuple[str, ...],
    activity_names: tuple[str, ...],
    namespace: str,
    max_concurrent_activities: int,
    max_concurrent_workflow_tasks: int,
    max_task_queue_activities_per_second: float | None,
    max_activities_per_second: float | None,
    max_concurrent_activities_per_key: int | None,
    graceful_shutdown: float,
    determinism_lint: DeterminismLint,
    log_level: str,
    log_format: str,
    metrics_port: int | None,
    metrics_host: str,
    data_converter: str | None,
    interceptor_paths: tuple[str, ...],
    module: str,
) -> None:
    """Run a worker for the workflows and activities defined in MODULE (e.g. myapp.workflows)
    until SIGTERM or Ctrl-C, then shut down gracefully."""
    configure_logging(log_level, log_format)
    if "" not in sys.path:
        sys.path.insert(0, "")
    workflows, activities = discover(_load(module), workflow_names, activity_names)
    converter = load_data_converter(data_converter)
    interceptors = [
        load_named(
            path,
            "--interceptor",
            "perdure.contrib.opentelemetry:TracingInterceptor",
            (ClientInterceptor, WorkerInterceptor),
            "a perdure.worker.Interceptor or perdure.client.Interceptor",
        )
        for path in interceptor_paths
    ]
    metrics = prometheus_metrics() if metrics_port is not None else None
    with metrics_server(metrics, metrics_host, metrics_port):
        asyncio.run(
            run_worker(
                db,
                task_queue,
                workflows,
                activities,
                namespace=namespace,
                max_concurrent_activities=max_concurrent_activities,
                max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
                graceful_shutdown=graceful_shutdown,
                determinism_lint=determinism_lint,
                data_converter=converter,
                flow={
                    "max_task_queue_activities_per_second": max_task_queue_activities_per_second,
                    "max_activities_per_second": max_activities_per_second,
                    "max_concurrent_activities_per_key": max_concurrent_activities_per_key,
                },
                metrics=metrics,
                interceptors=interceptors,
            )
        )
