"""``perdure lint``: check workflow code for determinism without running it."""

from __future__ import annotations

from pathlib import Path

import click

from perdure.lint._module import lint_file, python_files


@click.command("lint")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.pass_context
def lint_command(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Report code in workflow classes that is not replay-safe, in the files PATHS and the
    .py files under the directories PATHS, as `path:line:column: CODE message` lines.

    Exits with 1 if it found something, 2 if a file could not be read or parsed, 0 otherwise.
    Mark a line that is safe with `# perdure: allow-nondeterminism`.
    """
    found = 0
    unreadable = 0
    for file in python_files(paths):
        try:
            findings = lint_file(file)
        except SyntaxError as exc:
            unreadable += 1
            where = f"{file}:{exc.lineno}" if exc.lineno else str(file)
            click.echo(f"perdure lint: {where}: cannot parse: {exc.msg}", err=True)
            continue
        except (OSError, UnicodeDecodeError) as exc:
            unreadable += 1
            click.echo(f"perdure lint: {file}: cannot read: {exc}", err=True)
            continue
        for finding in findings:
            click.echo(str(finding))
        found += len(findings)
    if found:
        click.echo(f"Found {found} problem{'s' if found != 1 else ''}.", err=True)
    ctx.exit(2 if unreadable else 1 if found else 0)
