"""``GET /metrics``: the store's gauges in Prometheus's text format, behind a token (a read
token is enough) unless the app serves them publicly."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from server_support import InProcess, in_process

from perdure import Worker, workflow
from perdure.contrib.prometheus import PrometheusMetrics


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_show_the_store_gauges_to_a_read_token(on_store: InProcess) -> None:
    app = on_store
    await app.client.start_workflow("Invoice", id="inv-1", task_queue="billing")
    await app.client.start_workflow("Invoice", id="inv-2", task_queue="billing")
    refused = await app.http.get("/metrics")
    assert refused.status_code == 401
    answer = await app.http.get("/metrics", headers=app.auth(app.read))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    got = samples(answer.text)
    ns = ("namespace", "default")
    assert got[("perdure_workflows_open", frozenset({ns, ("workflow_type", "Invoice")}))] == 2
    backlog = frozenset({ns, ("task_queue", "billing"), ("kind", "workflow")})
    assert got[("perdure_task_queue_backlog", backlog)] == 2
    assert got[("perdure_task_queue_backlog_age_seconds", backlog)] >= 0
    assert got[("perdure_timers_pending", frozenset())] == 0
    assert any(name == "process_cpu_seconds_total" for name, _ in got)


async def test_public_metrics_need_no_token(tmp_path: Path) -> None:
    async with in_process(f"sqlite:///{tmp_path / 'app.db'}", tmp_path, public_metrics=True) as app:
        answer = await app.http.get("/metrics")
        assert answer.status_code == 200
        assert "# TYPE perdure_workflows_open gauge" in answer.text
        # Only /metrics is opened: the rest still needs a token.
        assert (await app.http.get("/api/v1/workflows")).status_code == 401


@workflow.defn
class Hello:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"hello {name}"


async def test_an_app_serves_the_metrics_its_process_workers_report(tmp_path: Path) -> None:
    metrics = PrometheusMetrics(CollectorRegistry())
    db = f"sqlite:///{tmp_path / 'app.db'}"
    async with in_process(db, tmp_path, metrics=metrics) as app:
        async with Worker(app.client, task_queue="q", workflows=[Hello], metrics=metrics):
            assert await app.client.execute_workflow(Hello.run, "x", id="h", task_queue="q")
            answer = await app.http.get("/metrics", headers=app.auth(app.read))
        got = samples(answer.text)
        labels = {("namespace", "default"), ("task_queue", "q"), ("workflow_type", "Hello")}
        assert got[("perdure_workflow_completed_total", frozenset(labels))] == 1
        # The store gauges of the same registry, read at the scrape: none is open.
        assert ("perdure_workflows_open", frozenset(labels - {("task_queue", "q")})) not in got
        assert got[("perdure_timers_pending", frozenset())] == 0
