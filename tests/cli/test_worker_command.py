"""``perdure worker``: a worker process from a module, stopped gracefully by SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from perdure import Client

PERDURE = str(Path(sys.executable).parent / "perdure")

APP = textwrap.dedent(
    """
    from datetime import timedelta

    from perdure import activity, workflow


    @activity.defn
    async def shout(text: str) -> str:
        return text.upper()


    @workflow.defn
    class Greeter:
        @workflow.run
        async def run(self, name: str) -> str:
            return await workflow.execute_activity(
                shout, f"hello {name}", start_to_close_timeout=timedelta(seconds=10)
            )
    """
)


def write_app(tmp_path: Path) -> None:
    (tmp_path / "greeter_app.py").write_text(APP)


async def greet_through_a_worker(
    tmp_path: Path, name: str, *options: str, client_converter: Any = None
) -> Any:
    """Run ``perdure worker`` on the greeter app with ``options``, and the Greeter workflow
    through it from this process: its result."""
    db = f"sqlite:///{tmp_path / 'app.db'}"
    process = await asyncio.create_subprocess_exec(
        PERDURE, "worker", "--db", db, "-q", "greet", *options, "greeter_app", cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        await asyncio.wait_for(process.stdout.readline(), 30)
        client = await Client.connect(db, data_converter=client_converter)
        try:
            return await asyncio.wait_for(
                client.execute_workflow("Greeter", name, id="g", task_queue="greet"), 30
            )
        finally:
            await client.close()
    finally:
        process.kill()
        await process.wait()


@pytest.mark.realtime
@pytest.mark.timeout(60)
async def test_worker_runs_a_module_and_stops_on_sigterm(tmp_path: Path) -> None:
    write_app(tmp_path)
    db = f"sqlite:///{tmp_path / 'app.db'}"
    process = await asyncio.create_subprocess_exec(
        PERDURE,
        "worker",
        "--db",
        db,
        "--task-queue",
        "greet",
        "greeter_app",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert "task queue 'greet'" in first and "Greeter" in first and "shout" in first
        client = await Client.connect(db)
        result = await asyncio.wait_for(
            client.execute_workflow("Greeter", "ada", id="g", task_queue="greet"), 30
        )
        assert result == "HELLO ADA"
        await client.close()
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, output
        assert b"stopped" in output
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no_such_module"], "Cannot import 'no_such_module'"),
        (["--workflow", "Nope", "greeter_app"], "No workflow named Nope"),
        (["--activity", "nope", "greeter_app"], "No activity named nope"),
    ],
)
def test_bad_arguments_are_explained(tmp_path: Path, args: list[str], message: str) -> None:
    write_app(tmp_path)
    done = subprocess.run(
        [PERDURE, "worker", "--db", f"sqlite:///{tmp_path / 'x.db'}", "-q", "q", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert message in done.stderr


def test_the_banner_hides_the_database_password() -> None:
    from perdure.cli._worker import redacted

    assert redacted("postgresql://app:s3cret@db:5432/prod?schema=x") == (
        "postgresql://app:***@db:5432/prod?schema=x"
    )
    assert redacted("postgresql://app@db/prod") == "postgresql://app@db/prod"
    assert redacted("sqlite:///app.db") == "sqlite:///app.db"


@pytest.mark.realtime
@pytest.mark.timeout(60)
async def test_a_worker_with_the_applications_data_converter(tmp_path: Path) -> None:
    write_app(tmp_path)
    key = bytes(range(32))
    (tmp_path / "app_codec.py").write_text(
        "from perdure.converter import AesGcmCodec, DataConverter\n"
        f"converter = DataConverter(payload_codec=AesGcmCodec({key!r}, key_id='k'))\n"
    )
    from perdure.converter import AesGcmCodec, DataConverter

    converter = DataConverter(payload_codec=AesGcmCodec(key, key_id="k"))
    result = await greet_through_a_worker(
        tmp_path, "bo", "--data-converter", "app_codec:converter", client_converter=converter
    )
    assert result == "HELLO BO"


STAMP = textwrap.dedent(
    """
    from typing import Any

    from perdure.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor


    class _Stamped(ActivityInboundInterceptor):
        async def execute_activity(self, input: ExecuteActivityInput) -> Any:
            return "stamped " + await super().execute_activity(input)


    class Stamp(Interceptor):
        def intercept_activity(
            self, next: ActivityInboundInterceptor
        ) -> ActivityInboundInterceptor:
            return _Stamped(next)


    not_an_interceptor = 42
    """
)


@pytest.mark.realtime
@pytest.mark.timeout(60)
async def test_a_worker_with_an_interceptor(tmp_path: Path) -> None:
    write_app(tmp_path)
    (tmp_path / "stamp.py").write_text(STAMP)
    assert await greet_through_a_worker(tmp_path, "cy", "--interceptor", "stamp:Stamp") == (
        "stamped HELLO CY"
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("stamp", "give MODULE:NAME"),
        ("stamp:Nope", "cannot load stamp:Nope"),
        ("stamp:not_an_interceptor", "stamp:not_an_interceptor is a int, not a perdure.worker"),
    ],
)
def test_a_wrong_interceptor_is_explained(tmp_path: Path, path: str, message: str) -> None:
    write_app(tmp_path)
    (tmp_path / "stamp.py").write_text(STAMP)
    done = subprocess.run(
        [PERDURE, "worker", "--db", f"sqlite:///{tmp_path / 'x.db'}", "-q", "q",
         "--interceptor", path, "greeter_app"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
