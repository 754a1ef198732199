"""The code in the docs runs: every ``python`` block of ``docs/guide.md``,
``docs/testing.md``, ``docs/patterns.md`` and ``docs/schedules.md``, and the README's blocks
that run themselves (those that call ``asyncio.run(``), each in a fresh interpreter.

A block whose first line is ``# doc-test: pytest`` is a test file: it runs under pytest (with
perdure's plugin, as a user's would). A block whose first line is a ``# doc-test: skip``
comment is a fragment by design (or, in the README, a program that needs real time) and is
reported as skipped with that comment.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guide.md"
TESTING = ROOT / "docs" / "testing.md"
PATTERNS = ROOT / "docs" / "patterns.md"
SCHEDULES = ROOT / "docs" / "schedules.md"
README = ROOT / "README.md"

FENCE = re.compile(r"^```python[ \t]*\n(?P<code>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
SKIP_MARKER = "# doc-test: skip"
PYTEST_MARKER = "# doc-test: pytest"
RUN_TIMEOUT = 30.0  # real seconds per block: a bound on a hang, not an expected duration


@dataclass(frozen=True)
class Block:
    """One fenced ``python`` block of a Markdown file."""

    path: Path
    line: int  # the 1-based line of the block's first code line in the file
    code: str

    @property
    def first_line(self) -> str:
        return next((s for s in self.code.splitlines() if s.strip()), "").strip()

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"

    @property
    def skip_reason(self) -> str | None:
        first = self.first_line
        return first.lstrip("# ").strip() if first.startswith(SKIP_MARKER) else None


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    return [
        Block(path, text.count("\n", 0, m.start("code")) + 1, m.group("code"))
        for m in FENCE.finditer(text)
    ]


def doc_blocks() -> list[Block]:
    readme = [b for b in blocks(README) if "asyncio.run(" in b.code]
    return blocks(GUIDE) + blocks(TESTING) + blocks(PATTERNS) + blocks(SCHEDULES) + readme


def params() -> list[object]:
    return [
        pytest.param(
            b,
            id=b.where,
            marks=[pytest.mark.skip(reason=f"{b.where}: {b.skip_reason}")] if b.skip_reason else [],
        )
        for b in doc_blocks()
    ]


def test_the_guide_has_examples() -> None:
    guide = blocks(GUIDE)
    assert len(guide) >= 20, f"expected the guide's examples, found {len(guide)} blocks"
    skipped = [b.where for b in guide if b.skip_reason]
    # Fragments are the exception: the guide's examples run as they stand.
    assert len(skipped) <= 3, f"too many guide blocks opt out of running: {skipped}"


@pytest.mark.parametrize("block", params())
def test_block_runs(block: Block, tmp_path: Path) -> None:
    # Blank lines first, so a traceback's line numbers are the Markdown file's.
    as_test = block.first_line == PYTEST_MARKER
    script = tmp_path / f"{'test_' if as_test else ''}{block.path.stem}_L{block.line}.py"
    script.write_text("\n" * (block.line - 1) + block.code, encoding="utf-8")
    pytest_args = [
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    ]
    command = (
        [sys.executable, "-m", "pytest", *pytest_args, "-W", "error", str(script)]
        if as_test
        else [sys.executable, "-W", "error", str(script)]
    )
    try:
        result = subprocess.run(
            command,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr or ""
        if isinstance(stderr, bytes):
            stderr = stderr.decode(errors="replace")
        pytest.fail(
            f"{block.where} ({block.first_line}) ran past {RUN_TIMEOUT:g} s\n"
            f"--- stderr ---\n{stderr}"
        )
    assert result.returncode == 0, (
        f"{block.where} ({block.first_line}) exited with {result.returncode}\n"
        f"--- stderr ---\n{result.stderr}\n--- stdout ---\n{result.stdout}"
    )
