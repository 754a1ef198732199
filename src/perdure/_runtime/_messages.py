"""How a running workflow takes its messages: a signal goes to its handler (or waits for
one to be registered), an update is validated, accepted and run as a task of its own, and a
query runs its handler against the current state, which it must not change.
``WorkflowInstance`` inherits this."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from perdure._common.commands import AcceptUpdate, Command, CompleteUpdate, RejectUpdate
from perdure._common.payload import Payload
from perdure._errors import ApplicationError, FailureError
from perdure._runtime._handlers import Queries, arg_types, dynamic_args
from perdure._runtime._intercept import run_sync
from perdure._runtime._loop import Running, WorkflowEventLoop
from perdure._runtime._outcome import to_payload
from perdure.converter import PayloadConverter
from perdure.converter._failure import FailureConverter
from perdure.workflow._definition import WorkflowDefinition
from perdure.workflow._info import Info
from perdure.workflow._interceptor import (
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    WorkflowInboundInterceptor,
)

log = logging.getLogger("perdure.runtime")


class MessageHandling:
    """Signals, updates and queries, delivered to the workflow's handlers."""

    definition: WorkflowDefinition
    loop: WorkflowEventLoop
    _info: Info
    _payloads: PayloadConverter
    _failures: FailureConverter
    _failure_types: tuple[type[BaseException], ...]
    _inbound: WorkflowInboundInterceptor
    _handlers: set[asyncio.Task[Any]]
    _signal_handlers: dict[str, Callable[..., Any]]
    _signal_types: dict[str, list[Any]]
    _dynamic_signal: Callable[..., Any] | None
    _buffered_signals: dict[str, list[tuple[list[Payload], Any]]]
    _queries: Queries
    _query_fn: Callable[..., Any] | None
    _commands: list[Command]
    _active: bool
    _replaying: bool
    # The instance's own (WorkflowInstance).
    _add_command: Callable[[Command], None]
    _on_error: Callable[[BaseException], None]
    _running: Callable[[], Running]

    async def _run_signal(self, name: str, args: list[Any], header: Any) -> None:
        try:
            await self._inbound.handle_signal(HandleSignalInput(name, args, dict(header or {})))
        except BaseException as exc:
            self._on_error(exc)

    def _start_update(
        self, update_id: str, name: str, payloads: list[Payload], header: Any, *, validate: bool
    ) -> bool:
        handler = self.definition.updates.get(name) or self.definition.dynamic_update
        if handler is None:
            known = ", ".join(sorted(self.definition.updates)) or "none"
            error = ApplicationError(
                f"Workflow {self._info.workflow_type} has no update {name!r} (known updates: "
                f"{known})",
                type="UnknownUpdate",
            )
            self._add_command(
                RejectUpdate(update_id, self._failures.to_failure(error, self._payloads))
            )
            return False
        try:
            if handler.name:
                args = self._payloads.from_payloads(payloads, handler.arg_types)
            else:
                args = dynamic_args(name, payloads, self._payloads)
            call = HandleUpdateInput(update_id, name, args, dict(header or {}))
            if validate:
                with self._running():
                    self._inbound.handle_update_validator(call)
        except Exception as exc:
            self._add_command(
                RejectUpdate(update_id, self._failures.to_failure(exc, self._payloads))
            )
            return False
        if validate:
            self._add_command(AcceptUpdate(update_id, name, payloads, header or None))
        task = self.loop.create_task(self._run_update(update_id, call), name=f"update:{name}")
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        return True

    async def _run_update(self, update_id: str, call: HandleUpdateInput) -> None:
        try:
            result = await self._inbound.handle_update_handler(call)
            what = f"the result of update {call.update!r}"
            payload = to_payload(self._payloads, result, what)
        except BaseException as exc:
            if isinstance(exc, FailureError | asyncio.CancelledError) or (
                self._failure_types and isinstance(exc, self._failure_types)
            ):
                failure = self._failures.to_failure(exc, self._payloads)
                self._add_command(CompleteUpdate(update_id, None, failure))
            else:
                self._on_error(exc)
            return
        self._add_command(CompleteUpdate(update_id, payload, None))

    def _signal(self, name: str, payloads: list[Payload], header: Any = None) -> None:
        handler = self._signal_handlers.get(name)
        if handler is not None:
            args = self._payloads.from_payloads(payloads, self._signal_types.get(name))
        elif self._dynamic_signal is not None:
            handler, args = self._dynamic_signal, dynamic_args(name, payloads, self._payloads)
        else:
            self._buffered_signals.setdefault(name, []).append((payloads, header))
            if not self._replaying:
                log.warning(
                    "Workflow %s (%s) has no handler for signal %r; it is kept until one is "
                    "registered",
                    self._info.workflow_id,
                    self.definition.name,
                    name,
                )
            return
        task = self.loop.create_task(self._run_signal(name, args, header), name=f"signal:{name}")
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    def set_signal_handler(self, name: str, handler: Callable[..., Any] | None) -> None:
        if handler is None:
            self._signal_handlers.pop(name, None)
            return
        self._signal_handlers[name] = handler
        self._signal_types[name] = arg_types(handler)
        for payloads, header in self._buffered_signals.pop(name, []):
            self._signal(name, payloads, header)

    def query(
        self, name: str, payloads: list[Payload], header: dict[str, Payload] | None = None
    ) -> Payload:
        """Run a query handler against the current state; it must not issue commands.

        Raises:
            KeyError: no handler takes the query.
        """
        call = self._queries.find(name, payloads)
        if not call.user_code:
            return self._payloads.to_payload(call.fn(*call.args))
        before = len(self._commands)
        self._active = True
        self._query_fn = call.fn
        try:
            with self._running():
                call_input = HandleQueryInput("", name, call.args, dict(header or {}))
                handled = self._inbound.handle_query(call_input)
                result = run_sync(handled, f"Query {name!r}")
        finally:
            self._active = False
            self._query_fn = None
        if len(self._commands) != before or asyncio.iscoroutine(result):
            del self._commands[before:]
            raise TypeError(f"Query {name!r} must only read state: it issued commands")
        return self._payloads.to_payload(result)
