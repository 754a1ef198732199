from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypedDict

from perdure._common import identifiers as ids
from perdure._common.clock import Clock
from perdure._common.metrics import MetricsSink
from perdure._errors import InvalidArgumentError
from perdure._store import Store, open_store
from perdure.client._async_activity import AsyncActivityHandle
from perdure.client._connection import POLL_INTERVAL, Connection, TimeSkipper
from perdure.client._handle import WorkflowHandle
from perdure.client._inputs import CountWorkflowsInput, ListWorkflowsInput, StartWorkflowInput
from perdure.client._listing import WorkflowExecutionAsyncIterator
from perdure.client._namespace import NamespaceMethods
from perdure.client._outbound import build_chain
from perdure.client._records import (
    WorkflowExecution,
    WorkflowExecutionCount,
    WorkflowExecutionCountAggregationGroup,
)
from perdure.client._schedule_client import ScheduleClient
from perdure.client._with_start import ARG_UNSET as _ARG_UNSET
from perdure.client._with_start import UpdateWithStartMethods, WithStartWorkflowOperation
from perdure.common._enums import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from perdure.common._priority import Priority
from perdure.common._retry import RetryPolicy
from perdure.common._search_attributes import TypedSearchAttributes
from perdure.converter import DataConverter
from perdure.workflow._definition import WorkflowDefinition

__all__ = [
    "POLL_INTERVAL",
    "Client",
    "ClientConfig",
    "TimeSkipper",
    "WithStartWorkflowOperation",
    "WorkflowExecution",
    "WorkflowExecutionCount",
    "WorkflowExecutionCountAggregationGroup",
    "default_identity",
]


def default_identity() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


class ClientConfig(TypedDict):
    """The keyword arguments of ``Client(...)``, as :meth:`Client.config` returns them."""

    store: Store
    namespace: str
    data_converter: DataConverter
    identity: str
    owns_store: bool
    time_skipper: TimeSkipper | None
    interceptors: Sequence[Any]
    metrics: MetricsSink | None


class Client(NamespaceMethods, ScheduleClient, UpdateWithStartMethods):
    """Starts workflows and talks to them, through the store a database URL names.

    Example::

        client = await Client.connect("sqlite:///app.db")
        result = await client.execute_workflow(Greeting.run, "world",
                                               id="greet-1", task_queue="greetings")
    """

    def __init__(
        self,
        store: Store,
        *,
        namespace: str = "default",
        data_converter: DataConverter | None = None,
        identity: str | None = None,
        owns_store: bool = True,
        time_skipper: TimeSkipper | None = None,
        interceptors: Sequence[Any] = (),
        metrics: MetricsSink | None = None,
    ) -> None:
        # What this client's handles and interceptor chain share.
        self.connection = Connection(
            store,
            namespace=ids.check_namespace(namespace),
            data_converter=data_converter or DataConverter.default,
            identity=ids.check_identity(identity) or default_identity(),
            time_skipper=time_skipper,
        )
        # Where workers built on this client report their metrics (None: nowhere).
        self.metrics = metrics
        self._owns_store = owns_store
        # The workflow classes (and failure types) workers on this client were given, for the
        # test kit's replay of every workflow a test completed.
        self._worker_workflows: dict[str, type] = {}
        self._worker_failure_types: set[type[BaseException]] = set()
        # Every call goes through the interceptors' chain, which ends in ClientRoot; those
        # that are also worker interceptors are used by every worker of this client.
        self.interceptors: Sequence[Any] = list(interceptors)
        self._outbound = build_chain(self.connection, self, self.interceptors)

    @property
    def namespace(self) -> str:
        return self.connection.namespace

    @namespace.setter
    def namespace(self, value: str) -> None:
        self.connection.namespace = value

    @property
    def data_converter(self) -> DataConverter:
        return self.connection.data_converter

    @data_converter.setter
    def data_converter(self, value: DataConverter) -> None:
        self.connection.data_converter = value

    @property
    def identity(self) -> str:
        return self.connection.identity

    @identity.setter
    def identity(self, value: str) -> None:
        self.connection.identity = value

    @property
    def _store(self) -> Store:
        return self.connection.store

    @property
    def _time_skipper(self) -> TimeSkipper | None:
        return self.connection.time_skipper

    @_time_skipper.setter
    def _time_skipper(self, value: TimeSkipper | None) -> None:
        self.connection.time_skipper = value

    async def _encode_memo(self, memo: dict[str, Any] | None) -> dict[str, Any] | None:
        return await self.connection.encode_memo(memo)

    @staticmethod
    async def connect(
        target_url: str,
        *,
        namespace: str = "default",
        data_converter: DataConverter | None = None,
        interceptors: Sequence[Any] = (),
        identity: str | None = None,
        clock: Clock | None = None,
        metrics: MetricsSink | None = None,
    ) -> Client:
        """Open the database: ``sqlite:///app.db`` (created if missing; ``?mode=ro`` opens it
        read-only), ``sqlite://:memory:``. ``metrics``: where this client's workers report
        their metrics (a :class:`~perdure.contrib.prometheus.PrometheusMetrics`).

        Raises:
            InvalidURLError: the URL is malformed or not supported.
            SchemaVersionError: the database was written by a newer perdure.
            SchemaError: the database's perdure tables were changed by hand.
        """
        store = open_store(target_url, clock)
        return Client(
            store,
            namespace=namespace,
            data_converter=data_converter,
            identity=identity,
            interceptors=interceptors,
            metrics=metrics,
        )

    def config(self) -> ClientConfig:
        """This client's keyword arguments, to build another like it with one changed.

        The copy shares this client's store (and, in a time-skipping test, its clock): closing
        the copy leaves the store open, and it stays usable until the client that opened it
        is closed. A new dict each call.

        Example::

            config = client.config()
            config["data_converter"] = pydantic_data_converter
            client = Client(**config)
        """
        return ClientConfig(
            store=self._store,
            namespace=self.namespace,
            data_converter=self.data_converter,
            identity=self.identity,
            owns_store=False,
            time_skipper=self._time_skipper,
            interceptors=self.interceptors,
            metrics=self.metrics,
        )

    @property
    def store(self) -> Store:
        """The store behind this client (shared with workers built on it)."""
        return self._store

    async def close(self) -> None:
        """Close the database connection (workers using this client must be stopped first)."""
        if self._owns_store:
            await self._store.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- starting ------------------------------------------------------------------------------
    async def start_workflow(
        self,
        workflow: str | Callable[..., Any],
        arg: Any = _ARG_UNSET,
        *,
        args: Sequence[Any] = (),
        id: str,
        task_queue: str,
        result_type: Any = None,
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.FAIL,
        retry_policy: RetryPolicy | None = None,
        memo: dict[str, Any] | None = None,
        search_attributes: TypedSearchAttributes | None = None,
        start_delay: timedelta | None = None,
        start_signal: str | None = None,
        start_signal_args: Sequence[Any] = (),
        start_signal_request_id: str | None = None,
        request_eager_start: bool = False,
        priority: Priority | None = None,
    ) -> WorkflowHandle[Any]:
        """Start a workflow and return its ``WorkflowHandle``.

        ``start_signal`` makes it signal-with-start: if a run of this id is open it is only
        signalled, else it is started with the signal already delivered, atomically;
        ``start_signal_request_id`` is that signal's idempotency key (as
        ``WorkflowHandle.signal``'s ``request_id``: one the workflow id took already starts
        and signals nothing, and the handle is the run's that took it).
        ``start_delay`` holds the first workflow task back. A ``retry_policy`` retries the
        whole workflow when a run fails or times out (a workflow has none by default).
        ``priority`` orders its tasks in the task queue (and is its activities' default).
        ``request_eager_start`` is accepted as Temporal's hint: perdure always runs the first
        workflow task at once, in the start's own transaction, when a worker of this client's
        process polls the task queue.

        The arguments are serialized before anything is stored, so a value that cannot be
        serialized fails here and leaves no trace.

        Raises:
            WorkflowAlreadyStartedError: a run with this id is open (``id_conflict_policy``).
        """
        if isinstance(workflow, str):
            workflow_type = workflow
        else:
            defn = WorkflowDefinition.from_run_fn(workflow)
            workflow_type = defn.name
            if result_type is None:
                result_type = defn.ret_type
        if arg is not _ARG_UNSET:
            if args:
                raise ValueError("Give either arg or args, not both")
            args = (arg,)
        return await self._outbound.start_workflow(
            StartWorkflowInput(
                workflow=workflow_type,
                args=list(args),
                id=id,
                task_queue=task_queue,
                execution_timeout=execution_timeout,
                run_timeout=run_timeout,
                task_timeout=task_timeout,
                id_reuse_policy=id_reuse_policy,
                id_conflict_policy=id_conflict_policy,
                retry_policy=retry_policy,
                memo=memo,
                search_attributes=search_attributes,
                start_delay=start_delay,
                headers={},
                start_signal=start_signal,
                start_signal_args=list(start_signal_args),
                ret_type=result_type,
                request_eager_start=request_eager_start,
                priority=priority,
                start_signal_request_id=ids.check_request_id(
                    start_signal_request_id, "start_signal_request_id"
                ),
            )
        )

    async def execute_workflow(
        self,
        workflow: str | Callable[..., Any],
        arg: Any = _ARG_UNSET,
        *,
        args: Sequence[Any] = (),
        id: str,
        task_queue: str,
        result_type: Any = None,
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.FAIL,
        retry_policy: RetryPolicy | None = None,
        memo: dict[str, Any] | None = None,
        search_attributes: TypedSearchAttributes | None = None,
        start_delay: timedelta | None = None,
        start_signal: str | None = None,
        start_signal_args: Sequence[Any] = (),
        start_signal_request_id: str | None = None,
        request_eager_start: bool = False,
        priority: Priority | None = None,
    ) -> Any:
        """Start a workflow and wait for its result (``start_workflow``, then ``result()``)."""
        handle = await self.start_workflow(
            workflow,
            arg,
            args=args,
            id=id,
            task_queue=task_queue,
            result_type=result_type,
            execution_timeout=execution_timeout,
            run_timeout=run_timeout,
            task_timeout=task_timeout,
            id_reuse_policy=id_reuse_policy,
            id_conflict_policy=id_conflict_policy,
            retry_policy=retry_policy,
            memo=memo,
            search_attributes=search_attributes,
            start_delay=start_delay,
            start_signal=start_signal,
            start_signal_args=start_signal_args,
            start_signal_request_id=start_signal_request_id,
            priority=priority,
        )
        return await handle.result()

    def get_workflow_handle(
        self,
        workflow_id: str,
        *,
        run_id: str | None = None,
        first_execution_run_id: str | None = None,
        result_type: Any = None,
    ) -> WorkflowHandle[Any]:
        """A handle to an existing workflow (its latest run unless ``run_id`` is given)."""
        workflow_id = ids.check_workflow_id(workflow_id, "workflow_id")
        run_id = ids.check_run_id(run_id)
        first_execution_run_id = ids.check_run_id(first_execution_run_id, "first_execution_run_id")
        return WorkflowHandle(
            self.connection,
            self._outbound,
            workflow_id,
            run_id=run_id,
            result_run_id=run_id,
            first_execution_run_id=first_execution_run_id,
            result_type=result_type,
        )

    def get_workflow_handle_for(
        self, workflow: Callable[..., Any], workflow_id: str, *, run_id: str | None = None
    ) -> WorkflowHandle[Any]:
        """:meth:`get_workflow_handle`, typed by the workflow's run method."""
        defn = WorkflowDefinition.from_run_fn(workflow)
        return self.get_workflow_handle(workflow_id, run_id=run_id, result_type=defn.ret_type)

    def get_async_activity_handle(self, *, task_token: bytes) -> AsyncActivityHandle:
        """A handle to complete, fail or heartbeat an activity that called
        ``activity.raise_complete_async()``, by its ``activity.info().task_token``.

        Raises:
            ValueError: the token is not a perdure activity task token.
        """
        return AsyncActivityHandle(self.connection, task_token)

    # -- visibility --------------------------------------------------------------------------
    def list_workflows(
        self,
        query: str | None = None,
        *,
        limit: int | None = None,
        page_size: int = 1000,
        next_page_token: bytes | None = None,
    ) -> WorkflowExecutionAsyncIterator:
        """Workflow executions matching a visibility query, newest first by default, fetched
        a page at a time. Nothing is read until iteration (or ``fetch_next_page``) starts.

        The query language is Temporal's: ``WorkflowType = 'Order' AND ExecutionStatus =
        'Running' AND StartTime > '2026-01-01T00:00:00Z'``, with ``!=``, ``<``, ``>``, ``IN``,
        ``BETWEEN``, ``STARTS_WITH``, ``IS NULL``, ``AND``, ``OR``, ``NOT``, parentheses,
        ``ORDER BY`` and custom search attributes. ``.map_histories()`` on the result iterates
        over the executions' histories instead, for a :class:`~perdure.worker.Replayer`.

        Pages follow each other by key, not by offset: the token of a page holds its last
        row's place in the order, so a run that existed when listing began, and whose sort
        key does not change (the default order's ``StartTime`` and ``RunId`` never do), is
        listed exactly once, however many workflows start meanwhile.

        Args:
            query: the filter, and optionally ``ORDER BY``; ``None`` lists every run.
            limit: at most this many executions, over all pages.
            page_size: executions per page (one database query each).
            next_page_token: start after the page this token came from (the
                ``next_page_token`` of an earlier listing of the same query).

        Raises:
            VisibilityQueryError: a malformed query (when iteration starts); the message
                points at the token.
            InvalidArgumentError: ``next_page_token`` came from another query (when
                iteration starts), or ``page_size`` is less than 1.
        """
        if page_size < 1:
            raise InvalidArgumentError(f"page_size must be at least 1, got {page_size}")
        return self._outbound.list_workflows(
            ListWorkflowsInput(query, page_size, next_page_token, limit)
        )

    async def count_workflows(
        self, query: str | None = None, *, max_count: int | None = None
    ) -> WorkflowExecutionCount:
        """How many executions match a visibility query; with ``GROUP BY ExecutionStatus`` at
        its end (as in Temporal), also how many of each status, in ``.groups``.

        A count reads an index entry per matching run; ``max_count`` stops it (each group's,
        with ``GROUP BY``) there: a count equal to it means "at least that many" ("10,000+").

        Example::

            counts = await client.count_workflows("WorkflowType = 'Order' GROUP BY ExecutionStatus")
            by_status = {g.group_values[0]: g.count for g in counts.groups}  # {"Running": 3, ...}

        Raises:
            VisibilityQueryError: a malformed query, or ``GROUP BY`` another field.
            InvalidArgumentError: ``max_count`` is less than 1.
        """
        return await self._outbound.count_workflows(CountWorkflowsInput(query, max_count))
