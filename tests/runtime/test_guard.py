"""DeterminismGuard refuses non-deterministic calls made by workflow code, and only those."""

from __future__ import annotations

import _thread
import concurrent.futures
import contextlib
import datetime
import http.client
import importlib
import io
import linecache
import logging
import os
import pathlib
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
import traceback
import types
import uuid
import zoneinfo
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from perdure._errors import NondeterminismError, RestrictedWorkflowAccessError
from perdure._runtime import _guard
from perdure._runtime._guard import DeterminismGuard

REPLAYED = "(workflow code must be deterministic: it is replayed from history after a crash)"
USE_NOW = "use workflow.now() instead"
USE_TIME = "use workflow.now(), workflow.time() or workflow.time_ns() instead"
USE_TIMER = "use await asyncio.sleep(...) or await workflow.sleep(...) (a durable timer)"
USE_RANDOM = "use workflow.random() instead"
USE_UUID = "use workflow.uuid4() instead"
DO_FILE_IO = "do I/O in an activity"
DO_NETWORK = "do network calls in an activity"
USE_TASKS = "use asyncio tasks instead (workflow code runs on a deterministic event loop)"
DO_PROCESSES = "run processes in an activity"


class MyDateTime(datetime.datetime):
    pass


DateTime = datetime.datetime  # what ``from datetime import datetime`` binds

FORBIDDEN = [
    # the clock
    pytest.param(lambda: datetime.datetime.now(), "datetime.datetime.now()", USE_NOW, id="now"),
    pytest.param(
        lambda: DateTime.now(datetime.UTC), "datetime.datetime.now()", USE_NOW, id="now-tz"
    ),
    pytest.param(
        lambda: datetime.datetime.utcnow(), "datetime.datetime.utcnow()", USE_NOW, id="utcnow"
    ),
    pytest.param(
        lambda: datetime.datetime.today(), "datetime.datetime.today()", USE_NOW, id="today"
    ),
    pytest.param(lambda: datetime.date.today(), "datetime.date.today()", USE_NOW, id="date-today"),
    pytest.param(
        lambda: MyDateTime.now(),
        f"{MyDateTime.__module__}.MyDateTime.now()",
        USE_NOW,
        id="subclass-now",
    ),
    pytest.param(time.time, "time.time()", USE_TIME, id="time"),
    pytest.param(time.time_ns, "time.time_ns()", USE_TIME, id="time_ns"),
    pytest.param(time.monotonic, "time.monotonic()", USE_TIME, id="monotonic"),
    pytest.param(time.monotonic_ns, "time.monotonic_ns()", USE_TIME, id="monotonic_ns"),
    pytest.param(time.perf_counter, "time.perf_counter()", USE_TIME, id="perf_counter"),
    pytest.param(time.perf_counter_ns, "time.perf_counter_ns()", USE_TIME, id="perf_counter_ns"),
    pytest.param(lambda: time.sleep(0), "time.sleep()", USE_TIMER, id="sleep"),
    # randomness
    pytest.param(random.random, "random.random()", USE_RANDOM, id="random"),
    pytest.param(lambda: random.randint(1, 6), "random.randint()", USE_RANDOM, id="randint"),
    pytest.param(lambda: random.choice("abc"), "random.choice()", USE_RANDOM, id="choice"),
    pytest.param(lambda: random.shuffle([1, 2, 3]), "random.shuffle()", USE_RANDOM, id="shuffle"),
    pytest.param(lambda: random.uniform(0, 1), "random.uniform()", USE_RANDOM, id="uniform"),
    pytest.param(lambda: random.seed(1), "random.seed()", USE_RANDOM, id="seed"),
    pytest.param(
        lambda: random.SystemRandom().random(),
        "random.SystemRandom.random()",
        USE_RANDOM,
        id="SystemRandom",
    ),
    pytest.param(lambda: random.Random(), "random.Random()", USE_RANDOM, id="unseeded-Random"),
    pytest.param(lambda: os.urandom(8), "os.urandom()", USE_RANDOM, id="urandom"),
    pytest.param(secrets.token_hex, "secrets.token_hex()", USE_RANDOM, id="token_hex"),
    pytest.param(lambda: secrets.randbelow(10), "secrets.randbelow()", USE_RANDOM, id="randbelow"),
    pytest.param(uuid.uuid4, "uuid.uuid4()", USE_UUID, id="uuid4"),
    pytest.param(uuid.uuid1, "uuid.uuid1()", USE_UUID, id="uuid1"),
    # files
    pytest.param(lambda: open(__file__), "open()", DO_FILE_IO, id="open"),  # noqa: SIM115
    pytest.param(lambda: io.open(__file__), "open()", DO_FILE_IO, id="io.open"),  # noqa: SIM115, UP020
    pytest.param(lambda: os.open(__file__, os.O_RDONLY), "os.open()", DO_FILE_IO, id="os.open"),
    pytest.param(
        lambda: pathlib.Path(__file__).open(),  # noqa: SIM115
        "pathlib.Path.open()",
        DO_FILE_IO,
        id="Path.open",
    ),
    pytest.param(
        lambda: pathlib.Path(__file__).read_text(),
        "pathlib.Path.read_text()",
        DO_FILE_IO,
        id="Path.read_text",
    ),
    pytest.param(lambda: os.listdir("."), "os.listdir()", DO_FILE_IO, id="listdir"),
    # the network (refused before any connection is attempted)
    pytest.param(socket.socket, "socket.socket()", DO_NETWORK, id="socket"),
    pytest.param(
        lambda: socket.create_connection(("localhost", 9)),
        "socket.create_connection()",
        DO_NETWORK,
        id="create_connection",
    ),
    pytest.param(
        lambda: socket.getaddrinfo("localhost", 80),
        "socket.getaddrinfo()",
        DO_NETWORK,
        id="getaddrinfo",
    ),
    # threads
    pytest.param(
        lambda: threading.Thread(target=int).start(),
        "threading.Thread.start()",
        USE_TASKS,
        id="Thread.start",
    ),
    pytest.param(
        lambda: _thread.start_new_thread(int, ()),
        "_thread.start_new_thread()",
        USE_TASKS,
        id="start_new_thread",
    ),
    # processes
    pytest.param(
        lambda: subprocess.Popen(["true"]), "subprocess.Popen()", DO_PROCESSES, id="Popen"
    ),
    pytest.param(lambda: subprocess.run(["true"]), "subprocess.run()", DO_PROCESSES, id="run"),
    pytest.param(lambda: os.system("true"), "os.system()", DO_PROCESSES, id="system"),
]


def refused(call: Callable[[], object], guard: DeterminismGuard | None = None) -> str:
    """Run ``call`` under a guard; return the message of the error it must raise."""
    guard = guard or DeterminismGuard()
    before = sys.getprofile()
    with pytest.raises(RestrictedWorkflowAccessError) as raised, guard:
        call()
    assert guard.violation is raised.value
    assert sys.getprofile() is before
    return str(raised.value)


def run_to_completion(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never blocks, as the workflow event loop would."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the coroutine blocked")


@pytest.mark.parametrize(("call", "name", "advice"), FORBIDDEN)
def test_refuses_a_non_deterministic_call(
    call: Callable[[], object], name: str, advice: str
) -> None:
    message = refused(call)

    assert message.startswith(f"Workflow code called {name} at {__file__}:")
    assert f": {advice}. {REPLAYED}" in message


def read_the_clock() -> datetime.datetime:
    return datetime.datetime.now()


def test_the_message_names_the_call_its_site_and_the_alternative() -> None:
    guard = DeterminismGuard()
    with pytest.raises(RestrictedWorkflowAccessError) as raised, guard:
        read_the_clock()

    line = read_the_clock.__code__.co_firstlineno + 1
    assert str(raised.value) == (
        f"Workflow code called datetime.datetime.now() at {__file__}:{line}, which is not "
        f"replay-safe: use workflow.now() instead. {REPLAYED}"
    )
    assert isinstance(raised.value, NondeterminismError)


def test_an_indirect_call_names_what_workflow_code_called_and_what_that_calls() -> None:
    assert "random.randint() at " in refused(lambda: random.randint(1, 6))
    assert "not replay-safe (it calls random.getrandbits()): " in refused(
        lambda: random.randint(1, 6)
    )
    message = refused(lambda: http.client.HTTPConnection("localhost", 9).connect())
    assert message.startswith("Workflow code called http.client.HTTPConnection.connect() at ")
    assert "(it calls socket.create_connection()): do network calls in an activity." in message


def test_uuid4_is_named_rather_than_the_randomness_beneath_it() -> None:
    message = refused(uuid.uuid4)

    assert "uuid.uuid4()" in message
    assert "urandom" not in message


def test_submitting_to_an_executor_is_refused() -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as executor:
        message = refused(lambda: executor.submit(int))

    assert message.startswith("Workflow code called concurrent.futures.ThreadPoolExecutor.submit()")
    assert USE_TASKS in message


def test_calls_work_normally_outside_the_guard(tmp_path: pathlib.Path) -> None:
    refused(time.time)

    assert time.time() > 0
    assert datetime.datetime.now().year >= 2024
    assert 0 <= random.random() < 1
    assert uuid.uuid4().version == 4
    (tmp_path / "file.txt").write_text("content")
    with open(tmp_path / "file.txt") as file:
        assert file.read() == "content"
    with socket.socket() as sock:
        assert sock.fileno() >= 0
    results: list[int] = []
    thread = threading.Thread(target=results.append, args=(1,))
    thread.start()
    thread.join()
    assert results == [1]
    completed = subprocess.run([sys.executable, "-c", "print(42)"], capture_output=True, check=True)
    assert completed.stdout.strip() == b"42"


def test_the_workflows_own_random_is_allowed() -> None:
    workflow_random = random.Random(7)
    expected = random.Random(7)

    with DeterminismGuard(allowed_random=workflow_random) as guard:
        values = [
            workflow_random.random(),
            workflow_random.randint(1, 1000),
            workflow_random.choice("abcdefgh"),
            workflow_random.getrandbits(64),
        ]

    assert guard.violation is None
    assert values == [
        expected.random(),
        expected.randint(1, 1000),
        expected.choice("abcdefgh"),
        expected.getrandbits(64),
    ]


def test_a_seeded_random_instance_is_allowed() -> None:
    with DeterminismGuard() as guard:
        values = [random.Random(3).random() for _ in range(2)]

    assert guard.violation is None
    assert values[0] == values[1]


def test_logging_is_allowed(caplog: pytest.LogCaptureFixture, tmp_path: pathlib.Path) -> None:
    logger = logging.getLogger("perdure.tests.guard")
    # delay=True: the handler opens its file on the first record, inside the guard.
    handler = logging.FileHandler(tmp_path / "workflow.log", delay=True)
    logger.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name), DeterminismGuard() as guard:
            logger.info("charged %s", "order-1")
    finally:
        logger.removeHandler(handler)
        handler.close()

    assert guard.violation is None
    [record] = caplog.records
    assert record.getMessage() == "charged order-1"
    assert record.created > 0  # logging read the clock
    assert (tmp_path / "workflow.log").read_text() == "charged order-1\n"


def test_formatting_a_traceback_is_allowed() -> None:
    linecache.clearcache()  # so formatting reads this file's source inside the guard
    with DeterminismGuard() as guard:
        try:
            raise ValueError("boom")
        except ValueError:
            text = traceback.format_exc()

    assert guard.violation is None
    assert 'raise ValueError("boom")' in text


def test_time_zones_are_allowed() -> None:
    try:
        zoneinfo.ZoneInfo("Europe/Paris")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no time zone database on this machine")
    zoneinfo.ZoneInfo.clear_cache()  # so the guarded call reads the database

    with DeterminismGuard() as guard:
        paris = datetime.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))

    assert guard.violation is None
    assert paris.utcoffset() == datetime.timedelta(hours=1)


def test_importing_a_module_is_allowed(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "perdure_guard_test_lazy_module"
    (tmp_path / f"{name}.py").write_text("import time\n\nLOADED_AT = time.time()\n")
    monkeypatch.syspath_prepend(tmp_path)
    try:
        with DeterminismGuard() as guard:
            module = importlib.import_module(name)
    finally:
        sys.modules.pop(name, None)

    assert guard.violation is None
    assert module.LOADED_AT > 0


def test_a_library_reading_the_clock_for_workflow_code_is_refused(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "perdure_guard_test_clock_library"
    (tmp_path / f"{name}.py").write_text("import time\n\n\ndef stamp():\n    return time.time()\n")
    monkeypatch.syspath_prepend(tmp_path)
    try:
        library = importlib.import_module(name)
    finally:
        sys.modules.pop(name, None)

    message = refused(library.stamp)

    assert message.startswith(f"Workflow code called time.time() at {tmp_path / name}.py:5,")


def perdure_module(source: str) -> dict[str, Any]:
    """Run ``source`` as if it were one of perdure's own modules."""
    filename = pathlib.Path(_guard.__file__).parent / "_guard_test_example.py"
    namespace: dict[str, Any] = {}
    exec(compile(source, str(filename), "exec"), namespace)
    return namespace


def test_perdures_own_modules_may_make_any_call() -> None:
    stamp = perdure_module(
        "import time, uuid\n\ndef stamp():\n    return time.time(), uuid.uuid4()\n"
    )

    with DeterminismGuard() as guard:
        now, ident = stamp["stamp"]()

    assert guard.violation is None
    assert now > 0
    assert ident.version == 4


def test_workflow_code_called_by_perdure_is_still_refused() -> None:
    runner = perdure_module("def run(fn):\n    return fn()\n")

    message = refused(lambda: runner["run"](read_the_clock))

    line = read_the_clock.__code__.co_firstlineno + 1
    assert message.startswith(f"Workflow code called datetime.datetime.now() at {__file__}:{line},")


def test_a_swallowed_violation_is_still_recorded() -> None:
    with DeterminismGuard() as guard:
        try:
            time.time()
        except Exception:  # workflow code that swallows everything
            swallowed = True

    assert swallowed
    assert isinstance(guard.violation, RestrictedWorkflowAccessError)
    assert str(guard.violation).startswith("Workflow code called time.time() at ")


def test_keeps_the_first_violation_until_reset() -> None:
    guard = DeterminismGuard()
    for call in (time.time, lambda: os.urandom(1)):
        with contextlib.suppress(RestrictedWorkflowAccessError), guard:
            call()

    assert guard.violation is not None
    assert "time.time()" in str(guard.violation)
    guard.reset()
    assert guard.violation is None


def record_events(frame: types.FrameType, event: str, arg: object) -> None:
    pass


def test_restores_the_previous_profile_function() -> None:
    sys.setprofile(record_events)
    try:
        with DeterminismGuard():
            inside = sys.getprofile()
        after_clean_exit = sys.getprofile()
        with contextlib.suppress(RestrictedWorkflowAccessError), DeterminismGuard():
            time.time()  # the interpreter drops a profile function that raises
        after_violation = sys.getprofile()
    finally:
        sys.setprofile(None)

    assert inside is not record_events
    assert after_clean_exit is record_events
    assert after_violation is record_events


def test_nested_guards_restore_each_other() -> None:
    outer, inner = DeterminismGuard(), DeterminismGuard()
    with outer:
        with inner, inner:  # the same guard twice, too
            pass
        with pytest.raises(RestrictedWorkflowAccessError):
            time.time()  # the outer guard is watching again

    assert sys.getprofile() is None
    assert outer.violation is not None
    assert inner.violation is None


def test_pure_computation_runs_unhindered() -> None:
    def compute() -> tuple[int, str, list[tuple[str, int]]]:
        squares = {str(i): i * i for i in range(200)}
        largest = sorted(squares.items(), key=lambda item: item[1], reverse=True)[:3]
        text = ",".join(f"{key}={value:x}" for key, value in largest)
        return sum(squares.values()), text.upper(), largest

    with DeterminismGuard() as guard:
        result = compute()

    assert guard.violation is None
    assert result == compute()


def test_workflow_coroutines_run_unhindered() -> None:
    async def double(value: int) -> int:
        return 2 * value

    async def workflow() -> list[int]:
        return [await double(i) for i in range(4)]

    with DeterminismGuard() as guard:
        result = run_to_completion(workflow())

    assert guard.violation is None
    assert result == [0, 2, 4, 6]


def test_garbage_collection_callbacks_are_not_blamed_on_workflow_code() -> None:
    import gc

    seen: list[float] = []

    def metrics_callback(phase: str, info: dict[str, object]) -> None:
        seen.append(time.perf_counter())  # fine: this is not workflow code

    gc.callbacks.append(metrics_callback)
    try:
        guard = DeterminismGuard()
        with guard:
            gc.collect()
        assert guard.violation is None
        assert len(seen) == 2  # start and stop both ran
        with guard, pytest.raises(RestrictedWorkflowAccessError):
            time.perf_counter()  # still guarded after the collection
    finally:
        gc.callbacks.remove(metrics_callback)
