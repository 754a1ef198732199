"""Infrastructure provisioning with rollback: a saga that tears down what it built.

Run it::

    pip install -e .
    python examples/provisioning.py                      # uses ./perdure-provisioning.db
    python examples/provisioning.py --parallel-teardown  # roll back all at once
    python examples/provisioning.py --fail-at database    # fail prod-eu at another step
    python examples/provisioning.py --reset              # forget earlier runs

Each environment is one workflow: create a network, a database, a few VMs (in parallel),
then a DNS record. Before each resource is created, the workflow registers the activity that
deletes it with a ``perdure.patterns.Saga``; when a step fails for good, the saga deletes
what was registered, in reverse order (or all at once with ``--parallel-teardown``), and the
workflow reports what it rolled back.

* staging is provisioned and ready;
* prod-eu's DNS zone is locked: its VMs, database and network are torn down (the database
  is busy the first time and its deletion is retried);
* prod-us runs out of VM quota, and its database has deletion protection on: that deletion
  fails for good, the saga goes on with the others (``continue_with_error``) and the report
  lists what was left behind.

Deletions must be safe when the resource was never created (the step may have failed before
creating it) and safe to repeat (an activity may run more than once): each one deletes by the
name the step used, not by an id the step returned.

Interrupt it (Ctrl-C, ``kill -9``) and run it again: each workflow carries on where it
stood; finished ones show their stored result.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from perdure import (
    ActivityError,
    ApplicationError,
    CancelledError,
    Client,
    RetryPolicy,
    Worker,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    activity,
    workflow,
)
from perdure.client import WorkflowNotFoundError
from perdure.common import WorkflowIDConflictPolicy
from perdure.patterns import CompensationError, Saga

TASK_QUEUE = "provisioning"
STARTED_AT = time.monotonic()
STEPS = ("network", "database", "vms", "dns")
T = TypeVar("T")


def say(line: str) -> None:
    """Print one narrative line, stamped with the seconds since this process started."""
    print(f"[{time.monotonic() - STARTED_AT:5.1f}s] {line}", flush=True)


# ---------------------------------------------------------------------------------------------
# Data (stored as JSON: plain dataclasses).
# ---------------------------------------------------------------------------------------------


@dataclass
class EnvironmentSpec:
    name: str
    vms: int = 3
    fail_at: str | None = None  # one of STEPS: that step fails for good
    protected: list[str] = field(default_factory=list)  # resources that refuse deletion
    parallel_teardown: bool = False
    work_seconds: float = 0.0  # how long each cloud call takes (to make the demo watchable)


@dataclass
class VmRequest:
    env: EnvironmentSpec
    index: int

    @property
    def name(self) -> str:
        return f"{self.env.name}-vm-{self.index}"


@dataclass
class Environment:
    name: str
    network: str
    database: str
    vms: list[str]
    hostname: str


@dataclass
class Rollback:
    """What a failed environment's ``ApplicationError`` carries as its detail."""

    failed_step: str
    reason: str
    torn_down: list[str]  # deletion activities that completed, in order
    left_behind: list[str]  # why each resource that could not be deleted is still there


ENVIRONMENTS = [
    EnvironmentSpec("staging"),
    EnvironmentSpec("prod-eu", fail_at="dns"),
    EnvironmentSpec("prod-us", fail_at="vms", protected=["database"]),
]


# Creation steps fail fast (a bad request stays bad); deletions retry until they work, unless
# the cloud refuses them for good.
CREATE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=0.5), maximum_attempts=3)
DELETE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=0.5), maximum_attempts=0)
CALL_TIMEOUT = timedelta(seconds=30)


# ---------------------------------------------------------------------------------------------
# Activities: a fake cloud. Real ones would call the provider's API with the resource name as
# the idempotency key.
# ---------------------------------------------------------------------------------------------

LABELS = {
    "create_network": "create network",
    "create_database": "create database",
    "create_vm": "create vm",
    "create_dns_record": "create dns record",
    "delete_network": "undo: delete network",
    "delete_database": "undo: delete database",
    "delete_vm": "undo: delete vm",
    "delete_dns_record": "undo: delete dns record",
}


async def cloud_call(spec: EnvironmentSpec, what: str) -> None:
    """Take a little real time, then narrate the call."""
    if spec.work_seconds:
        await asyncio.sleep(spec.work_seconds * random.uniform(0.5, 1.0))
    info = activity.info()
    step = LABELS[info.activity_type]
    say(f"{info.workflow_id:<8} {step:<24} attempt {info.attempt}  {what}")


def fail(message: str, kind: str) -> ApplicationError:
    """A failure the cloud will not get over by retrying."""
    return ApplicationError(message, type=kind, non_retryable=True)


@activity.defn
async def create_network(spec: EnvironmentSpec) -> str:
    if spec.fail_at == "network":
        await cloud_call(spec, "FAILED: address space exhausted")
        raise fail("address space exhausted", "AddressSpaceExhausted")
    await cloud_call(spec, f"ok: net-{spec.name}")
    return f"net-{spec.name}"


@activity.defn
async def create_database(spec: EnvironmentSpec) -> str:
    if spec.fail_at == "database":
        await cloud_call(spec, "FAILED: engine version unavailable")
        raise fail("engine version unavailable", "EngineUnavailable")
    await cloud_call(spec, f"ok: db-{spec.name}")
    return f"db-{spec.name}"


@activity.defn
async def create_vm(vm: VmRequest) -> str:
    if vm.env.fail_at == "vms" and vm.index == vm.env.vms:
        await cloud_call(vm.env, f"FAILED: {vm.name}: VM quota exceeded")
        raise fail(f"{vm.name}: VM quota exceeded", "QuotaExceeded")
    await cloud_call(vm.env, f"ok: {vm.name}")
    return vm.name


@activity.defn
async def create_dns_record(spec: EnvironmentSpec) -> str:
    if spec.fail_at == "dns":
        await cloud_call(spec, "FAILED: zone example.com is locked")
        raise fail("zone example.com is locked", "ZoneLocked")
    hostname = f"{spec.name}.example.com"
    await cloud_call(spec, f"ok: {hostname}")
    return hostname


@activity.defn
async def delete_dns_record(spec: EnvironmentSpec) -> None:
    await cloud_call(spec, "ok: deleted (if it existed)")


@activity.defn
async def delete_vm(vm: VmRequest) -> None:
    await cloud_call(vm.env, f"ok: {vm.name} deleted (if it existed)")


@activity.defn
async def delete_database(spec: EnvironmentSpec) -> None:
    if "database" in spec.protected:
        await cloud_call(spec, "FAILED: deletion protection is on (not retryable)")
        raise fail(f"db-{spec.name}: deletion protection is on", "DeletionProtected")
    if activity.info().attempt == 1:
        # Compensations retry like any activity: the database is busy the first time.
        await cloud_call(spec, "FAILED: database busy (will retry)")
        raise ConnectionError("database busy")
    await cloud_call(spec, "ok: deleted (if it existed)")


@activity.defn
async def delete_network(spec: EnvironmentSpec) -> None:
    await cloud_call(spec, "ok: deleted (if it existed)")


ACTIVITIES: list[Callable[..., Any]] = [
    create_network,
    create_database,
    create_vm,
    create_dns_record,
    delete_dns_record,
    delete_vm,
    delete_database,
    delete_network,
]


# ---------------------------------------------------------------------------------------------
# The workflow.
# ---------------------------------------------------------------------------------------------


@workflow.defn
class ProvisionEnvironment:
    def __init__(self) -> None:
        self.step = ""

    @workflow.run
    async def run(self, spec: EnvironmentSpec) -> Environment:
        saga = Saga(
            parallel_compensation=spec.parallel_teardown,
            # Tear down as much as possible, then report what is left.
            continue_with_error=True,
            start_to_close_timeout=CALL_TIMEOUT,
            retry_policy=DELETE_RETRY,
        )
        try:
            async with saga:
                self.step = "network"
                saga.add_compensation(delete_network, spec)  # registered BEFORE the step
                network = await self.create(create_network, spec)

                self.step = "database"
                saga.add_compensation(delete_database, spec)
                database = await self.create(create_database, spec)

                self.step = "vms"
                requests = [VmRequest(spec, i) for i in range(1, spec.vms + 1)]
                for request in requests:
                    saga.add_compensation(delete_vm, request)
                # All at once; return_exceptions so that none is still being created when
                # the saga starts deleting them.
                created = await asyncio.gather(
                    *(self.create(create_vm, r) for r in requests), return_exceptions=True
                )
                vms = [self.created(outcome) for outcome in created]

                self.step = "dns"
                saga.add_compensation(delete_dns_record, spec)
                hostname = await self.create(create_dns_record, spec)
        except CompensationError as err:
            # Some deletion failed for good; the others ran (continue_with_error).
            left_behind = [str(failure.cause) for failure in err.failures]
            raise self.failed(spec, err.cause, list(err.compensated), left_behind) from err
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                raise  # the workflow was cancelled: rolled back, it ends CANCELED
            raise self.failed(spec, err, list(saga.compensated), []) from err
        return Environment(spec.name, network, database, vms, hostname)

    @staticmethod
    async def create(fn: Callable[[Any], Awaitable[str]], arg: Any) -> str:
        result: str = await workflow.execute_activity(
            fn, arg, start_to_close_timeout=CALL_TIMEOUT, retry_policy=CREATE_RETRY
        )
        return result

    @staticmethod
    def created(outcome: T | BaseException) -> T:
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def failed(
        self,
        spec: EnvironmentSpec,
        error: BaseException | None,
        torn_down: list[str],
        left_behind: list[str],
    ) -> ApplicationError:
        cause = error.cause if isinstance(error, ActivityError) else error
        reason = str(cause or error)
        # ApplicationError fails the workflow; the client reads the Rollback in its details.
        return ApplicationError(
            f"{spec.name} failed at {self.step}: {reason}",
            Rollback(self.step, reason, torn_down, left_behind),
            type="ProvisioningFailed",
        )

    @workflow.query
    def current_step(self) -> str:
        return self.step


# ---------------------------------------------------------------------------------------------
# The driver.
# ---------------------------------------------------------------------------------------------


async def start_or_show(client: Client, spec: EnvironmentSpec) -> WorkflowHandle[Environment]:
    """A handle to the environment's workflow, started only if it never ran."""
    try:
        described = await client.get_workflow_handle(spec.name).describe()
    except WorkflowNotFoundError:
        described = None
    if described is not None and described.status != WorkflowExecutionStatus.RUNNING:
        say(f"{spec.name:<8} finished in an earlier run ({described.status.name})")
        return client.get_workflow_handle_for(ProvisionEnvironment.run, spec.name)
    say(f"{spec.name:<8} {'resuming' if described else 'provisioning'}")
    # USE_EXISTING: if it is still running from an earlier run of the demo, carry on with it.
    return await client.start_workflow(
        ProvisionEnvironment.run,
        spec,
        id=spec.name,
        task_queue=TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


def describe_teardown(torn_down: list[str]) -> str:
    """'dns record, 3 vms, database, network' from the deletions' activity types."""
    counts = collections.Counter(torn_down)
    parts = []
    for kind in dict.fromkeys(torn_down):
        label = kind.removeprefix("delete_").replace("_", " ")
        parts.append(f"{counts[kind]} {label}s" if counts[kind] > 1 else label)
    return ", ".join(parts) or "nothing"


async def outcome(handle: WorkflowHandle[Environment]) -> tuple[str, str, str]:
    """(status, result, rollback) of a finished workflow, for the summary."""
    try:
        env: Environment = await handle.result()
    except WorkflowFailureError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == "ProvisioningFailed":
            detail = cause.details[0]  # the Rollback, as plain JSON values
            rollback = "torn down: " + describe_teardown(detail["torn_down"])
            if detail["left_behind"]:
                rollback += "; LEFT BEHIND: " + "; ".join(detail["left_behind"])
            return "FAILED", f"{detail['failed_step']}: {detail['reason']}", rollback
        return "FAILED", str(cause), "?"
    return "READY", f"https://{env.hostname} ({len(env.vms)} VMs)", "-"


def print_summary(rows: list[tuple[str, str, str, str]]) -> None:
    headers = ("environment", "status", "result", "rollback")
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(4)]
    print()
    for i, row in enumerate([headers, *rows]):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


async def main(db: Path, specs: list[EnvironmentSpec]) -> int:
    teardown = "all at once" if specs[0].parallel_teardown else "in reverse order"
    print(f"perdure provisioning demo, database {db} (rollback {teardown})\n")
    client = await Client.connect(f"sqlite:///{db}")
    try:
        async with Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[ProvisionEnvironment],
            activities=ACTIVITIES,
        ):
            handles = [await start_or_show(client, spec) for spec in specs]
            rows = await asyncio.gather(*(outcome(h) for h in handles))
    finally:
        await client.close()
    print_summary([(h.id, *row) for h, row in zip(handles, rows, strict=True)])
    print("\nRun it again: finished environments are not provisioned twice (--reset starts over).")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--db",
        type=Path,
        default=Path("perdure-provisioning.db"),
        help="SQLite file holding the workflows (default: %(default)s)",
    )
    parser.add_argument(
        "--reset", action="store_true", help="delete the database first and start from scratch"
    )
    parser.add_argument(
        "--fail-at",
        choices=STEPS,
        default="dns",
        help="the step at which prod-eu fails (default: %(default)s)",
    )
    parser.add_argument(
        "--parallel-teardown",
        action="store_true",
        help="roll back every resource at once instead of in reverse order",
    )
    parser.add_argument("--vms", type=int, default=3, help="VMs per environment (default: 3)")
    parser.add_argument(
        "--work-seconds", type=float, default=0.4, help="time per cloud call (default: 0.4)"
    )
    return parser.parse_args()


def demo_specs(args: argparse.Namespace) -> list[EnvironmentSpec]:
    specs = []
    for template in ENVIRONMENTS:
        fail_at = args.fail_at if template.name == "prod-eu" else template.fail_at
        specs.append(
            EnvironmentSpec(
                template.name,
                vms=max(1, args.vms),
                fail_at=fail_at,
                protected=list(template.protected),
                parallel_teardown=args.parallel_teardown,
                work_seconds=args.work_seconds,
            )
        )
    return specs


if __name__ == "__main__":
    args = parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.reset:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    sys.exit(asyncio.run(main(args.db, demo_specs(args))))
