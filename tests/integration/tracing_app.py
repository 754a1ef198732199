"""The workflows test_tracing.py traces, and a worker process for its two-process case.

Usage::

    python tracing_app.py DB SPANS   # run a worker until killed, each span a JSON line in SPANS
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import timedelta

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from perdure import Client, Worker, activity, workflow
from perdure.contrib.opentelemetry import TracingInterceptor

TASK_QUEUE = "traced"


@activity.defn
async def charge(item: str) -> str:
    return f"charged {item}"


@workflow.defn
class Ship:
    @workflow.run
    async def run(self, what: str) -> str:
        return f"shipped ({what})"


@workflow.defn
class Order:
    def __init__(self) -> None:
        self.approved = False
        self.charged = ""

    @workflow.run
    async def run(self, item: str) -> str:
        self.charged = await workflow.execute_activity(
            charge, item, start_to_close_timeout=timedelta(seconds=10)
        )
        await workflow.wait_condition(lambda: self.approved)
        return await workflow.execute_child_workflow(
            Ship.run, self.charged, id=f"{workflow.info().workflow_id}-ship"
        )

    @workflow.signal
    def approve(self) -> None:
        self.approved = True

    @workflow.update
    def note(self, text: str) -> str:
        return f"noted {text}"

    @workflow.query
    def status(self) -> str:
        return self.charged or "new"


def span_record(span: ReadableSpan) -> dict[str, object]:
    """What the tests compare of a span, from whichever process made it."""
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "trace_id": context.trace_id,
        "span_id": context.span_id,
        "parent_id": span.parent.span_id if span.parent is not None else None,
        "links": [link.context.span_id for link in span.links],
    }


class JsonLinesExporter(SpanExporter):
    """Each span as one JSON line, written as it ends (the process may be killed)."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            self._file.write(json.dumps(span_record(span)) + "\n")
        self._file.flush()
        return SpanExportResult.SUCCESS


async def _worker(db: str, spans: str) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(spans)))
    tracing = TracingInterceptor(provider.get_tracer("worker"))
    client = await Client.connect(db, interceptors=[tracing])
    worker = Worker(client, task_queue=TASK_QUEUE, workflows=[Order, Ship], activities=[charge])
    await worker.run()


if __name__ == "__main__":
    asyncio.run(_worker(sys.argv[1], sys.argv[2]))
