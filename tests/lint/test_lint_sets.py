"""Iterating over a set is flagged (its order can change between processes); order-free uses
of a set are not."""

from __future__ import annotations

import pytest
from lintutil import lint_module, lint_run

ITERATED = [
    ("for x in {1, 2}:\n    pass\n", "{1, 2}"),
    ("for x in set(arg):\n    pass\n", "set(arg)"),
    ("for x in frozenset(arg):\n    pass\n", "frozenset(arg)"),
    ("for x in {c for c in arg}:\n    pass\n", "{c for c in arg}"),
    ("s = set(arg)\nfor x in s:\n    pass\n", "s"),
    ("s: set[str] = load()\nfor x in s:\n    pass\n", "s"),
    ("s = set(arg)\nfor x in s | {'a'}:\n    pass\n", "s | {'a'}"),
    ("s = set(arg)\nfor x in s.union(arg):\n    pass\n", "s.union(arg)"),
    ("x = [c.upper() for c in set(arg)]\n", "set(arg)"),
    ("x = {c: 1 for c in set(arg)}\n", "set(arg)"),
    ("x = list(set(arg))\n", "set(arg)"),
    ("x = tuple(set(arg))\n", "set(arg)"),
    ("x = enumerate(set(arg))\n", "set(arg)"),
    ("x = next(iter(set(arg)))\n", "set(arg)"),
    ("x = ', '.join(set(arg))\n", "set(arg)"),
    ("x = [*set(arg)]\n", "set(arg)"),
    ("print(*set(arg))\n", "set(arg)"),
]


@pytest.mark.parametrize(("code", "iterated"), ITERATED)
def test_iterating_over_a_set_is_flagged(code: str, iterated: str) -> None:
    [finding] = lint_run(code)

    assert finding.code == "DET010"
    assert finding.message.startswith(f"iterating over the set {iterated} is not replay-safe: ")
    assert "sorted(...)" in finding.message


ORDER_FREE = [
    "for x in sorted(set(arg)):\n    pass\n",
    "x = len(set(arg))\n",
    "x = 'a' in set(arg)\n",
    "x = sorted(c.upper() for c in set(arg))\n",
    "x = any(c == 'a' for c in set(arg))\n",
    "x = max(set(arg))\n",
    "x = {c.upper() for c in set(arg)}\n",
    "x = set(arg) | {'a'}\n",
    "for x in [1, 2]:\n    pass\n",
    "for x in {'a': 1}:\n    pass\n",  # a dict keeps its order
    "for x in arg:\n    pass\n",
    "s = set(arg)\ns = sorted(s)\nfor x in s:\n    pass\n",  # no longer only a set
]


@pytest.mark.parametrize("code", ORDER_FREE)
def test_order_free_uses_of_a_set_are_not_flagged(code: str) -> None:
    assert lint_run(code) == []


def test_a_comprehension_that_schedules_work_is_flagged_even_when_sorted() -> None:
    # The activities are scheduled in the set's order, so the commands' order changes.
    findings = lint_run(
        """\
        x = sorted([await workflow.execute_activity("a", c) for c in set(arg)])
        y = {workflow.start_activity("a", c) for c in set(arg)}
        """
    )

    assert [f.code for f in findings] == ["DET010", "DET010"]


def test_set_attributes_of_the_workflow_are_followed() -> None:
    findings = lint_module(
        """\
        from perdure import workflow

        @workflow.defn
        class Flow:
            approvers: set[str]

            def __init__(self) -> None:
                self.pending = set()
                self.done: frozenset[str] = frozenset()
                self.approvers = set()
                self.names = ["a"]

            @workflow.run
            async def run(self) -> None:
                for p in self.pending:
                    pass
                for d in self.done:
                    pass
                for a in self.approvers:
                    pass
                for n in self.names:
                    pass
                first = self.pending.pop()
        """
    )

    assert [(f.line, f.code) for f in findings] == [
        (15, "DET010"),
        (17, "DET010"),
        (19, "DET010"),
        (23, "DET010"),
    ]
    assert findings[-1].message == (
        "self.pending.pop() removes an arbitrary element of a set, which is not replay-safe: "
        "take min(...) or sorted(...)[0] and remove it instead"
    )


def test_a_set_annotated_parameter_is_a_set() -> None:
    findings = lint_module(
        """\
        from typing import AbstractSet
        from perdure import workflow

        @workflow.defn
        class Flow:
            @workflow.run
            async def run(self, tags: set[str], more: "AbstractSet[str]") -> list[str]:
                return [*tags, *more]
        """
    )

    assert [f.message.split(" is ")[0] for f in findings] == [
        "iterating over the set tags",
        "iterating over the set more",
    ]
