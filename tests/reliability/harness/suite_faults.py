"""Store faults over the whole functional suite (RELIABILITY.md section 2, Temporal's
``-enableFaultInjection``): ``pytest --store-faults=SEED[:RATE]``.

Every store the suite opens through ``open_store`` (every client, test environment and
worker in the test processes) is wrapped by ``harness.faults`` through the engine's open
hook (``perdure._store.add_open_hook``); the engine itself reads no switch. The plan fails
only the calls the engine's workers make (``perdure.worker``) on their own behalf (no test
kit, client or test module up the call's chain): a worker must absorb a store fault (a
retry, a fence, a lease), a test or client must see it, so faulting their calls would fail
tests that are right to fail. Kinds: the call fails before reaching the
database, commits and then raises, the database is busy, or the call is slow.

A claim's reply is never lost (no ``after`` on ``claim_*``): SQLite cannot lose the reply of
a commit made in the process, PostgreSQL learns a lost COMMIT's outcome from its
transaction id and returns the claimed rows, and a lease the engine granted to nobody only
ends when it runs out, which the time-skipping clock (standing still while a task is
leased) never lets it do.

Each test draws its faults from ``SEED`` and its own node id, so a failing test re-run alone
(``pytest --store-faults=SEED <test>``) is dealt the same faults, give or take the order
its concurrent calls run in. Every injected fault is written to a record file, one line
each (``nodeid method kind``); the terminal summary counts them.
"""

from __future__ import annotations

import collections
import inspect
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from harness.faults import KINDS, FaultPlan, inject
from perdure._store import Store, add_open_hook

OPTION = "--store-faults"
RECORD_VARIABLE = "PERDURE_STORE_FAULTS_RECORD"
RATE = 0.01
CALLERS = ("perdure.worker.",)
# A worker's code run within a call of the test kit's or a client's (the test environment's
# sleep runs the retention sweep) or of a test module is theirs: its error is theirs to see.
NOT_FOR = ("perdure.testing", "perdure.client", "perdure.cli", "perdure.server", "test_")
# Not the reply of a claim (see the module's docstring), nor of a query's answer (the
# client's query would wait for it until its timeout: a client-facing error).
SPARE_AFTER = ("claim_workflow_tasks", "claim_activity_tasks", "claim_queries")
# Calls the store makes of itself or that only close it: never a fault.
NOT_WRAPPED = frozenset({"close", "transact", "read", "ready"})


def worker_methods(store: Store) -> tuple[str, ...]:
    """The store's public coroutine methods (the plan's caller filter keeps the faults to
    those a worker calls)."""
    names = []
    for name in dir(type(store)):
        if name.startswith("_") or name in NOT_WRAPPED:
            continue
        if inspect.iscoroutinefunction(getattr(type(store), name, None)):
            names.append(name)
    return tuple(sorted(names))


def parse(text: str) -> tuple[int, float]:
    seed, _, rate = text.partition(":")
    return int(seed), float(rate) if rate else RATE


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        OPTION,
        metavar="SEED[:RATE]",
        default=None,
        help="fail RATE (default 0.01) of the store calls the engine's workers make, seeded "
        "with SEED (RELIABILITY.md section 2; see tests/reliability/harness/suite_faults.py)",
    )


class SuiteFaults:
    """The plan of one test process, reseeded at each test."""

    def __init__(self, seed: int, rate: float, record: str) -> None:
        self.seed = seed
        self.record = record
        self.plan = FaultPlan(seed, rate, KINDS, callers=CALLERS, not_for=NOT_FOR, record=record)
        self.plan.spare = {name: ("after",) for name in SPARE_AFTER}
        self.remove = add_open_hook(self.wrap)
        self.nodeid = ""

    def wrap(self, store: Store) -> Store:
        return inject(store, self.plan, worker_methods(store))  # type: ignore[no-any-return]

    def start(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.plan.label = nodeid
        self.plan._random.seed(f"{self.seed}:{nodeid}")


def pytest_configure(config: pytest.Config) -> None:
    text = config.getoption(OPTION)
    if not text:
        return
    seed, rate = parse(text)
    # The controller picks the record file; its test processes (xdist) inherit it.
    record = os.environ.get(RECORD_VARIABLE)
    if record is None:
        record = str(Path(tempfile.mkdtemp(prefix="perdure-store-faults-")) / "faults.txt")
        os.environ[RECORD_VARIABLE] = record
    config.stash[_KEY] = SuiteFaults(seed, rate, record)


_KEY = pytest.StashKey[SuiteFaults]()


def pytest_report_header(config: pytest.Config) -> str | None:
    faults = config.stash.get(_KEY, None)
    if faults is None:
        return None
    return (
        f"store faults: seed {faults.seed}, rate {faults.plan.rate} of the workers' store calls "
        f"(re-run: {OPTION}={faults.seed}:{faults.plan.rate}); record {faults.plan.record}"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    faults = item.config.stash.get(_KEY, None)
    if faults is not None:
        faults.start(item.nodeid)


def pytest_sessionfinish(session: pytest.Session) -> None:
    faults = session.config.stash.get(_KEY, None)
    if faults is None:
        return
    faults.remove()
    calls = sum(faults.plan.calls.values())
    with open(faults.record, "a", encoding="utf-8") as f:
        f.write(f"- calls {calls} pid {os.getpid()}\n")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A failure is written down as it happens (next to the record: ``.failures``), so that a
    long run can be triaged while it goes on."""
    record = os.environ.get(RECORD_VARIABLE)
    if record is None or not report.failed or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    with open(record + ".failures", "a", encoding="utf-8") as f:
        f.write(f"=== {report.nodeid} ({report.when})\n{report.longreprtext[-4000:]}\n")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    faults = config.stash.get(_KEY, None)
    if faults is None or hasattr(config, "workerinput"):
        return
    summary = summarize(faults.record)
    terminalreporter.write_sep("=", "store faults")
    terminalreporter.write_line(
        f"seed {faults.seed}, rate {faults.plan.rate}: {summary.total} faults injected "
        f"({dict(summary.kinds)}) in {len(summary.tests)} tests, over {summary.calls} worker "
        f"store calls; record {faults.record}"
    )


class Summary:
    def __init__(self) -> None:
        self.kinds: collections.Counter[str] = collections.Counter()
        self.methods: collections.Counter[str] = collections.Counter()
        self.tests: collections.Counter[str] = collections.Counter()
        self.calls = 0

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


def summarize(record: str) -> Summary:
    out = Summary()
    path = Path(record)
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if parts[:2] == ["-", "calls"]:
            out.calls += int(parts[2])
        elif len(parts) >= 3:
            nodeid, method, kind = " ".join(parts[:-2]), parts[-2], parts[-1]
            out.kinds[kind] += 1
            out.methods[method] += 1
            out.tests[nodeid] += 1
    return out
