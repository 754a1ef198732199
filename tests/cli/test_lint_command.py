"""``perdure lint PATH...``: ruff-style lines, exit 1 on findings, 0 when clean, 2 when a path
is missing or a file does not parse."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from perdure.cli import main

PERDURE = str(Path(sys.executable).parent / "perdure")

FLOWS = textwrap.dedent(
    """\
    import os
    import time
    from perdure import workflow


    @workflow.defn
    class Flow:
        @workflow.run
        async def run(self) -> str:
            started = time.time()
            return os.environ["HOME"]
    """
)

CLEAN = textwrap.dedent(
    """\
    from perdure import workflow


    @workflow.defn
    class Flow:
        @workflow.run
        async def run(self) -> str:
            return workflow.now().isoformat()
    """
)


def test_findings_are_printed_one_a_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(FLOWS)

    result = subprocess.run(
        [PERDURE, "lint", "flows.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "flows.py:10:19: DET001 time.time() is not replay-safe: "
        "use workflow.now(), workflow.time() or workflow.time_ns() instead",
        "flows.py:11:16: DET009 os.environ is not replay-safe: "
        "pass the value as workflow input, or read it in an activity",
    ]
    assert result.stderr == "Found 2 problems.\n"


def test_clean_code_exits_0_quietly(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(CLEAN)

    result = CliRunner().invoke(main, ["lint", str(tmp_path)])

    assert (result.exit_code, result.output) == (0, "")


def test_directories_are_searched(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "clean.py").write_text(CLEAN)
    (tmp_path / "pkg" / "flows.py").write_text(FLOWS)

    result = CliRunner().invoke(main, ["lint", str(tmp_path / "pkg")])

    assert result.exit_code == 1
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        str(tmp_path / "pkg" / "flows.py")
    ] * 2


def test_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["lint", str(tmp_path / "missing.py")])

    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_no_path_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["lint"])

    assert result.exit_code == 2
    assert "Missing argument 'PATHS...'" in result.output


def test_a_file_that_does_not_parse_is_named_and_the_rest_still_linted(tmp_path: Path) -> None:
    (tmp_path / "a_broken.py").write_text("from perdure import workflow\n\ndef (:\n")
    (tmp_path / "flows.py").write_text(FLOWS)

    result = CliRunner().invoke(main, ["lint", str(tmp_path)])

    assert result.exit_code == 2
    assert f"perdure lint: {tmp_path / 'a_broken.py'}:3: cannot parse: " in result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_perdure_worker_can_refuse_to_start_on_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "perdure_lint_cli_flows.py").write_text(FLOWS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    monkeypatch.delitem(sys.modules, "perdure_lint_cli_flows", raising=False)
    root = logging.getLogger()  # the command configures logging: undo it afterwards
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)

    result = CliRunner().invoke(
        main,
        [
            "worker",
            "--db",
            "sqlite://:memory:",
            "-q",
            "q",
            "--determinism-lint",
            "error",
            "perdure_lint_cli_flows",
        ],
    )

    assert result.exit_code == 1
    assert "Workflow code is not replay-safe" in result.output
    assert "perdure_lint_cli_flows.py:10:19: DET001 time.time()" in result.output
