"""What is workflow code: every method of a workflow class and the module functions it
calls; not activities, not other classes, not code that runs at import."""

from __future__ import annotations

from lintutil import lint_module

from perdure.lint import Finding


def lines(findings: list[Finding]) -> list[int]:
    return [f.line for f in findings]


def test_every_method_of_a_workflow_class_is_workflow_code() -> None:
    findings = lint_module(
        """\
        import time
        from perdure import workflow

        @workflow.defn
        class Flow:
            @workflow.init
            def __init__(self, n: int) -> None:
                self.t = time.time()

            @workflow.run
            async def run(self, n: int) -> None:
                self._helper()

            @workflow.signal
            def poke(self) -> None:
                time.time()

            @workflow.query
            def ask(self) -> float:
                return time.time()

            @workflow.update
            async def change(self, n: int) -> None:
                time.time()

            @change.validator
            def check(self, n: int) -> None:
                time.time()

            def _helper(self) -> None:
                time.time()

            @staticmethod
            def tool() -> float:
                return time.time()
        """
    )

    assert lines(findings) == [8, 16, 20, 24, 28, 31, 35]


def test_nested_functions_and_lambdas_in_workflow_code_are_workflow_code() -> None:
    findings = lint_module(
        """\
        import random
        from perdure import workflow

        @workflow.defn
        class Flow:
            @workflow.run
            async def run(self) -> None:
                def pick() -> int:
                    return random.randint(1, 6)
                roll = lambda: random.random()
        """
    )

    assert lines(findings) == [9, 10]


def test_module_functions_called_by_workflow_code_are_workflow_code() -> None:
    findings = lint_module(
        """\
        import time
        import uuid
        from perdure import workflow

        def stamp() -> float:
            return time.time()

        def label() -> str:
            return f"{stamp()}-{uuid.uuid4()}"

        def unused() -> float:
            return time.time()

        @workflow.defn
        class Flow:
            @workflow.run
            async def run(self) -> str:
                return label()
        """
    )

    assert [(f.line, f.code) for f in findings] == [(6, "DET001"), (9, "DET004")]


def test_activities_are_not_workflow_code_even_when_called_by_name() -> None:
    findings = lint_module(
        """\
        import time
        from datetime import timedelta
        from perdure import activity, workflow

        @activity.defn
        async def stamp() -> float:
            return time.time()

        @workflow.defn
        class Flow:
            @workflow.run
            async def run(self) -> float:
                return await workflow.execute_activity(
                    stamp, start_to_close_timeout=timedelta(seconds=5)
                )

            @activity.defn
            async def method_activity(self) -> float:
                return time.time()

        def not_a_workflow() -> float:
            stamp()
            return time.time()

        class NotAWorkflow:
            def run(self) -> float:
                return time.time()
        """
    )

    assert findings == []


def test_code_that_runs_at_import_or_class_creation_is_not_workflow_code() -> None:
    findings = lint_module(
        """\
        import os
        import time
        from perdure import workflow

        STARTED = time.time()
        DEBUG = os.environ.get("DEBUG")

        @workflow.defn
        class Flow:
            limit = int(os.getenv("LIMIT", "3"))

            @workflow.run
            async def run(self) -> float:
                return STARTED
        """
    )

    assert findings == []


def test_workflow_classes_defined_in_functions_and_classes_are_linted() -> None:
    findings = lint_module(
        """\
        import time
        from perdure import workflow

        def make():
            @workflow.defn
            class Inner:
                @workflow.run
                async def run(self) -> float:
                    return time.time()
            return Inner

        class Namespace:
            @workflow.defn
            class Nested:
                @workflow.run
                async def run(self) -> float:
                    return time.time()
        """
    )

    assert lines(findings) == [9, 17]


def test_a_helper_shared_by_two_workflows_is_reported_once() -> None:
    findings = lint_module(
        """\
        import time
        from perdure import workflow

        def stamp() -> float:
            return time.time()

        @workflow.defn
        class A:
            @workflow.run
            async def run(self) -> float:
                return stamp()

        @workflow.defn
        class B:
            @workflow.run
            async def run(self) -> float:
                return stamp()
        """
    )

    assert lines(findings) == [5]
