"""``perdure worker --metrics-port``: serve the worker's Prometheus metrics over HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from perdure.contrib.prometheus import PrometheusMetrics


def prometheus_metrics() -> PrometheusMetrics:
    """A :class:`PrometheusMetrics` on prometheus_client's default registry (with its process
    and platform collectors), or a clear error if the extra is not installed."""
    try:
        from perdure.contrib.prometheus import PrometheusMetrics
    except ImportError as exc:
        raise click.ClickException(
            "Metrics need prometheus_client: pip install 'perdure[prometheus]'"
        ) from exc
    return PrometheusMetrics()


@contextlib.contextmanager
def metrics_server(
    metrics: PrometheusMetrics | None, host: str, port: int | None
) -> Iterator[None]:
    """Serve ``/metrics`` (any path, in fact: prometheus_client's server) while in the block."""
    if metrics is None or port is None:
        yield
        return
    from prometheus_client import start_http_server

    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise click.ClickException(
            f"Cannot serve metrics on {host}:{port}: {exc.strerror or exc}. Choose another "
            "--metrics-port (or --metrics-host)."
        ) from exc
    click.echo(f"perdure worker: metrics on http://{host}:{server.server_port}/metrics")
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
