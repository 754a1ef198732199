"""The project's own workflows pass the linter, and ``lint_paths`` finds files as documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from perdure.lint import lint_paths, lint_source

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```python[ \t]*\n(?P<code>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def test_the_examples_are_replay_safe() -> None:
    assert [str(f) for f in lint_paths([ROOT / "examples"])] == []


@pytest.mark.parametrize("doc", ["docs/guide.md", "README.md"])
def test_the_documentation_examples_are_replay_safe(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    findings = []
    for block in FENCE.finditer(text):
        if 'determinism_lint="error"' in block.group("code"):
            continue  # shows the linter refusing a workflow, on purpose
        first_line = text.count("\n", 0, block.start("code"))
        code = "\n" * first_line + block.group("code")
        try:
            findings += lint_source(code, doc)
        except SyntaxError:
            continue  # a fragment, not a program
    assert [str(f) for f in findings] == []


BAD = (
    "import time\nfrom perdure import workflow\n\n"
    "@workflow.defn\nclass W:\n    def run(self):\n        return time.time()\n"
)


def test_directories_are_searched_for_python_files(tmp_path: Path) -> None:
    (tmp_path / "app" / "flows").mkdir(parents=True)
    (tmp_path / "app" / "flows" / "b.py").write_text(BAD)
    (tmp_path / "app" / "a.py").write_text(BAD)
    (tmp_path / "app" / "notes.txt").write_text(BAD)
    for skipped in (".venv", "__pycache__", "venv", "build"):
        (tmp_path / "app" / skipped).mkdir()
        (tmp_path / "app" / skipped / "c.py").write_text(BAD)

    findings = lint_paths([tmp_path / "app"])

    assert [Path(f.path).relative_to(tmp_path).as_posix() for f in findings] == [
        "app/a.py",
        "app/flows/b.py",
    ]


def test_a_file_named_explicitly_is_linted_whatever_its_name(tmp_path: Path) -> None:
    (tmp_path / "flows.txt").write_text(BAD)

    assert len(lint_paths([tmp_path / "flows.txt"])) == 1


def test_files_that_never_mention_perdure_are_not_parsed(tmp_path: Path) -> None:
    (tmp_path / "legacy.py").write_text("print 'python 2'\n")

    assert lint_paths([tmp_path]) == []


def test_a_missing_path_or_a_file_that_does_not_parse_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        lint_paths([tmp_path / "missing.py"])
    (tmp_path / "broken.py").write_text("from perdure import workflow\ndef (:\n")
    with pytest.raises(SyntaxError) as raised:
        lint_paths([tmp_path])
    assert raised.value.lineno == 2
