"""Calls are recognised however the module or function was imported, and not when a local
name only shares a module's name."""

from __future__ import annotations

import pytest
from lintutil import codes, lint_module, lint_run

ALIASED = [
    ("import time as t", "t.time()", "time.time()"),
    ("from time import time", "time()", "time.time()"),
    ("from time import time as now", "now()", "time.time()"),
    ("from datetime import datetime", "datetime.now()", "datetime.datetime.now()"),
    ("from datetime import datetime as dt", "dt.utcnow()", "datetime.datetime.utcnow()"),
    ("from datetime import date", "date.today()", "datetime.date.today()"),
    ("import datetime as dt", "dt.datetime.now()", "datetime.datetime.now()"),
    ("from os import environ", "environ['HOME']", "os.environ"),
    ("from os import getenv as env", "env('HOME')", "os.getenv()"),
    ("import os.path", "os.getenv('HOME')", "os.getenv()"),
    ("from random import randint", "randint(1, 6)", "random.randint()"),
    ("from uuid import uuid4", "uuid4()", "uuid.uuid4()"),
    ("import urllib.request as r", "r.urlopen('u')", "urllib.request.urlopen()"),
    ("from concurrent import futures", "futures.ThreadPoolExecutor()", "ThreadPoolExecutor()"),
    ("from threading import Thread", "Thread(target=print).start()", "threading.Thread()"),
]


@pytest.mark.parametrize(("imports", "code", "name"), ALIASED)
def test_import_aliases_are_resolved(imports: str, code: str, name: str) -> None:
    findings = lint_run(f"x = {code}\n", imports)

    assert findings, f"{code} after {imports!r} was not flagged"
    assert name in findings[0].message


def test_an_import_inside_the_method_counts() -> None:
    assert codes(lint_run("import time\nx = time.time()\n")) == ["DET001"]


def test_instances_made_from_forbidden_classes_are_followed() -> None:
    findings = lint_run(
        """\
        thread = threading.Thread(target=print)
        thread.start()
        with concurrent.futures.ThreadPoolExecutor() as pool:
            pool.submit(print)
        """,
        "import concurrent.futures\nimport threading",
    )

    assert [f.message.partition(" ")[0] for f in findings] == [
        "threading.Thread()",
        "threading.Thread.start()",
        "concurrent.futures.ThreadPoolExecutor()",
        "concurrent.futures.ThreadPoolExecutor.submit()",
    ]


def test_an_annotated_parameter_is_an_instance() -> None:
    findings = lint_module(
        """
        from pathlib import Path
        from perdure import workflow

        @workflow.defn
        class Flow:
            @workflow.run
            async def run(self, path: Path) -> str:
                return path.read_text()
        """
    )

    assert [f.message.partition(" ")[0] for f in findings] == ["pathlib.Path.read_text()"]


SHADOWED = [
    ("import time", "time = workflow.now()\nx = time.time()\n"),  # a local variable
    ("import random", "for random in range(3):\n    random.bit_length()\n"),  # a loop variable
    ("import os", "def environ_of(os):\n    return os.environ\n"),  # a parameter
    ("from time import time", "x = [time() for time in (lambda: 1,)]\n"),  # comprehension
    ("", "open = print\nopen('not a file')\n"),  # a builtin's name
]


@pytest.mark.parametrize(("imports", "code"), SHADOWED)
def test_a_local_name_shadows_the_module_it_is_named_after(imports: str, code: str) -> None:
    assert lint_run(code, imports) == []


def test_a_parameter_shadows_a_module() -> None:
    findings = lint_module(
        """
        import random
        from perdure import workflow

        @workflow.defn
        class Flow:
            @workflow.run
            async def run(self, random: list[int]) -> int:
                return random.count(1)
        """
    )

    assert findings == []


def test_a_relative_import_is_not_guessed_at() -> None:
    assert lint_run("x = time()\n", "from .clock import time") == []


DECORATORS = [
    "from perdure import workflow\n\n@workflow.defn",
    "from perdure import workflow\n\n@workflow.defn(name='Other')",
    "from perdure import workflow as wf\n\n@wf.defn",
    "from perdure.workflow import defn\n\n@defn",
    "from perdure.workflow import defn as workflow_defn\n\n@workflow_defn(name='X')",
    "import perdure\n\n@perdure.workflow.defn",
    "import perdure.workflow\n\n@perdure.workflow.defn",
]


@pytest.mark.parametrize("decorated", DECORATORS)
def test_workflow_classes_are_found_however_defn_was_imported(decorated: str) -> None:
    source = f"import time\n{decorated}\nclass Flow:\n    def run(self) -> float:\n"
    source += "        return time.time()\n"

    assert codes(lint_module(source)) == ["DET001"]


def test_a_class_decorated_by_another_defn_is_not_a_workflow() -> None:
    source = (
        "import time\nfrom temporalio import workflow\n\n@workflow.defn\nclass Flow:\n"
        "    def run(self) -> float:\n        return time.time()\n"
    )

    assert lint_module(source) == []
