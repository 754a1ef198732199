"""The determinism lint a ``Worker`` runs on its workflow classes when it is built."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal, TypeAlias

from perdure.lint import DeterminismLintError, Finding, lint_workflow

DeterminismLint: TypeAlias = Literal["warn", "error", "off"]

log = logging.getLogger("perdure.worker")


def check_determinism(workflows: Sequence[type], mode: DeterminismLint) -> None:
    """Lint ``workflows``: log a warning per class with findings, or raise if ``mode`` is
    ``"error"``. Each class is linted once per process; a class whose source cannot be read
    is skipped."""
    if mode not in ("warn", "error", "off"):
        raise ValueError(f'determinism_lint must be "warn", "error" or "off", not {mode!r}')
    if mode == "off":
        return
    found: list[tuple[type, list[Finding]]] = [
        (cls, findings) for cls in workflows if (findings := lint_workflow(cls))
    ]
    if mode == "error" and found:
        raise DeterminismLintError([finding for _, findings in found for finding in findings])
    for cls, findings in found:
        log.warning(
            "Workflow %s has code that is not replay-safe (it will fail its workflow task, or "
            "behave differently on replay):\n%s\n"
            '(Worker(determinism_lint="off") silences this, "error" refuses to start)',
            cls.__qualname__,
            "\n".join(f"  {finding}" for finding in findings),
        )
