"""``perdure workflow ...``: Temporal CLI's verbs on the workflows of a database."""

from __future__ import annotations

import click

from perdure.cli._workflow_act import (
    cancel_command,
    delete_command,
    query_command,
    reset_command,
    signal_command,
    stack_command,
    terminate_command,
    update_group,
)
from perdure.cli._workflow_run import execute_command, result_command, start_command
from perdure.cli._workflow_view import (
    count_command,
    describe_command,
    list_command,
    show_command,
)


@click.group("workflow")
def workflow_group() -> None:
    """Start, find, inspect and act on workflows (on --db or $PERDURE_DB)."""


for command in (
    start_command,
    execute_command,
    result_command,
    describe_command,
    show_command,
    list_command,
    count_command,
    signal_command,
    query_command,
    update_group,
    stack_command,
    cancel_command,
    terminate_command,
    reset_command,
    delete_command,
):
    workflow_group.add_command(command)
