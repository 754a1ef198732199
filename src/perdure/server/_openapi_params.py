"""The parameters many routes share, and the problem responses each route documents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from perdure.server._models import Problem

WorkflowIdPath = Annotated[
    str,
    Path(
        min_length=1,
        description="The workflow id, percent-encoded (an id may contain `/`: `a%2Fb`).",
    ),
]
NamePath = Annotated[str, Path(min_length=1, description="The handler's name, percent-encoded.")]
ScheduleIdPath = Annotated[str, Path(min_length=1, description="The schedule id, percent-encoded.")]
RunIdQuery = Annotated[
    str | None,
    Query(
        min_length=1, max_length=1000, description="A run of the workflow (default: its latest)."
    ),
]


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem responses a route may answer with, beyond those every route may (400 for
    a request that does not match the schema, 401, 403: see the app's OpenAPI hook)."""
    descriptions = {
        400: "Bad request (a problem document)",
        404: "No such workflow run (or activity, or schedule)",
        409: "A run with this workflow id is open (or a schedule has this id)",
        413: "A payload over the size limit",
        422: "The workflow refused: the query or update failed",
        503: "The database is not reachable",
        504: "No worker answered in time",
    }
    return {s: {"model": Problem, "description": descriptions[s]} for s in statuses}
