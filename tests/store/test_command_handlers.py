"""Every command the runtime can return has its handler in the store's one table: a new
command kind without one would fail every workflow task that uses it."""

from __future__ import annotations

import typing

from perdure._common.commands import Command
from perdure._store._workflow_tasks import _HANDLERS


def test_each_command_kind_has_one_handler() -> None:
    kinds = set(typing.get_args(Command))
    assert kinds, "the Command union lost its members"
    assert set(_HANDLERS) == kinds
