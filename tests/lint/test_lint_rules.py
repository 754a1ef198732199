"""Each rule flags what is not replay-safe, names it and its alternative, and nothing else."""

from __future__ import annotations

import pytest
from lintutil import codes, lint_run

from perdure._common import nondeterminism
from perdure._errors import RestrictedWorkflowAccessError
from perdure._runtime._guard import DeterminismGuard

FLAGGED = [
    # DET001: the clock
    ("import time", "time.time()", "DET001", "time.time()", "workflow.now()"),
    ("import time", "time.monotonic_ns()", "DET001", "time.monotonic_ns()", "workflow.time()"),
    ("import time", "time.perf_counter()", "DET001", "time.perf_counter()", "workflow.time_ns()"),
    ("import time", "time.localtime()", "DET001", "time.localtime()", "workflow.now()"),
    ("import datetime", "datetime.datetime.now()", "DET001", "datetime.datetime.now()", "now()"),
    ("import datetime", "datetime.datetime.utcnow()", "DET001", "datetime.datetime.utcnow", ""),
    ("import datetime", "datetime.date.today()", "DET001", "datetime.date.today()", "now()"),
    # DET002: sleeping
    ("import time", "time.sleep(1)", "DET002", "time.sleep()", "asyncio.sleep"),
    # DET003: randomness
    ("import random", "random.random()", "DET003", "random.random()", "workflow.random()"),
    ("import random", "random.randint(1, 6)", "DET003", "random.randint()", "workflow.random()"),
    ("import random", "random.shuffle([1, 2])", "DET003", "random.shuffle()", "random()"),
    ("import random", "random.Random()", "DET003", "random.Random()", "workflow.random()"),
    ("import random", "random.SystemRandom()", "DET003", "random.SystemRandom()", "random()"),
    ("import os", "os.urandom(8)", "DET003", "os.urandom()", "workflow.random()"),
    ("import secrets", "secrets.token_hex()", "DET003", "secrets.token_hex()", "random()"),
    # DET004: uuids
    ("import uuid", "uuid.uuid4()", "DET004", "uuid.uuid4()", "workflow.uuid4()"),
    ("import uuid", "uuid.uuid1()", "DET004", "uuid.uuid1()", "workflow.uuid4()"),
    # DET005: files
    ("", "open('data.txt')", "DET005", "open()", "in an activity"),
    ("import os", "os.listdir('.')", "DET005", "os.listdir()", "in an activity"),
    ("import pathlib", "pathlib.Path('x').read_text()", "DET005", "pathlib.Path.read_text()", ""),
    ("import shutil", "shutil.copy('a', 'b')", "DET005", "shutil.copy()", "in an activity"),
    # DET006: the network
    ("import socket", "socket.socket()", "DET006", "socket.socket()", "network calls in an"),
    ("import requests", "requests.get('https://x')", "DET006", "requests.get()", "activity"),
    ("import httpx", "httpx.AsyncClient()", "DET006", "httpx.AsyncClient()", "activity"),
    ("import urllib.request", "urllib.request.urlopen('u')", "DET006", "urlopen()", ""),
    # DET007: threads
    ("import threading", "threading.Thread(target=print)", "DET007", "threading.Thread()", "tasks"),
    ("import concurrent.futures", "concurrent.futures.ThreadPoolExecutor()", "DET007", "", ""),
    ("", "asyncio.to_thread(print)", "DET007", "asyncio.to_thread()", "asyncio tasks"),
    # DET008: processes
    ("import subprocess", "subprocess.run(['ls'])", "DET008", "subprocess.run()", "processes"),
    ("import os", "os.system('ls')", "DET008", "os.system()", "run processes in an activity"),
    ("", "asyncio.create_subprocess_exec('ls')", "DET008", "create_subprocess_exec()", ""),
    # DET009: the environment
    ("import os", "os.environ['HOME']", "DET009", "os.environ", "pass the value as workflow"),
    ("import os", "os.environ.get('HOME')", "DET009", "os.environ", "read it in an activity"),
    ("import os", "os.getenv('HOME')", "DET009", "os.getenv()", "workflow input"),
    # DET010: set order (asyncio's waits keep their tasks in sets)
    ("", "asyncio.wait([])", "DET010", "asyncio.wait()", "workflow.wait(...)"),
    ("", "asyncio.as_completed([])", "DET010", "asyncio.as_completed()", "as_completed(...)"),
]


@pytest.mark.parametrize(("imports", "code", "rule", "name", "advice"), FLAGGED)
def test_flags_the_call_and_names_the_alternative(
    imports: str, code: str, rule: str, name: str, advice: str
) -> None:
    [finding] = lint_run(f"x = {code}\n", imports)

    assert finding.code == rule
    assert (finding.path, finding.line, finding.column) == ("flows.py", 11, 13)
    assert name in finding.message
    assert "is not replay-safe: " in finding.message
    assert advice in finding.message.partition(": ")[2]


REPLAY_SAFE = [
    ("", "workflow.now()"),
    ("", "workflow.time() + workflow.time_ns()"),
    ("", "workflow.random().randint(1, 6)"),
    ("", "workflow.uuid4()"),
    ("", "await asyncio.sleep(5)"),
    ("", "await workflow.sleep(timedelta(days=1))"),
    ("import random", "random.Random(42).random()"),  # seeded
    ("import time", "time.localtime(workflow.time())"),  # of a given time, not of now
    ("import uuid", "uuid.uuid5(uuid.NAMESPACE_URL, arg)"),
    ("import datetime", "datetime.datetime.fromtimestamp(workflow.time())"),
    ("import os", "os.path.join('a', arg)"),
    ("import os", "os.sep"),
    ("import json", "json.dumps({'a': 1})"),
    ("", "self.started"),
    ("", "sorted({'b', 'a'})"),
    ("", "len({1, 2})"),
    ("", "arg.upper()"),
    ("", "workflow.wait([])"),
    ("", "workflow.as_completed([])"),
]


@pytest.mark.parametrize(("imports", "code"), REPLAY_SAFE)
def test_replay_safe_code_is_not_flagged(imports: str, code: str) -> None:
    assert lint_run(f"x = {code}\n", imports) == []


def test_several_findings_come_in_file_order() -> None:
    findings = lint_run(
        """\
        a = uuid.uuid4()
        b, c = time.time(), random.random()
        """,
        "import random, time, uuid",
    )

    assert [(f.line, f.column, f.code) for f in findings] == [
        (11, 13, "DET004"),
        (12, 16, "DET001"),
        (12, 29, "DET003"),
    ]


def test_columns_count_characters_not_bytes() -> None:
    [finding] = lint_run("x = ('héllo', time.time())\n", "import time")

    assert finding.column == 23


def test_str_is_the_line_perdure_lint_prints() -> None:
    [finding] = lint_run("x = time.time()\n", "import time")

    assert str(finding) == (
        "flows.py:11:13: DET001 time.time() is not replay-safe: "
        "use workflow.now(), workflow.time() or workflow.time_ns() instead"
    )


def test_the_linter_and_the_runtime_guard_give_the_same_advice() -> None:
    import time

    [finding] = lint_run("x = time.time()\n", "import time")
    with pytest.raises(RestrictedWorkflowAccessError) as refused, DeterminismGuard():
        time.time()

    assert nondeterminism.CLOCK.advice in finding.message
    assert nondeterminism.CLOCK.advice in str(refused.value)


def test_every_rule_has_its_own_code_but_clock_and_date() -> None:
    by_code: dict[str, list[nondeterminism.Rule]] = {}
    for rule in nondeterminism.RULES:
        by_code.setdefault(rule.code, []).append(rule)

    assert sorted(by_code) == [f"DET{n:03}" for n in range(1, 11)]
    assert by_code["DET001"] == [nondeterminism.CLOCK, nondeterminism.DATE]


def test_codes_helper_lists_codes() -> None:
    assert codes(lint_run("x = os.getenv('A') or os.urandom(1)\n", "import os")) == [
        "DET009",
        "DET003",
    ]
