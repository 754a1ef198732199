"""Running ``perdure`` as a user does: real subprocesses, a real worker process, a real
database (a SQLite file, or a PostgreSQL schema of the test's own)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

PERDURE = str(Path(sys.executable).parent / "perdure")

# The workflows the CLI tests drive, run by a `perdure worker` process.
APP = textwrap.dedent(
    """
    import os
    from datetime import timedelta
    from pathlib import Path

    from perdure import RetryPolicy, activity, workflow
    from perdure.exceptions import ApplicationError


    @activity.defn
    async def charge(order_id: str, amount: float) -> str:
        return f"receipt-{order_id}"


    @activity.defn
    async def ask_a_human(order_id: str) -> str:
        # The task token goes where a person (here: the test) finds it.
        Path(f"token-{order_id}.txt").write_bytes(activity.info().task_token)
        activity.raise_complete_async()


    @workflow.defn
    class Checkout:
        def __init__(self) -> None:
            self.approved_by = ""
            self.discount = 0

        @workflow.run
        async def run(self, order_id: str, amount: float) -> str:
            receipt = await workflow.execute_activity(
                charge, args=[order_id, amount], start_to_close_timeout=timedelta(seconds=30)
            )
            await workflow.wait_condition(lambda: bool(self.approved_by))
            if order_id.startswith("bad"):
                raise ApplicationError("card declined", {"code": 51}, type="Declined")
            return f"{receipt} approved by {self.approved_by} discount {self.discount}"

        @workflow.signal
        def approve(self, who: str) -> None:
            self.approved_by = who

        @workflow.query
        def status(self) -> str:
            return f"approved by {self.approved_by}" if self.approved_by else "waiting"

        @workflow.update
        def set_discount(self, percent: int) -> int:
            self.discount = percent
            return percent

        @set_discount.validator
        def check_discount(self, percent: int) -> None:
            if percent > 50:
                raise ValueError("at most 50%")


    @workflow.defn
    class Stuck:
        @workflow.run
        async def run(self) -> None:
            raise RuntimeError("a bug in the workflow code")


    @activity.defn
    async def reserve(warehouse: str) -> str:
        raise ApplicationError(f"warehouse {warehouse} is down")


    @workflow.defn
    class Retrying:
        @workflow.run
        async def run(self) -> str:
            return await workflow.execute_activity(
                reserve,
                "w-1",
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(initial_interval=timedelta(minutes=5)),
            )


    @workflow.defn
    class Parent:
        @workflow.run
        async def run(self) -> str:
            return await workflow.execute_child_workflow(
                Checkout.run, args=["child-order", 1.0], id="child-of-parent"
            )


    @workflow.defn
    class Tick:
        @workflow.run
        async def run(self, label: str) -> str:
            return f"tick {label}"


    @workflow.defn
    class Approval:
        @workflow.run
        async def run(self, order_id: str) -> str:
            return await workflow.execute_activity(
                ask_a_human, order_id, start_to_close_timeout=timedelta(minutes=5)
            )
    """
)


class Perdure:
    """``perdure`` subcommands on one database, run in ``cwd`` beside the app module."""

    def __init__(self, db: str, cwd: Path) -> None:
        self.db = db
        self.cwd = cwd

    def env(self) -> dict[str, str]:
        return {**os.environ, "PERDURE_DB": self.db, "PYTHONPATH": str(self.cwd)}

    def run(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PERDURE, *args],
            cwd=self.cwd,
            env={**self.env(), **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *args: str, input: str | None = None) -> str:
        """Run a command that must succeed; its standard output."""
        done = self.run(*args, input=input)
        assert done.returncode == 0, f"perdure {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def json(self, *args: str) -> object:
        return orjson.loads(self.ok(*args, "-o", "json"))

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [PERDURE, *args],
            cwd=self.cwd,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @contextmanager
    def worker(self, task_queue: str = "shop") -> Iterator[subprocess.Popen[str]]:
        """A `perdure worker` process for the app's workflows, stopped on exit."""
        process = subprocess.Popen(
            [PERDURE, "worker", "-q", task_queue, "--log-level", "WARNING", "cli_app"],
            cwd=self.cwd,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            assert "perdure worker" in first, first + process.stdout.read()
            yield process
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()

    def wait_until(self, what: str, *args: str, timeout: float = 30) -> str:
        """Re-run a command until it succeeds with ``what`` in its output (another process
        moves the workflow along)."""
        deadline = time.monotonic() + timeout
        while True:
            done = self.run(*args)
            out = done.stdout + done.stderr
            if (done.returncode == 0 and what in out) or time.monotonic() > deadline:
                assert what in out, out
                return out
            time.sleep(0.1)


def write_app(directory: Path) -> None:
    (directory / "cli_app.py").write_text(APP)
