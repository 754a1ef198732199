from __future__ import annotations

import click

from perdure.cli._activity import activity_group
from perdure.cli._history import history_group
from perdure.cli._lint import lint_command
from perdure.cli._migrate import migrate_command
from perdure.cli._namespace import namespace_group
from perdure.cli._replay import replay_command
from perdure.cli._schedule import schedule_group
from perdure.cli._server import server_command
from perdure.cli._worker import worker_command
from perdure.cli._workflow import workflow_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="perdure")
def main() -> None:
    """perdure: durable workflows with nothing to operate.

    Shell completion (bash, zsh or fish): eval "$(_PERDURE_COMPLETE=bash_source perdure)".
    """


for command in (
    workflow_group,
    schedule_group,
    history_group,
    namespace_group,
    migrate_command,
    activity_group,
    replay_command,
    worker_command,
    server_command,
    lint_command,
):
    main.add_command(command)
