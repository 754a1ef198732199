"""``# perdure: allow-nondeterminism`` silences the linter on its line, for every rule or for
the codes it names."""

from __future__ import annotations

from lintutil import codes, lint_run


def test_the_comment_silences_its_line_only() -> None:
    findings = lint_run(
        """\
        a = os.getenv("A")  # perdure: allow-nondeterminism
        b = os.getenv("B")
        """,
        "import os",
    )

    assert [(f.line, f.code) for f in findings] == [(12, "DET009")]


def test_the_comment_may_name_the_codes_it_allows() -> None:
    findings = lint_run(
        """\
        a = (os.getenv("A"), os.urandom(1))  # perdure: allow-nondeterminism[DET009]
        b = (os.getenv("B"), os.urandom(1))  # perdure:allow-nondeterminism[DET003, DET009]
        """,
        "import os",
    )

    assert [(f.line, f.code) for f in findings] == [(11, "DET003")]


def test_the_comment_may_follow_other_comments() -> None:
    code = 'a = os.getenv("A")  # noqa: E501  # perdure: allow-nondeterminism\n'

    assert lint_run(code, "import os") == []


def test_the_text_in_a_string_is_not_a_comment() -> None:
    code = 'a = (os.getenv("A"), "# perdure: allow-nondeterminism")\n'

    assert codes(lint_run(code, "import os")) == ["DET009"]


def test_a_comment_on_another_line_of_a_long_call_does_not_count() -> None:
    code = 'a = os.getenv(\n    "A",  # perdure: allow-nondeterminism\n)\n'

    assert codes(lint_run(code, "import os")) == ["DET009"]
