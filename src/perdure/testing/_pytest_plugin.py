"""perdure's pytest plugin, registered by entry point: installed with perdure, on in every
pytest run.

Fixtures:

* ``perdure_env``: a time-skipping :class:`WorkflowEnvironment` (in-memory store, virtual
  clock), shut down after the test.
* ``perdure_client``: its client.
* ``perdure_worker``: a factory; ``perdure_worker(workflows=[...], activities=[...])`` starts
  a worker on the environment (task queue ``"test"`` unless given) and stops it after the
  test.

After each test that used ``perdure_env``, every workflow the test closed is replayed against
the code as it is at the end of the test, and the test fails if one does not replay: its code
is not deterministic, and would fail when a worker restarts. Turn that off for one test with
``@pytest.mark.perdure_no_replay``, or for the run with ``--no-perdure-replay`` (or
``perdure_replay = false`` in the pytest configuration).

The fixtures are async: with pytest-asyncio in strict mode, mark the tests
``@pytest.mark.asyncio``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar, cast

import pytest

from perdure.testing._environment import WorkflowEnvironment
from perdure.testing._replay_check import replay_closed_workflows
from perdure.worker import Worker

F = TypeVar("F", bound=Callable[..., Any])

try:
    import pytest_asyncio

    _fixture: Any = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - the fixtures then need another async plugin
    _fixture = pytest.fixture


def _async_fixture(fn: F) -> F:
    return cast(F, _fixture(fn))


NO_REPLAY_MARKER = "perdure_no_replay"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("perdure")
    group.addoption(
        "--perdure-replay",
        dest="perdure_replay",
        action="store_true",
        default=None,
        help="Replay every workflow a test closed and fail the test if one does not replay "
        "(the default).",
    )
    group.addoption(
        "--no-perdure-replay",
        dest="perdure_replay",
        action="store_false",
        help="Do not replay the workflows tests closed.",
    )
    parser.addini(
        "perdure_replay",
        "Replay every workflow a test closed (default true).",
        type="bool",
        default=True,
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{NO_REPLAY_MARKER}: do not replay the workflows this test closed (it changes "
        "workflow code on purpose)",
    )


def _replay_enabled(request: pytest.FixtureRequest) -> bool:
    if request.node.get_closest_marker(NO_REPLAY_MARKER) is not None:
        return False
    option = request.config.getoption("perdure_replay")
    return bool(request.config.getini("perdure_replay") if option is None else option)


@_async_fixture
async def perdure_env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping workflow environment of the test's own."""
    env = await WorkflowEnvironment.start_time_skipping()
    try:
        yield env
        if _replay_enabled(request):
            _, failures = await replay_closed_workflows(env.client)
            if failures:
                pytest.fail(
                    "Workflows this test closed do not replay against their code (it is not "
                    "deterministic; see docs/testing.md):\n"
                    + "\n".join(f"  {f}" for f in failures),
                    pytrace=False,
                )
    finally:
        await env.shutdown()


@_async_fixture
async def perdure_client(perdure_env: WorkflowEnvironment) -> Any:
    """The client of ``perdure_env``."""
    return perdure_env.client


@_async_fixture
async def perdure_worker(
    perdure_env: WorkflowEnvironment,
) -> AsyncIterator[Callable[..., Any]]:
    """Start workers on ``perdure_env``: ``perdure_worker(workflows=[...], activities=[...],
    task_queue="test", **worker_options)`` returns the running :class:`Worker`."""
    started: list[Worker] = []

    async def start(
        *,
        workflows: Sequence[type] = (),
        activities: Sequence[Callable[..., Any]] = (),
        task_queue: str = "test",
        **options: Any,
    ) -> Worker:
        worker = Worker(
            perdure_env.client,
            task_queue=task_queue,
            workflows=workflows,
            activities=activities,
            **options,
        )
        await worker.__aenter__()
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in reversed(started):
            await worker.__aexit__(None, None, None)
