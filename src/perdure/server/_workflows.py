"""Looking at workflows: list, count, describe, history, result."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from perdure._operate.history_page import read_history_page
from perdure._operate.outcome import outcome
from perdure._operate.shapes import (
    count_json,
    description_json,
    events_json,
    outcome_json,
    workflow_json,
)
from perdure.server._models import (
    HistoryPage,
    WorkflowCount,
    WorkflowDescription,
    WorkflowOutcome,
    WorkflowPage,
)
from perdure.server._openapi_params import RunIdQuery, WorkflowIdPath, problems
from perdure.server._paths import UnquotedRoute
from perdure.server._state import JSON, decode_page_token, encode_page_token, server_state

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"], route_class=UnquotedRoute)

VisibilityQuery = Annotated[
    str | None,
    Query(
        description="A visibility query, e.g. `WorkflowType = 'Order' AND ExecutionStatus = "
        "'Running'` (all workflows without one).",
    ),
]
PageToken = Annotated[
    str | None,
    Query(description="The next_page_token of the previous page (the first page without)."),
]


@router.get(
    "",
    response_model=WorkflowPage,
    responses=problems(),
    summary="List workflows (newest first), a page at a time",
)
async def list_workflows(
    request: Request,
    query: VisibilityQuery = None,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
    next_page_token: PageToken = None,
) -> Response:
    listing = server_state(request).client.list_workflows(
        query or None, page_size=page_size, next_page_token=decode_page_token(next_page_token)
    )
    await listing.fetch_next_page()
    return JSON(
        {
            "workflows": [workflow_json(wf) for wf in listing.current_page or ()],
            "next_page_token": encode_page_token(listing.next_page_token),
        }
    )


@router.get(
    "/count",
    response_model=WorkflowCount,
    responses=problems(),
    summary="Count the workflows a visibility query matches",
    description="With `GROUP BY ExecutionStatus` at the end of the query, also the count of "
    "each status, in `groups`. A count costs about 150 ms per million matching runs; with "
    "`max_count`, each count (each group's) stops there, and `capped` says whether one did: "
    "show it as `10,000+`.",
)
async def count_workflows(
    request: Request,
    query: VisibilityQuery = None,
    max_count: Annotated[int | None, Query(ge=1, le=10_000_000)] = None,
) -> Response:
    count = await server_state(request).client.count_workflows(query or None, max_count=max_count)
    return JSON(count_json(count, query or None, max_count))


@router.get(
    "/{workflow_id}",
    response_model=WorkflowDescription,
    responses=problems(404),
    summary="Describe a workflow run",
)
async def describe_workflow(
    request: Request, workflow_id: WorkflowIdPath, run_id: RunIdQuery = None
) -> Response:
    client = server_state(request).client
    desc = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    return JSON(description_json(desc))


def _history_token(run_id: str, last_event_id: int) -> str | None:
    return encode_page_token(f"{last_event_id}:{run_id}".encode())


def _read_history_token(token: str | None, run_id: str | None) -> tuple[str | None, int]:
    raw = decode_page_token(token)
    if raw is None:
        return run_id, 0
    after, _, token_run = raw.decode("utf-8", "replace").partition(":")
    if not after.isdigit() or not token_run or len(after) > 18:
        raise ValueError("next_page_token is not a token of a workflow history")
    if run_id is not None and run_id != token_run:
        raise ValueError(f"next_page_token is a token of run {token_run}, not of run {run_id}")
    return token_run, int(after)


@router.get(
    "/{workflow_id}/history",
    response_model=HistoryPage,
    responses=problems(404),
    summary="A page of a run's event history",
    description="The history document (`WorkflowHistory.to_json()`), a page at a time: pass "
    "`next_page_token` for the next page. With `decode=true` the events' payloads are decoded "
    "to their JSON values, for reading. With `wait`, a page that would be empty waits up to "
    "that many seconds for the run's next event, and the token stays set while the run is "
    "open (a live view).",
)
async def workflow_history(
    request: Request,
    workflow_id: WorkflowIdPath,
    run_id: RunIdQuery = None,
    decode: bool = False,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 1000,
    next_page_token: PageToken = None,
    wait: Annotated[float, Query(ge=0, le=60, description="Seconds; 0: do not wait.")] = 0,
) -> Response:
    client = server_state(request).client
    run, after = _read_history_token(next_page_token, run_id)
    page = await read_history_page(
        client, workflow_id, run, after_event_id=after, page_size=page_size, wait=wait
    )
    last = page.last_event_id or after
    more = page.more or (wait > 0 and not page.closed)
    body: dict[str, object] = {}
    if decode:
        events: list[object] = list(await events_json(client.data_converter, page.events))
    else:
        body = {"format": "perdure.workflow-history", "version": 1}
        events = [e.to_json_dict() for e in page.events]
    body.update(
        {
            "workflow_id": page.workflow_id,
            "run_id": page.run_id,
            "events": events,
            "next_page_token": _history_token(page.run_id, last) if more else None,
        }
    )
    return JSON(body)


@router.get(
    "/{workflow_id}/result",
    response_model=WorkflowOutcome,
    responses=problems(404),
    summary="How the workflow ended (or RUNNING), waiting up to `wait` seconds",
    description="Follows the run through continue-as-new, retries and resets, as "
    "`WorkflowHandle.result()` does. `{status: COMPLETED, result}`, `{status, failure}` for a "
    "run that failed, was cancelled, terminated or timed out, or `{status: RUNNING}` if it "
    "had not closed within `wait` seconds.",
)
async def workflow_result(
    request: Request,
    workflow_id: WorkflowIdPath,
    run_id: RunIdQuery = None,
    wait: Annotated[float, Query(ge=0, le=300, description="Seconds; 0: answer at once.")] = 0,
) -> Response:
    found = await outcome(server_state(request).client, workflow_id, run_id, wait)
    return JSON(outcome_json(found))
