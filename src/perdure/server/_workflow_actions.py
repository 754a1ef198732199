"""Acting on workflows: start, signal, query, update, cancel, terminate, reset, delete."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from starlette.responses import Response

from perdure._operate.inputs import typed_search_attributes
from perdure._operate.shapes import workflow_json
from perdure.client import ResetType, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from perdure.common import Priority, RetryPolicy
from perdure.server._models import (
    Answer,
    QueryBody,
    ReasonBody,
    ResetBody,
    RetryPolicyBody,
    SignalBody,
    StartWorkflowBody,
    UpdateBody,
    Workflow,
    WorkflowRef,
)
from perdure.server._openapi_params import NamePath, RunIdQuery, WorkflowIdPath, problems
from perdure.server._paths import UnquotedRoute
from perdure.server._state import JSON, server_state, user_values

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"], route_class=UnquotedRoute)


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def _retry_policy(body: RetryPolicyBody | None) -> RetryPolicy | None:
    if body is None:
        return None
    return RetryPolicy(
        initial_interval=timedelta(seconds=body.initial_interval),
        backoff_coefficient=body.backoff_coefficient,
        maximum_interval=_seconds(body.maximum_interval),
        maximum_attempts=body.maximum_attempts,
        non_retryable_error_types=body.non_retryable_error_types,
    )


def _ref(workflow_id: str, run_id: str | None) -> Response:
    return JSON({"workflow_id": workflow_id, "run_id": run_id})


@router.post(
    "",
    status_code=201,
    response_model=Workflow,
    responses=problems(409, 413),
    summary="Start a workflow (by type name, with JSON arguments)",
)
async def start_workflow(request: Request, body: StartWorkflowBody) -> Response:
    client = server_state(request).client
    with user_values():
        handle = await client.start_workflow(
            body.workflow_type,
            args=body.args,
            id=body.workflow_id or str(uuid.uuid4()),
            task_queue=body.task_queue,
            execution_timeout=_seconds(body.execution_timeout),
            run_timeout=_seconds(body.run_timeout),
            task_timeout=_seconds(body.task_timeout),
            start_delay=_seconds(body.start_delay),
            id_reuse_policy=WorkflowIDReusePolicy[body.id_reuse_policy],
            id_conflict_policy=WorkflowIDConflictPolicy[body.id_conflict_policy],
            retry_policy=_retry_policy(body.retry_policy),
            priority=None if body.priority is None else Priority(**body.priority.model_dump()),
            memo=body.memo,
            search_attributes=(
                typed_search_attributes(body.search_attributes) if body.search_attributes else None
            ),
            start_signal=body.start_signal,
            start_signal_args=body.start_signal_args,
            start_signal_request_id=body.start_signal_request_id,
        )
    desc = await client.get_workflow_handle(handle.id, run_id=handle.result_run_id).describe()
    return JSON(workflow_json(desc), status_code=201)


@router.post(
    "/{workflow_id}/signals/{name}",
    response_model=WorkflowRef,
    responses=problems(404, 413),
    summary="Send a signal",
)
async def signal_workflow(
    request: Request,
    workflow_id: WorkflowIdPath,
    name: NamePath,
    body: Annotated[SignalBody | None, Body()] = None,
    run_id: RunIdQuery = None,
) -> Response:
    handle = server_state(request).client.get_workflow_handle(workflow_id, run_id=run_id)
    body = body or SignalBody()
    with user_values():
        await handle.signal(name, args=body.args, request_id=body.request_id)
    return _ref(workflow_id, run_id)


@router.post(
    "/{workflow_id}/queries/{name}",
    response_model=Answer,
    responses=problems(404, 413, 422, 504),
    summary="Ask a query (answered by a worker; a read token may ask)",
)
async def query_workflow(
    request: Request,
    workflow_id: WorkflowIdPath,
    name: NamePath,
    body: Annotated[QueryBody | None, Body()] = None,
    run_id: RunIdQuery = None,
) -> Response:
    body = body or QueryBody()
    handle = server_state(request).client.get_workflow_handle(workflow_id, run_id=run_id)
    with user_values():
        result: Any = await handle.query(name, args=body.args, rpc_timeout=body.timeout)
    return JSON({"result": result})


@router.post(
    "/{workflow_id}/updates/{name}",
    response_model=Answer,
    responses=problems(404, 413, 422, 504),
    summary="Send an update and wait for its result",
)
async def update_workflow(
    request: Request,
    workflow_id: WorkflowIdPath,
    name: NamePath,
    body: Annotated[UpdateBody | None, Body()] = None,
    run_id: RunIdQuery = None,
) -> Response:
    body = body or UpdateBody()
    handle = server_state(request).client.get_workflow_handle(workflow_id, run_id=run_id)
    with user_values():
        result: Any = await handle.execute_update(
            name, args=body.args, id=body.update_id, rpc_timeout=body.timeout
        )
    return JSON({"result": result})


@router.post(
    "/{workflow_id}/cancel",
    response_model=WorkflowRef,
    responses=problems(404),
    summary="Ask a workflow to cancel",
)
async def cancel_workflow(
    request: Request,
    workflow_id: WorkflowIdPath,
    body: Annotated[ReasonBody | None, Body()] = None,
    run_id: RunIdQuery = None,
) -> Response:
    handle = server_state(request).client.get_workflow_handle(workflow_id, run_id=run_id)
    await handle.cancel(reason=(body or ReasonBody()).reason)
    return _ref(workflow_id, run_id)


@router.post(
    "/{workflow_id}/terminate",
    response_model=WorkflowRef,
    responses=problems(404),
    summary="End a workflow at once",
)
async def terminate_workflow(
    request: Request,
    workflow_id: WorkflowIdPath,
    body: Annotated[ReasonBody | None, Body()] = None,
    run_id: RunIdQuery = None,
) -> Response:
    handle = server_state(request).client.get_workflow_handle(workflow_id, run_id=run_id)
    await handle.terminate(reason=(body or ReasonBody()).reason or None)
    return _ref(workflow_id, run_id)


@router.post(
    "/{workflow_id}/reset",
    response_model=WorkflowRef,
    responses=problems(404),
    summary="Run a workflow task again in a new run; answers the new run's id",
)
async def reset_workflow(
    request: Request, workflow_id: WorkflowIdPath, body: ResetBody, run_id: RunIdQuery = None
) -> Response:
    handle = server_state(request).client.get_workflow_handle(workflow_id, run_id=run_id)
    new_run_id = await handle.reset(
        body.event_id,
        reset_type=ResetType[body.reset_type],
        reason=body.reason,
        reapply_signals=body.reapply_signals,
    )
    return _ref(workflow_id, new_run_id)


@router.delete(
    "/{workflow_id}",
    response_model=WorkflowRef,
    responses=problems(404),
    summary="Delete a run and its history (an open run is terminated first)",
)
async def delete_workflow(
    request: Request, workflow_id: WorkflowIdPath, run_id: RunIdQuery = None
) -> Response:
    await server_state(request).client.get_workflow_handle(workflow_id, run_id=run_id).delete()
    return _ref(workflow_id, run_id)
