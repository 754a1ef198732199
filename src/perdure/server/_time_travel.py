"""Replaying a run's history on the workflow code ``perdure server MODULE`` was given: its
state at a chosen event, and whether it replays on the current code at all."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from perdure._operate.replay import workflow_type
from perdure._operate.time_travel import WorkflowCodeMissing, state_at
from perdure.server._models import Problem
from perdure.server._openapi_params import RunIdQuery, WorkflowIdPath, problems
from perdure.server._paths import UnquotedRoute
from perdure.server._problems import problem
from perdure.server._schedule_models import ReplayCheck, ReplayedState
from perdure.server._state import JSON, server_state
from perdure.worker import Replayer

router = APIRouter(prefix="/api/v1/workflows", tags=["replay"], route_class=UnquotedRoute)

_RESPONSES = {
    **problems(404),
    409: {
        "model": Problem,
        "description": "The server was not given the workflow code (perdure server --db URL "
        "MODULE), or not the code of this workflow's type",
    },
}
_NO_CODE = (
    "The server was not given the workflow code: start it with the module of the "
    "application's workflows (perdure server --db URL myapp.workflows)"
)


@router.get(
    "/{workflow_id}/replay",
    response_model=ReplayCheck,
    responses=_RESPONSES,
    summary="Would this history replay on the server's workflow code?",
    description="Replays the run's whole history on the workflow classes `perdure server "
    "MODULE` loaded, as `perdure replay` does: `ok` false, with the reason, where the code "
    "no longer matches what the run recorded.",
)
async def replay_check(
    request: Request, workflow_id: WorkflowIdPath, run_id: RunIdQuery = None
) -> Response:
    state = server_state(request)
    if not state.workflows:
        return problem(409, _NO_CODE, title="No workflow code")
    history = await state.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    replayer = Replayer(workflows=state.workflows, data_converter=state.client.data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    failure = result.replay_failure
    return JSON(
        {
            "workflow_id": history.workflow_id,
            "run_id": history.run_id,
            "workflow_type": workflow_type(history),
            "ok": failure is None,
            "error": None if failure is None else str(failure),
        }
    )


@router.get(
    "/{workflow_id}/replay/state",
    response_model=ReplayedState,
    responses=_RESPONSES,
    summary="The workflow's state at an event: its queries' answers and where its code waited",
    description="Replays the run's history on the server's workflow code through the last "
    "workflow task completed by `event_id`, then asks every query that takes no argument, "
    "and `__stack_trace`.",
)
async def replayed_state(
    request: Request,
    workflow_id: WorkflowIdPath,
    event_id: Annotated[int, Query(ge=1, le=2**62, description="The event to stop at.")],
    run_id: RunIdQuery = None,
) -> Response:
    state = server_state(request)
    if not state.workflows:
        return problem(409, _NO_CODE, title="No workflow code")
    history = await state.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    try:
        found = await state_at(history, state.workflows, state.client.data_converter, event_id)
    except WorkflowCodeMissing as exc:
        return problem(409, str(exc), title="No workflow code")
    return JSON({"workflow_id": history.workflow_id, "run_id": history.run_id, **asdict(found)})
