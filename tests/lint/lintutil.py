"""Helpers for the linter's tests: lint a snippet as the body of a workflow's run method."""

from __future__ import annotations

import textwrap

from perdure.lint import Finding, lint_source

HEADER = """\
import asyncio
from datetime import timedelta

from perdure import activity, workflow
"""


def lint_module(source: str) -> list[Finding]:
    return lint_source(textwrap.dedent(source), "flows.py")


def lint_run(body: str, imports: str = "") -> list[Finding]:
    """Lint ``body`` as the run method of a workflow, in a module that also has ``imports``."""
    source = (
        HEADER
        + textwrap.dedent(imports)
        + "\n\n@workflow.defn\nclass Flow:\n    @workflow.run\n"
        + "    async def run(self, arg: str) -> None:\n"
        + textwrap.indent(textwrap.dedent(body), " " * 8)
    )
    return lint_source(source, "flows.py")


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]
