"""A Worker lints the workflow classes it is given: a warning by default, an error if asked,
nothing if turned off, and never a crash over source it cannot read."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import pytest

from perdure import Client, Worker, workflow
from perdure.lint import DeterminismLintError, lint_workflow
from perdure.lint import _module as lint_module


@workflow.defn
class Stamped:
    @workflow.run
    async def run(self) -> float:
        return time.time()


STAMP_LINE = Stamped.run.__code__.co_firstlineno + 2


@workflow.defn
class Clean:
    @workflow.run
    async def run(self) -> float:
        return workflow.time()


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    client = await Client.connect("sqlite://:memory:")
    yield client
    await client.close()


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_findings_are_logged_as_a_warning_by_default(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="perdure.worker"):
        Worker(client, task_queue="q", workflows=[Stamped, Clean])

    [message] = warnings(caplog)
    assert message.startswith("Workflow Stamped has code that is not replay-safe")
    assert f"{__file__}:{STAMP_LINE}:16: DET001 time.time() is not replay-safe: " in message
    assert "Clean" not in message


async def test_error_mode_refuses_to_build_the_worker(client: Client) -> None:
    with pytest.raises(DeterminismLintError) as raised:
        Worker(client, task_queue="q", workflows=[Clean, Stamped], determinism_lint="error")

    [finding] = raised.value.findings
    assert (finding.path, finding.line, finding.code) == (__file__, STAMP_LINE, "DET001")
    assert str(finding) in str(raised.value)
    assert "# perdure: allow-nondeterminism" in str(raised.value)


async def test_error_mode_accepts_clean_workflows(client: Client) -> None:
    Worker(client, task_queue="q", workflows=[Clean], determinism_lint="error")


async def test_off_skips_the_lint(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="perdure.worker"):
        Worker(client, task_queue="q", workflows=[Stamped], determinism_lint="off")

    assert warnings(caplog) == []


async def test_an_unknown_mode_is_refused(client: Client) -> None:
    with pytest.raises(ValueError, match='determinism_lint must be "warn", "error" or "off"'):
        Worker(client, task_queue="q", workflows=[Clean], determinism_lint="loud")  # type: ignore[arg-type]


async def test_a_workflow_defined_in_a_test_function_is_linted(client: Client) -> None:
    @workflow.defn
    class Local:
        @workflow.run
        async def run(self) -> float:
            return time.monotonic()

    with pytest.raises(DeterminismLintError) as raised:
        Worker(client, task_queue="q", workflows=[Local], determinism_lint="error")

    assert "time.monotonic()" in str(raised.value)


SOURCELESS = """
import time
from perdure import workflow

@workflow.defn
class Sourceless:
    @workflow.run
    async def run(self) -> float:
        return time.time()
"""


async def test_a_class_without_source_is_skipped_quietly(client: Client) -> None:
    # As typed at a REPL: its module has no file.
    namespace: dict[str, object] = {"__name__": "perdure_test_no_such_module"}
    exec(compile(SOURCELESS, "<stdin>", "exec"), namespace)
    # Defined by exec in a module whose file does not contain it.
    here: dict[str, object] = {"__name__": __name__}
    exec(compile(SOURCELESS, "<string>", "exec"), here)

    for cls in (namespace["Sourceless"], here["Sourceless"]):
        assert isinstance(cls, type)
        assert lint_workflow(cls) == []
        Worker(client, task_queue="q", workflows=[cls], determinism_lint="error")


async def test_each_class_is_linted_once(monkeypatch: pytest.MonkeyPatch, client: Client) -> None:
    lint_workflow(Stamped)

    def fail(cls: type) -> tuple[()]:
        raise AssertionError("linted again")

    monkeypatch.setattr(lint_module, "_lint_class", fail)
    assert len(lint_workflow(Stamped)) == 1
    Worker(client, task_queue="q", workflows=[Stamped])
