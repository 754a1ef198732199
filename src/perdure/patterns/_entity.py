"""Entity workflows: one long-lived workflow per thing (a cart, an account, an inventory item)
whose state signals and updates change one at a time, queries read, continue-as-new carries
over, and an idle period may end: :class:`EntityWorkflow`."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Generic, Optional, TypeVar, get_args, get_origin

from perdure import workflow
from perdure._errors import ApplicationError
from perdure.workflow._definition import (
    _INIT_ATTR,
    _SIGNAL_ATTR,
    _UPDATE_ATTR,
    _VALIDATOR_ATTR,
)

StateT = TypeVar("StateT")

_STATE_TYPE_ATTR = "__perdure_entity_state_type__"
_ONE_AT_A_TIME_ATTR = "__perdure_entity_one_at_a_time__"
_INBOX_ATTR = "_perdure_entity_inbox"

# Timers fire at a float time, and workflow.now() read then may be a microsecond short of
# the datetime the timer was set for; waiting this much longer makes a due deadline due.
_TIMER_SLACK = timedelta(milliseconds=1)


class _Inbox:
    """The entity's bookkeeping: the lock that puts messages in line, and what happened."""

    __slots__ = ("ended", "events", "idle", "lock", "pending")

    def __init__(self) -> None:
        # asyncio.Lock wakes its waiters first come, first served, and handlers start in
        # the order their messages arrived: so they take the lock in that order too.
        self.lock = asyncio.Lock()
        self.pending = 0  # messages arrived whose handlers have not returned
        self.events = 0  # bumped when a message arrives and when it is done: wakes run()
        self.ended = False
        self.idle = False


class EntityWorkflow(Generic[StateT]):
    """Base class of an entity workflow: one workflow per entity (id ``cart-<customer>``,
    ``account-<number>``), living as long as the entity does.

    A subclass names its state type, ``EntityWorkflow[MyState]``, and declares signal, update
    and query handlers as usual; it writes no ``run`` method (this class provides it) and is
    decorated with ``@workflow.defn``. The workflow's argument is the initial state (or
    ``None`` for ``initial_state()``) and its result is the final state. Then:

    - **One message at a time, in arrival order.** Every signal and update handler, async
      ones included, runs only after the handlers of the messages that arrived before it
      have returned, so an update awaiting an activity never interleaves with another. A
      validator still runs when its update arrives, so it sees the state before the
      messages still in line are applied: a handler re-checks what must hold.
    - **Continue-as-new with the state** when :meth:`should_continue_as_new` says so (by
      default: when perdure suggests it, or the history reaches ``max_history_length``
      events), once every running handler has finished. ``self.state`` is the next run's
      argument, so it goes through the payload converter: a dataclass works.
    - **Ending.** A handler calls :meth:`end` (a checkout, a closing); or ``idle_timeout``
      passes with no message, and :meth:`on_idle` runs. Once ended, updates are refused
      (``ApplicationError`` of type ``EntityEnded``) and signals dropped; the workflow
      completes with ``self.state`` when the handlers still running have finished.
    - **Deadlines.** :meth:`next_deadline` and :meth:`on_deadline` run code at a time the
      state sets (a reservation that expires), in line with the messages.

    ``idle_timeout`` and ``max_history_length`` are class attributes; an ``__init__`` may set
    them per entity from its state. An ``__init__`` of a subclass is decorated with
    ``@workflow.init``, takes the state and calls ``super().__init__(state)``.

    Example::

        @dataclass
        class Counter:
            value: int = 0

        @workflow.defn
        class CounterEntity(EntityWorkflow[Counter]):
            idle_timeout = timedelta(days=30)

            @workflow.update
            def add(self, amount: int) -> int:
                self.state.value += amount
                return self.state.value

            @workflow.query
            def value(self) -> int:
                return self.state.value

        handle = await client.start_workflow(
            CounterEntity.run, Counter(), id="counter-1", task_queue="entities")
    """

    idle_timeout: timedelta | None = None
    """End the entity when no message has come for this long (``None``: never)."""
    max_history_length: int | None = None
    """Continue as new once this run's history has this many events (``None``: only when
    perdure suggests it, at 4,096 events or 4 MiB). The length is read as of the start of
    the workflow task, so a run may pass it by that task's events."""

    state: StateT
    """The entity's state: what handlers change, queries read and continue-as-new carries."""

    @workflow.init
    def __init__(self, state: StateT | None = None) -> None:
        self.state = self.initial_state() if state is None else state
        setattr(self, _INBOX_ATTR, _Inbox())

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "run" in cls.__dict__:
            raise TypeError(
                f"{cls.__qualname__} defines run(), which EntityWorkflow provides: put the "
                "work in handlers, end() and the on_idle()/on_deadline() hooks instead"
            )
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, _INIT_ATTR, False):
            raise TypeError(
                f"{cls.__qualname__}.__init__ must be decorated with @workflow.init, take the "
                "state and call super().__init__(state): the state must be ready before the "
                "first message (update-with-start delivers it before run() starts)"
            )
        for base in cls.__dict__.get("__orig_bases__", ()):
            if get_origin(base) is EntityWorkflow:
                (state_type,) = get_args(base)
                if not isinstance(state_type, TypeVar):
                    setattr(cls, _STATE_TYPE_ATTR, state_type)
        _serialize_handlers(cls)
        state_type = getattr(cls, _STATE_TYPE_ATTR, None)
        if state_type is not None:
            cls.run = _run_method(cls, state_type)  # type: ignore[method-assign]

    async def run(self, state: StateT | None = None) -> StateT:
        """Serve messages until the entity ends; return its final state.

        Each subclass gets its own copy, typed with its state type (the workflow's argument
        and result decode as that type).
        """
        inbox = self._inbox
        last_active = workflow.now()  # when the last message was done (or the run began)
        stamped = inbox.events
        while not inbox.ended:
            if inbox.events != stamped and inbox.pending == 0:
                last_active, stamped = workflow.now(), inbox.events
            if self.should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if inbox.ended:  # a handler that was still running ended it
                    break
                workflow.continue_as_new(self.state)
            now = workflow.now()
            deadline = self.next_deadline()
            idle_at = None
            if self.idle_timeout is not None and inbox.pending == 0:
                idle_at = last_active + self.idle_timeout
            wake = min((t for t in (deadline, idle_at) if t is not None), default=None)
            seen = inbox.events
            try:
                await workflow.wait_condition(
                    functools.partial(self._woken, seen),
                    timeout=None if wake is None else max(wake - now, timedelta(0)) + _TIMER_SLACK,
                )
            except TimeoutError:  # asyncio.TimeoutError: the same class since Python 3.11
                if deadline is not None and deadline == wake:
                    await self._handle_deadline()
                elif inbox.events == seen:  # idle: no message came with the timer either
                    inbox.ended = inbox.idle = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        if inbox.idle:
            await self.on_idle()
        return self.state

    # -- what a subclass may override ------------------------------------------------------

    def initial_state(self) -> StateT:
        """The state of an entity started without one: the state type called with no
        arguments. Override it when the state type needs arguments."""
        state_type: Callable[[], StateT] = getattr(type(self), _STATE_TYPE_ATTR)
        return state_type()

    def should_continue_as_new(self) -> bool:
        """Whether this run should hand its state to a fresh one now. Checked after every
        message: keep it cheap and free of side effects. By default: perdure suggests it,
        or the history has reached ``max_history_length`` events."""
        info = workflow.info()
        if info.is_continue_as_new_suggested():
            return True
        limit = self.max_history_length
        return limit is not None and info.get_current_history_length() >= limit

    def next_deadline(self) -> datetime | None:
        """When :meth:`on_deadline` should next run (an aware UTC datetime, as
        ``workflow.now()`` gives), or ``None``. Read again after every message and deadline;
        it usually comes from the state (the earliest expiry of a reservation)."""
        return None

    async def on_deadline(self) -> None:
        """Runs once ``workflow.now()`` has reached :meth:`next_deadline`, in line with the
        messages (none runs meanwhile). It must move the deadline on (drop what expired)."""

    async def on_idle(self) -> None:
        """Runs when ``idle_timeout`` has passed with no message, after every handler has
        finished and before the workflow completes with ``self.state``. It may run
        activities (a reminder email); messages arriving meanwhile are refused."""

    # -- what handlers call ----------------------------------------------------------------

    def end(self) -> None:
        """End the entity: it takes no more messages, and the workflow completes with
        ``self.state`` once the running handlers have finished."""
        self._inbox.ended = True

    @property
    def ended(self) -> bool:
        """Whether :meth:`end` was called or the idle timeout passed. Validators that refuse
        changes to an ended entity need not check it: the base class refuses them."""
        return self._inbox.ended

    # -- the machinery -----------------------------------------------------------------------

    @property
    def _inbox(self) -> _Inbox:
        inbox = self.__dict__.get(_INBOX_ATTR)
        if not isinstance(inbox, _Inbox):
            raise TypeError(f"{type(self).__qualname__}.__init__ must call super().__init__(state)")
        return inbox

    def _woken(self, seen: int) -> bool:
        """Whether ``run()`` has something to look at since the inbox's ``events`` was ``seen``."""
        inbox = self._inbox
        return inbox.events != seen or inbox.ended or self.should_continue_as_new()

    async def _handle_deadline(self) -> None:
        async with self._inbox.lock:
            # Read again: a message that came with the timer may have moved the deadline.
            due = self.next_deadline()
            if self._inbox.ended or due is None or due > workflow.now():
                return
            await self.on_deadline()
        after = self.next_deadline()
        if after is not None and after <= due and not self._inbox.ended:
            raise RuntimeError(
                f"{type(self).__qualname__}.on_deadline() left next_deadline() at {after} "
                f"(it ran for {due}): it must remove or move on what fell due"
            )

    def _refusal(self) -> ApplicationError:
        return ApplicationError(
            f"{type(self).__name__} {workflow.info().workflow_id} has ended and takes no more "
            "messages; start it again if it should live on (update-with-start does)",
            type="EntityEnded",
        )


def _serialize_handlers(cls: type) -> None:
    """Put every signal and update handler of ``cls`` in line, on ``cls`` itself (the
    runtime calls a handler through its instance's attribute of that name)."""
    for klass in reversed(cls.__mro__):
        for name, attr in list(vars(klass).items()):
            if getattr(cls, name, None) is not attr:  # overridden further down
                continue
            if not inspect.isfunction(attr) or getattr(attr, _ONE_AT_A_TIME_ATTR, False):
                continue
            if getattr(attr, _UPDATE_ATTR, None) is not None:
                setattr(cls, name, _one_at_a_time(attr, update=True))
            elif getattr(attr, _SIGNAL_ATTR, None) is not None:
                setattr(cls, name, _one_at_a_time(attr, update=False))


def _one_at_a_time(fn: Callable[..., Any], *, update: bool) -> Callable[..., Any]:
    # functools.wraps keeps the handler's name, its @workflow marks and (via __wrapped__)
    # its signature, which is where perdure finds the argument types.
    @functools.wraps(fn)
    async def handle(self: EntityWorkflow[Any], *args: Any) -> Any:
        inbox = self._inbox
        inbox.pending += 1
        inbox.events += 1
        try:
            async with inbox.lock:
                if inbox.ended:
                    if update:
                        raise self._refusal()
                    workflow.logger.warning(
                        "%s %s has ended: signal %s dropped",
                        type(self).__name__,
                        workflow.info().workflow_id,
                        fn.__name__,
                    )
                    return None
                result = fn(self, *args)
                if inspect.isawaitable(result):
                    result = await result
                return result
        finally:
            inbox.pending -= 1
            inbox.events += 1

    setattr(handle, _ONE_AT_A_TIME_ATTR, True)
    if update:
        validator: Callable[..., None] | None = getattr(fn, _VALIDATOR_ATTR, None)

        def validate(self: EntityWorkflow[Any], *args: Any) -> None:
            # Refused before acceptance: an update to an ended entity leaves no trace.
            if self._inbox.ended:
                raise self._refusal()
            if validator is not None:
                validator(self, *args)

        setattr(handle, _VALIDATOR_ATTR, validate)
    return handle


def _run_method(cls: type, state_type: Any) -> Callable[..., Any]:
    """``cls``'s own run method: the workflow's argument and result are decoded with the
    type hints of its run method, and a run method knows its one workflow class."""

    async def run(self: EntityWorkflow[Any], state: Any = None) -> Any:
        return await EntityWorkflow.run(self, state)

    run.__annotations__ = {"state": Optional[state_type], "return": state_type}  # noqa: UP045
    run.__qualname__ = f"{cls.__qualname__}.run"
    run.__module__ = cls.__module__
    run.__doc__ = EntityWorkflow.run.__doc__
    return workflow.run(run)
