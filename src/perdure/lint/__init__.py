"""Checking workflow code for determinism before it runs.

Workflow code is replayed from history after a crash, so it must make the same decisions
every time it runs. The linter reads the source of ``@workflow.defn`` classes (their methods,
and the functions of their module that they call) and reports calls that are not replay-safe
(the clock, ``random``, ``uuid4``, file and network I/O, threads, processes, environment
variables) and iteration over sets, each with the replay-safe alternative. ``Worker`` runs it
on the workflows it is given; ``perdure lint PATH...`` runs it from the command line.

A line that is safe despite what the linter thinks ends with
``# perdure: allow-nondeterminism`` (or ``# perdure: allow-nondeterminism[DET009]`` to allow
only the codes named).

Example::

    from perdure.lint import lint_paths

    for finding in lint_paths(["src/myapp"]):
        print(finding)  # src/myapp/flows.py:12:16: DET001 time.time() is not replay-safe: ...
"""

from perdure.lint._finding import DeterminismLintError, Finding
from perdure.lint._module import lint_paths, lint_source, lint_workflow

__all__ = ["DeterminismLintError", "Finding", "lint_paths", "lint_source", "lint_workflow"]
