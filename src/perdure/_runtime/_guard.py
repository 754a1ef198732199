"""Refuses non-deterministic calls (clock, randomness, I/O, threads) made by workflow code.

Workflow code is replayed from history after a crash, so it must make the same decisions
every time it runs. ``DeterminismGuard`` watches it with a ``sys.setprofile`` hook, installed
for the worker's thread only while the runtime runs workflow code, so it costs nothing
anywhere else. The interpreter reports every call to the hook: a C function as a
``"c_call"`` event (the argument is the builtin function object, which hashes and compares
by its function and bound ``self``), a Python function as a ``"call"`` event (matched by its
code object). The hook looks each one up in a table built beforehand, and does nothing else
unless the lookup hits.

When workflow code calls something that is not replay-safe, the hook raises
``RestrictedWorkflowAccessError`` at the call site, naming the alternative. The interpreter
then removes the hook (it always does when a profile function raises), and user code may
catch the error, so the guard also keeps the first violation in ``violation``: the runtime
fails the workflow task with it once the code yields, whatever the code did with the error.

Who made a call decides whether it is allowed. Walking outwards from the calling frame,
through standard-library frames, to the first frame of user or third-party code:

- perdure's own modules may call anything (workflow code reaches perdure through it);
- so may ``logging`` (and the handlers it runs), ``linecache`` (source lines for
  tracebacks), ``zoneinfo`` (the time zone database) and the import system (a module
  imported lazily by workflow code reads its file and runs its top-level code once);
- a third-party library calling ``time.time()`` on behalf of workflow code is refused.

Example::

    guard = DeterminismGuard(workflow_random)
    with guard:
        run_workflow_code()
    if guard.violation is not None:
        fail_the_workflow_task(guard.violation)
"""

from __future__ import annotations

import _random
import contextlib
import datetime
import gc
import importlib
import linecache
import logging
import os
import random
import sys
import sysconfig
import threading
import types
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from perdure._common.nondeterminism import CLOCK_CLASSMETHODS, DATE, FORBIDDEN, RANDOM
from perdure._errors import RestrictedWorkflowAccessError

__all__ = ["DeterminismGuard", "suspended"]


class DeterminismGuard:
    """Watches workflow code for non-deterministic calls while it runs.

    Enter it around each stretch of workflow code, on the thread that runs it. Entering is
    re-entrant: each exit restores the profile function its own enter replaced.

    Args:
        allowed_random: the workflow's own seeded ``random.Random``; calls on it are allowed
            (or given later, with :meth:`allow_random`, once the workflow first asks for it).

    Attributes:
        violation: the first violation seen since the last :meth:`reset`, even if workflow
            code caught the error it raised.
    """

    def __init__(self, allowed_random: random.Random | None = None) -> None:
        self.violation: RestrictedWorkflowAccessError | None = None
        self._allowed_random = allowed_random
        self._previous: list[Any] = []

    def __enter__(self) -> DeterminismGuard:
        _watch_date_subclasses()
        _keep_gc_callbacks_outermost()
        self._previous.append((sys.getprofile(), getattr(_active, "guard", None)))
        _active.guard = self
        sys.setprofile(_profile)
        return self

    def __exit__(self, *exc: object) -> None:
        previous, _active.guard = self._previous.pop()
        if previous is None or callable(previous):
            sys.setprofile(previous)
        else:
            # A C-level profiler (cProfile's): sys.getprofile() returns its object, which
            # sys.setprofile cannot reinstall; enable() does, keeping its settings.
            previous.enable()

    def allow_random(self, allowed_random: random.Random) -> None:
        """Allow calls on ``allowed_random``, the workflow's own seeded generator."""
        self._allowed_random = allowed_random

    def reset(self) -> None:
        """Forget the recorded violation (after the runtime has reported it)."""
        self.violation = None

    def _on_builtin(self, frame: types.FrameType, function: Any) -> None:
        self._refuse(frame, _BY_BUILTIN[function], function.__self__)

    def _on_code(self, frame: types.FrameType) -> None:
        rule = _BY_CODE[id(frame.f_code)]
        if rule.applies is None or rule.applies(frame):
            self._refuse(frame.f_back, rule, frame.f_locals.get("self"))

    def _refuse(self, caller: types.FrameType | None, rule: _Rule, receiver: object) -> None:
        if receiver is not None and receiver is self._allowed_random:
            return
        blame = _blame(caller)
        if blame is None:
            return
        error = RestrictedWorkflowAccessError(_message(rule, blame, receiver))
        if self.violation is None:
            self.violation = error
        raise error


# Garbage collection can run any code (gc callbacks, finalizers) in the middle of workflow
# code; none of it is the workflow's, so the guard is suspended while a collection runs.
_active = threading.local()


def _gc_suspend(phase: str, info: dict[str, Any]) -> None:
    if phase == "start" and getattr(_active, "guard", None) is not None:
        sys.setprofile(None)


def _gc_resume(phase: str, info: dict[str, Any]) -> None:
    guard = getattr(_active, "guard", None)
    if phase == "stop" and guard is not None:
        sys.setprofile(_profile)


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """No guard for a block of perdure's own (a tracing integration creating a span inside a
    workflow: its ids are random and its clock real, and neither decides anything the
    workflow does); the guard, if any, is back after it."""
    guard = getattr(_active, "guard", None)
    if guard is None:
        yield
        return
    previous = sys.getprofile()
    _active.guard = None
    sys.setprofile(None)
    try:
        yield
    finally:
        _active.guard = guard
        sys.setprofile(previous)


def _keep_gc_callbacks_outermost() -> None:
    callbacks = gc.callbacks
    if not callbacks or callbacks[0] is not _gc_suspend:
        if _gc_suspend in callbacks:
            callbacks.remove(_gc_suspend)
        callbacks.insert(0, _gc_suspend)
    if callbacks[-1] is not _gc_resume:
        if _gc_resume in callbacks:
            callbacks.remove(_gc_resume)
        callbacks.append(_gc_resume)


def _profile(frame: types.FrameType, event: str, arg: Any) -> None:
    # Called for every event while workflow code runs, so the common path is one string
    # comparison and one hash lookup. One function for every guard, finding the guard of the
    # code running (the innermost entered on this thread) only on a match: a function per
    # guard would hold it in a cycle, left with its workflow instance to the collector.
    if event == "c_call":
        if arg in _BY_BUILTIN:
            _active.guard._on_builtin(frame, arg)
    elif event == "call" and id(frame.f_code) in _BY_CODE:
        _active.guard._on_code(frame)


# -- what is forbidden ---------------------------------------------------------------------
# The table, and the advice for each row, is ``perdure._common.nondeterminism``, which the
# linter reads too; the guard watches its ``watched`` rows, and the random module and the
# ``datetime`` clocks through what lies beneath them.


@dataclass(frozen=True, slots=True)
class _Rule:
    """A forbidden call: how the user would write it, and what to do instead."""

    name: str
    advice: str
    # A further condition on the called Python function's frame, checked only on a match.
    applies: Callable[[types.FrameType], bool] | None = None


def _unseeded(frame: types.FrameType) -> bool:
    return frame.f_locals.get("a") is None


# Keys are builtins (bound ones compare by function and self); ids of code objects, whose
# own hash walks their constants, are the cheap key for Python functions.
_BY_BUILTIN: dict[object, _Rule] = {}
_BY_CODE: dict[int, _Rule] = {}
_CODES: list[types.CodeType] = []  # keeps every keyed code object, and so its id, alive


def _forbid(target: object, rule: _Rule) -> None:
    if isinstance(target, type):  # constructing the class is the call to refuse
        target = next(vars(c)["__init__"] for c in target.__mro__ if "__init__" in vars(c))
    function = getattr(target, "__func__", target)
    code = getattr(function, "__code__", None)
    if isinstance(code, types.CodeType):
        _CODES.append(code)
        _BY_CODE[id(code)] = rule
    elif isinstance(target, types.BuiltinFunctionType):
        _BY_BUILTIN[target] = rule
    else:
        raise TypeError(f"cannot watch calls to {rule.name}: {target!r}")


def _owner(dotted: str) -> object:
    """The module or class that a dotted name such as ``concurrent.futures.X`` names."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            found = getattr(found, part)
        return found
    raise ImportError(f"cannot watch calls to {dotted}: no such module")


def _build_tables() -> None:
    for row in FORBIDDEN:
        if not row.watched:
            continue
        owner = _owner(row.owner)
        for name in row.names:
            # Missing attributes (other platforms, other Python versions) are skipped.
            target = getattr(owner, name, None)
            if target is not None:
                shown = name if row.owner == "builtins" else f"{row.owner}.{name}"
                _forbid(target, _Rule(shown, row.rule.advice))
    # Every module-level random function is a method of random._inst, and all of them end
    # in C methods of that instance (random, getrandbits, seed, ...).
    for name, member in vars(_random.Random).items():
        if isinstance(member, types.MethodDescriptorType):
            # Bind the C method itself: random.Random overrides seed, getstate and setstate
            # in Python, and those overrides end in the C ones.
            _forbid(member.__get__(random._inst), _Rule(f"random.{name}", RANDOM.advice))
    _forbid(random.Random.seed, _Rule("random.Random.seed(None)", RANDOM.advice, _unseeded))


_build_tables()

# ``MyDateTime.now()`` calls the builtin bound to the subclass, a different key from
# ``datetime.datetime.now``: every subclass gets its own entries, added when first seen
# (subclasses, like the entries that keep them alive, are few and live as long as their module).
_date_classes_seen: set[type] = set()


def _watch_date_subclasses() -> None:
    """Add the clock-reading classmethods of every ``datetime.date`` class defined so far."""
    pending: list[type] = [datetime.date]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls in _date_classes_seen:
            continue
        _date_classes_seen.add(cls)
        for owner in (datetime.date, datetime.datetime):
            if issubclass(cls, owner):
                for name in CLOCK_CLASSMETHODS:
                    if name in vars(owner):
                        method = vars(owner)[name].__get__(None, cls)
                        where = f"{cls.__module__}.{cls.__qualname__}.{name}"
                        _forbid(method, _Rule(where, DATE.advice))


_watch_date_subclasses()


# -- who made the call ---------------------------------------------------------------------


def _source(module: types.ModuleType) -> str:
    return os.path.abspath(module.__file__ or "")


def _directory(module: types.ModuleType) -> str:
    return os.path.dirname(_source(module)) + os.sep


def _stdlib_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    found = {paths["stdlib"], paths["platstdlib"], os.path.dirname(os.__file__)}
    return tuple(os.path.abspath(path) + os.sep for path in found)


def _site_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple(os.path.abspath(paths[key]) + os.sep for key in ("purelib", "platlib"))


# perdure's own modules; its tests live outside the package.
_PERDURE: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_STDLIB: Final = _stdlib_prefixes()
_SITE: Final = _site_prefixes()
_ALLOWED: Final = (
    _directory(logging),
    _source(linecache),
    _directory(zoneinfo),
    "<frozen importlib._bootstrap",
    os.path.join(_directory(importlib), "_bootstrap"),
    "<frozen zipimport>",
)


def _is_stdlib(filename: str) -> bool:
    if filename.startswith("<frozen "):
        return True
    return (
        filename.startswith(_STDLIB)
        and not filename.startswith(_SITE)
        and "site-packages" not in filename
        and "dist-packages" not in filename
    )


@dataclass(frozen=True, slots=True)
class _Blame:
    culprit: types.FrameType | None  # the user or third-party frame that led to the call
    entry: types.FrameType | None  # the outermost standard-library frame below it, if any


def _blame(caller: types.FrameType | None) -> _Blame | None:
    """Find who is responsible for a forbidden call, or None if its caller may make it."""
    culprit: types.FrameType | None = None
    entry: types.FrameType | None = None
    frame = caller
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(_ALLOWED):
            return None
        if filename.startswith(_PERDURE):
            # Workflow code is called by perdure: reaching perdure ends the search.
            return None if culprit is None else _Blame(culprit, entry)
        if culprit is None:
            if _is_stdlib(filename):
                entry = frame
            else:
                culprit = frame
        frame = frame.f_back
    return _Blame(culprit, entry)


def _function_name(frame: types.FrameType, receiver: object) -> str:
    """How the user would write the call that ``frame`` runs, e.g. ``random.randint()``."""
    module = frame.f_globals.get("__name__", "?")
    code = frame.f_code
    if code.co_name == "__init__":
        return f"{module}.{code.co_qualname.removesuffix('.__init__')}()"
    if module == "random" and isinstance(receiver, random.Random):
        # Name the instance's class, or nothing for the module-level functions.
        owner = "" if receiver is random._inst else f"{type(receiver).__qualname__}."
        return f"random.{owner}{code.co_name}()"
    return f"{module}.{code.co_qualname}()"


def _message(rule: _Rule, blame: _Blame, receiver: object) -> str:
    called = rule.name if rule.name.endswith(")") else f"{rule.name}()"
    name, via = called, ""
    if blame.entry is not None:
        outer = _function_name(blame.entry, receiver)
        if outer != called:
            name, via = outer, f" (it calls {called})"
    site = ""
    if blame.culprit is not None:
        site = f" at {blame.culprit.f_code.co_filename}:{blame.culprit.f_lineno}"
    return (
        f"Workflow code called {name}{site}, which is not replay-safe{via}: {rule.advice}. "
        "(workflow code must be deterministic: it is replayed from history after a crash)"
    )
