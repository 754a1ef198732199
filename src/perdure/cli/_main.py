from __future__ import annotations

import click

from perdure.cli._lint import lint_command
from perdure.cli._worker import worker_command


@click.group()
@click.version_option(package_name="perdure")
def main() -> None:
    """perdure: durable workflows with nothing to operate."""


main.add_command(worker_command)
main.add_command(lint_command)
