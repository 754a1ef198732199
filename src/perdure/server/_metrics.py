"""``GET /metrics``: the store's gauges (and the server process's), in Prometheus's text format.

It needs a token like every other route (a ``read`` token is enough: Prometheus sends it with
``authorization: {credentials_file: ...}`` in its scrape config), unless the app was made with
``public_metrics=True`` (``perdure server --public-metrics``), for a scraper on a network that
is trusted anyway: the gauges show task queue and workflow type names and counts, no data.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from perdure.server._models import Problem
from perdure.server._problems import problem
from perdure.server._state import server_state

router = APIRouter()

_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def server_metrics() -> Any:
    """A PrometheusMetrics on a registry of the app's own, with the process's collectors, or
    None without prometheus_client."""
    try:
        from prometheus_client import (
            GC_COLLECTOR,
            PLATFORM_COLLECTOR,
            PROCESS_COLLECTOR,
            CollectorRegistry,
        )

        from perdure.contrib.prometheus import PrometheusMetrics
    except ImportError:
        return None
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return PrometheusMetrics(registry)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {_TEXT: {"schema": {"type": "string"}}}},
        404: {"model": Problem, "description": "prometheus_client is not installed"},
    },
    tags=["health"],
    summary="The store's gauges in Prometheus's text format (a read token is enough)",
)
async def metrics(request: Request) -> Response:
    state = server_state(request)
    sink = state.metrics
    if sink is None:
        return problem(
            404,
            "Metrics need prometheus_client on the server: pip install 'perdure[prometheus]'",
            title="Not available",
        )
    from prometheus_client import generate_latest

    await sink.update_store_gauges(state.client.store.gauges)
    return Response(generate_latest(sink.registry), media_type=_TEXT)
