"""What the linter reports: ``Finding``, and the error a worker raises on findings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perdure._errors import PerdureError


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    """Workflow code that is not replay-safe, at one place in a file.

    ``str(finding)`` is the line ``perdure lint`` prints, ``path:line:column: CODE message``.

    Attributes:
        path: the file, as it was given (or found in a directory given).
        line: 1-based line number.
        column: 1-based column, in characters.
        code: the rule, ``DET001`` to ``DET010`` (see the guide's table).
        message: what the code does and the replay-safe alternative, e.g.
            ``time.time() is not replay-safe: use workflow.now(), ... instead``.
    """

    path: str
    line: int
    column: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.code} {self.message}"


class DeterminismLintError(PerdureError):
    """Workflow classes given to a ``Worker(determinism_lint="error")`` are not replay-safe.

    Attributes:
        findings: what the linter found, in file order.
    """

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        lines = "\n".join(f"  {finding}" for finding in self.findings)
        super().__init__(
            "Workflow code is not replay-safe (it is replayed from history after a crash, so it "
            f"must make the same decisions every time):\n{lines}\nUse the alternatives named, "
            "or mark a line that is safe with `# perdure: allow-nondeterminism`; "
            'determinism_lint="warn" only logs these.'
        )
