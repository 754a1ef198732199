"""OpenTelemetry tracing for perdure, with the span names of Temporal's
``temporalio.contrib.opentelemetry``: one trace runs from the client's call through the
workflow, its activities and its children, whichever processes run them.

Install ``perdure[opentelemetry]`` (the API only; bring the SDK and exporter you use), and
give the interceptor to the client: its workers use it too.

Example::

    from perdure.contrib.opentelemetry import TracingInterceptor

    client = await Client.connect("sqlite:///app.db", interceptors=[TracingInterceptor()])

Spans:

- client: ``StartWorkflow:Type`` (``SignalWithStartWorkflow:Type``), ``SignalWorkflow:Name``,
  ``QueryWorkflow:Name``, ``StartWorkflowUpdate:Name``, ``StartUpdateWithStartWorkflow:Type``;
- workflow: ``RunWorkflow:Type``, ``HandleSignal:Name``, ``HandleQuery:Name``,
  ``ValidateUpdate:Name``, ``HandleUpdate:Name``, ``StartActivity:Type``,
  ``StartChildWorkflow:Type``, ``SignalChildWorkflow:Name``, ``SignalExternalWorkflow:Name``,
  ``CompleteWorkflow:Type``;
- activity: ``RunActivity:Type``.

The context travels in the ``_tracer-data`` header of each call, recorded in history with it.
Spans of workflow code are created at the moment the code decides, with the workflow's time
and no duration (a span left open across workflow tasks could not survive a crash), and never
while the code is replayed: a worker that rebuilds a workflow from history after a crash or
an eviction adds no span for what was already done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn, Protocol

import opentelemetry.context
import opentelemetry.propagate
import opentelemetry.trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from perdure import activity, client, worker, workflow
from perdure._common.payload import Payload
from perdure._runtime._guard import suspended
from perdure.converter import DataConverter
from perdure.exceptions import ApplicationError, ApplicationErrorCategory, FailureError

__all__ = ["TracingInterceptor", "TracingWorkflowInboundInterceptor"]

HEADER_KEY = "_tracer-data"
_Carrier = dict[str, str]


class _HasHeaders(Protocol):
    headers: Mapping[str, Payload]


class TracingInterceptor(client.Interceptor, worker.Interceptor):
    """Traces client calls, workflows and activities with OpenTelemetry.

    Args:
        tracer: the tracer to use; ``opentelemetry.trace.get_tracer(__name__)`` by default.
        always_create_workflow_spans: create workflow spans even when no span started the
            workflow (one started by ``perdure workflow start`` or a schedule); by default,
            as in Temporal, such workflows are not traced.
    """

    def __init__(
        self,
        tracer: opentelemetry.trace.Tracer | None = None,
        *,
        always_create_workflow_spans: bool = False,
    ) -> None:
        self.tracer = tracer or opentelemetry.trace.get_tracer(__name__)
        self.header_key = HEADER_KEY
        self.payload_converter = DataConverter.default.payload_converter
        self.always_create_workflow_spans = always_create_workflow_spans

    # -- the interceptor hooks ------------------------------------------------------------------
    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _ClientOutbound(next, self)

    def intercept_activity(
        self, next: worker.ActivityInboundInterceptor
    ) -> worker.ActivityInboundInterceptor:
        return _ActivityInbound(next, self)

    def workflow_interceptor_class(
        self, input: worker.WorkflowInterceptorClassInput
    ) -> type[worker.WorkflowInboundInterceptor]:
        # No sandbox stands between workflow code and this object: the class bound to it
        # reaches it directly (Temporal passes it through the sandbox's extern functions).
        return type(
            "BoundTracingWorkflowInboundInterceptor",
            (TracingWorkflowInboundInterceptor,),
            {"root": self},
        )

    # -- context in and out of headers ----------------------------------------------------------
    def headers_with(
        self, headers: Mapping[str, Payload], context: opentelemetry.context.Context | None = None
    ) -> Mapping[str, Payload]:
        carrier: _Carrier = {}
        opentelemetry.propagate.inject(carrier, context)
        if not carrier:
            return headers
        return {**headers, self.header_key: self.payload_converter.to_payload(carrier)}

    def carrier_of(self, headers: Mapping[str, Payload]) -> _Carrier | None:
        payload = headers.get(self.header_key)
        if payload is None:
            return None
        carrier: _Carrier | None = self.payload_converter.from_payload(payload, dict)
        return carrier or None

    def context_of(self, headers: Mapping[str, Payload]) -> opentelemetry.context.Context | None:
        carrier = self.carrier_of(headers)
        return None if carrier is None else opentelemetry.propagate.extract(carrier)

    @contextlib.contextmanager
    def span(
        self,
        name: str,
        *,
        attributes: dict[str, str],
        kind: SpanKind,
        headers_of: _HasHeaders | None = None,
        context: opentelemetry.context.Context | None = None,
    ) -> Iterator[None]:
        """A span around a call outside workflow code, its context put on ``headers_of``."""
        with self.tracer.start_as_current_span(
            name,
            context=context,
            attributes=attributes,
            kind=kind,
            set_status_on_exception=False,
        ) as span:
            if headers_of is not None:
                headers_of.headers = self.headers_with(headers_of.headers)
            try:
                yield
            except Exception as exc:
                if not (
                    isinstance(exc, ApplicationError)
                    and exc.category == ApplicationErrorCategory.BENIGN
                ):
                    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                raise


class _ClientOutbound(client.OutboundInterceptor):
    def __init__(self, next: client.OutboundInterceptor, root: TracingInterceptor) -> None:
        super().__init__(next)
        self.root = root

    async def start_workflow(self, input: client.StartWorkflowInput) -> Any:
        prefix = "SignalWithStartWorkflow" if input.start_signal else "StartWorkflow"
        with self.root.span(
            f"{prefix}:{input.workflow}",
            attributes={"temporalWorkflowID": input.id},
            kind=SpanKind.CLIENT,
            headers_of=input,
        ):
            return await super().start_workflow(input)

    async def signal_workflow(self, input: client.SignalWorkflowInput) -> None:
        with self.root.span(
            f"SignalWorkflow:{input.signal}",
            attributes={"temporalWorkflowID": input.id},
            kind=SpanKind.CLIENT,
            headers_of=input,
        ):
            await super().signal_workflow(input)

    async def query_workflow(self, input: client.QueryWorkflowInput) -> Any:
        with self.root.span(
            f"QueryWorkflow:{input.query}",
            attributes={"temporalWorkflowID": input.id},
            kind=SpanKind.CLIENT,
            headers_of=input,
        ):
            return await super().query_workflow(input)

    async def start_workflow_update(self, input: client.StartWorkflowUpdateInput) -> Any:
        with self.root.span(
            f"StartWorkflowUpdate:{input.update}",
            attributes={"temporalWorkflowID": input.id},
            kind=SpanKind.CLIENT,
            headers_of=input,
        ):
            return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(
        self, input: client.StartWorkflowUpdateWithStartInput
    ) -> Any:
        start, update = input.start_workflow_input, input.update_workflow_input
        with self.root.span(
            f"StartUpdateWithStartWorkflow:{start.workflow}",
            attributes={"temporalWorkflowID": start.id},
            kind=SpanKind.CLIENT,
            headers_of=start,
        ):
            if self.root.header_key in start.headers:
                update.headers = {
                    **update.headers,
                    self.root.header_key: start.headers[self.root.header_key],
                }
            return await super().start_update_with_start_workflow(input)


class _ActivityInbound(worker.ActivityInboundInterceptor):
    def __init__(self, next: worker.ActivityInboundInterceptor, root: TracingInterceptor) -> None:
        super().__init__(next)
        self.root = root

    async def execute_activity(self, input: worker.ExecuteActivityInput) -> Any:
        info = activity.info()
        attributes = {
            "temporalActivityID": info.activity_id,
            "temporalWorkflowID": info.workflow_id,
            "temporalRunID": info.workflow_run_id,
        }
        with self.root.span(
            f"RunActivity:{info.activity_type}",
            attributes=attributes,
            kind=SpanKind.SERVER,
            context=self.root.context_of(input.headers),
        ):
            return await super().execute_activity(input)


class TracingWorkflowInboundInterceptor(worker.WorkflowInboundInterceptor):
    """The workflow half of :class:`TracingInterceptor` (its ``workflow_interceptor_class``
    binds a subclass to it). Every span it makes is complete at once, at workflow time."""

    root: TracingInterceptor

    def init(self, outbound: worker.WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOutbound(outbound, self))

    async def execute_workflow(self, input: worker.ExecuteWorkflowInput) -> Any:
        with self.workflow_context(success_is_complete=True):
            self.completed_span(
                f"RunWorkflow:{workflow.info().workflow_type}", kind=SpanKind.SERVER
            )
            return await super().execute_workflow(input)

    async def handle_signal(self, input: worker.HandleSignalInput) -> None:
        with self.workflow_context(success_is_complete=False):
            self.completed_span(
                f"HandleSignal:{input.signal}",
                link=self.root.carrier_of(input.headers),
                kind=SpanKind.SERVER,
            )
            await super().handle_signal(input)

    async def handle_query(self, input: worker.HandleQueryInput) -> Any:
        # Traced only when the caller was: its span is the parent, the workflow's a link.
        with suspended():
            context = self.root.context_of(input.headers) or opentelemetry.context.Context()
            token = opentelemetry.context.attach(context)
        try:
            self.completed_span(
                f"HandleQuery:{input.query}",
                link=self.root.carrier_of(workflow.info().headers),
                kind=SpanKind.SERVER,
                even_on_replay=True,  # a query is answered once, however the state was rebuilt
            )
            return await super().handle_query(input)
        finally:
            _detach(token, context)

    def handle_update_validator(self, input: worker.HandleUpdateInput) -> None:
        with self.workflow_context(success_is_complete=False):
            self.completed_span(
                f"ValidateUpdate:{input.update}",
                link=self.root.carrier_of(input.headers),
                kind=SpanKind.SERVER,
            )
            super().handle_update_validator(input)

    async def handle_update_handler(self, input: worker.HandleUpdateInput) -> Any:
        with self.workflow_context(success_is_complete=False):
            self.completed_span(
                f"HandleUpdate:{input.update}",
                link=self.root.carrier_of(input.headers),
                kind=SpanKind.SERVER,
            )
            return await super().handle_update_handler(input)

    @contextlib.contextmanager
    def workflow_context(self, *, success_is_complete: bool) -> Iterator[None]:
        """Run a handler under the context the workflow was started in (from its start's
        headers), recording ``CompleteWorkflow`` when the workflow ends here."""
        with suspended():
            context = self.root.context_of(workflow.info().headers)
            context = context or opentelemetry.context.Context()
            token = opentelemetry.context.attach(context)
        failure: BaseException | None = None
        try:
            yield
        except FailureError as exc:  # what closes the workflow as failed
            failure = exc
            raise
        else:
            failure = None
            if success_is_complete:
                self.completed_span(f"CompleteWorkflow:{workflow.info().workflow_type}")
        finally:
            if failure is not None:
                self.completed_span(
                    f"CompleteWorkflow:{workflow.info().workflow_type}", exception=failure
                )
            _detach(token, context)

    def completed_span(
        self,
        name: str,
        *,
        link: _Carrier | None = None,
        headers_of: _HasHeaders | None = None,
        even_on_replay: bool = False,
        exception: BaseException | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> None:
        """A span that starts and ends now (the workflow's time), under the current context;
        its context goes on ``headers_of``. None while replaying."""
        if workflow.unsafe.is_replaying() and not even_on_replay:
            return
        info = workflow.info()
        moment = workflow.time_ns()
        with suspended():
            parent = opentelemetry.context.get_current()
            untraced = (
                opentelemetry.trace.get_current_span(parent) is opentelemetry.trace.INVALID_SPAN
            )
            if untraced and not self.root.always_create_workflow_spans:
                return
            links = []
            if link:
                linked = opentelemetry.trace.get_current_span(opentelemetry.propagate.extract(link))
                if linked is not opentelemetry.trace.INVALID_SPAN:
                    links.append(opentelemetry.trace.Link(linked.get_span_context()))
            span = self.root.tracer.start_span(
                name,
                parent,
                kind=kind,
                attributes={"temporalWorkflowID": info.workflow_id, "temporalRunID": info.run_id},
                links=links,
                start_time=moment,
            )
            if exception is not None:
                span.record_exception(exception)
            span.end(end_time=moment)
            if headers_of is not None:
                context = opentelemetry.trace.set_span_in_context(span, parent)
                headers_of.headers = self.root.headers_with(headers_of.headers, context)

    def context_to(self, input: _HasHeaders) -> None:
        """Put the current context on an outbound call, with no span of its own."""
        with suspended():
            input.headers = self.root.headers_with(input.headers)


def _detach(token: object, context: opentelemetry.context.Context) -> None:
    # A workflow evicted from the cache has its coroutines closed by the garbage collector,
    # in another context: there is nothing to detach then.
    with suspended():
        if opentelemetry.context.get_current() is context:
            opentelemetry.context.detach(token)  # type: ignore[arg-type]


class _WorkflowOutbound(worker.WorkflowOutboundInterceptor):
    def __init__(
        self, next: worker.WorkflowOutboundInterceptor, root: TracingWorkflowInboundInterceptor
    ) -> None:
        super().__init__(next)
        self.root = root

    def start_activity(self, input: worker.StartActivityInput) -> Any:
        self.root.completed_span(
            f"StartActivity:{input.activity}", headers_of=input, kind=SpanKind.CLIENT
        )
        return super().start_activity(input)

    def start_local_activity(self, input: worker.StartLocalActivityInput) -> Any:
        self.root.completed_span(
            f"StartActivity:{input.activity}", headers_of=input, kind=SpanKind.CLIENT
        )
        return super().start_local_activity(input)

    async def start_child_workflow(self, input: worker.StartChildWorkflowInput) -> Any:
        self.root.completed_span(
            f"StartChildWorkflow:{input.workflow}", headers_of=input, kind=SpanKind.CLIENT
        )
        return await super().start_child_workflow(input)

    async def signal_child_workflow(self, input: worker.SignalChildWorkflowInput) -> None:
        self.root.completed_span(
            f"SignalChildWorkflow:{input.signal}", headers_of=input, kind=SpanKind.SERVER
        )
        await super().signal_child_workflow(input)

    async def signal_external_workflow(self, input: worker.SignalExternalWorkflowInput) -> None:
        self.root.completed_span(
            f"SignalExternalWorkflow:{input.signal}", headers_of=input, kind=SpanKind.CLIENT
        )
        await super().signal_external_workflow(input)

    def continue_as_new(self, input: worker.ContinueAsNewInput) -> NoReturn:
        self.root.context_to(input)  # the next run goes on in the same trace
        super().continue_as_new(input)
