"""docs/grafana: the dashboard and the alert rules are built on names perdure exports.

The names are those of a real registry scraped after a worker ran workflows; the alert rules
are checked by ``promtool check rules`` where promtool is installed, and by their structure
otherwise."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from perdure import Worker, activity, workflow
from perdure.contrib.prometheus import PrometheusMetrics
from perdure.testing import WorkflowEnvironment

GRAFANA = Path(__file__).resolve().parents[2] / "docs" / "grafana"
NAME = re.compile(r"\bperdure_[a-z_]+")
DURATION = re.compile(r"^\d+[smhd]$")
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}


@activity.defn
async def hello(name: str) -> str:
    return f"hello {name}"


@workflow.defn
class Hello:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            hello, name, start_to_close_timeout=timedelta(seconds=10)
        )


async def exported_names() -> set[str]:
    """The sample names of a registry a worker reported to, as Prometheus stores them."""
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    async with (
        await WorkflowEnvironment.start_time_skipping() as env,
        Worker(env.client, task_queue="q", workflows=[Hello], activities=[hello], metrics=metrics),
    ):
        assert await env.client.execute_workflow(Hello.run, "x", id="h", task_queue="q")
        await metrics.update_store_gauges()
    names = set()
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
        names.update(s.name for s in family.samples)
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GRAFANA / "perdure-dashboard.json").read_text())
    return loaded


def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load((GRAFANA / "alerts.yaml").read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


async def test_every_name_the_dashboard_and_alerts_use_is_exported() -> None:
    exported = await exported_names()
    panels = [p for p in dashboard()["panels"] if p["type"] != "row"]
    used = {n for p in panels for t in p["targets"] for n in NAME.findall(t["expr"])}
    used |= {n for r in rules() for n in NAME.findall(r["expr"])}
    used |= {n for v in dashboard()["templating"]["list"] for n in NAME.findall(str(v))}
    assert used - exported == set()
    # And the dashboard shows every metric family perdure exports.
    families = {n.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum") for n in used}
    shown = {n.removesuffix("_total") for n in families}
    perdure_families = {
        n.removesuffix("_total")
        for n in exported
        if n.startswith("perdure_") and not n.endswith(("_bucket", "_count", "_sum", "_created"))
    }
    assert perdure_families - shown == set()


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    dash = dashboard()
    assert dash["schemaVersion"] >= 36 and dash["uid"] and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["type"] == "timeseries" and panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert variables == {"datasource", "namespace", "task_queue"}


def test_the_dashboards_queries_are_promql(tmp_path: Path) -> None:
    """Where promtool is installed: every panel's query parses (as a recording rule, with
    Grafana's variables as a dashboard would fill them in)."""
    promtool = shutil.which("promtool")
    exprs = [
        t["expr"]
        .replace("$__rate_interval", "5m")
        .replace("$namespace", ".*")
        .replace("$task_queue", ".*")
        for p in dashboard()["panels"]
        if p["type"] != "row"
        for t in p["targets"]
    ]
    assert exprs and all("$" not in e for e in exprs)
    if promtool is None:
        return
    rules_file = tmp_path / "dashboard_rules.yaml"
    rules_file.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "dashboard",
                        "rules": [{"record": f"panel_{i}", "expr": e} for i, e in enumerate(exprs)],
                    }
                ]
            }
        )
    )
    result = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_are_valid() -> None:
    path = GRAFANA / "alerts.yaml"
    promtool = shutil.which("promtool")
    if promtool is not None:
        result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True)
        assert result.returncode == 0, result.stdout + result.stderr
    # Without promtool (and with it): the structure Prometheus's rule files have.
    loaded = yaml.safe_load(path.read_text())
    assert set(loaded) == {"groups"}
    for group in loaded["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["name"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            assert DURATION.match(rule["for"]), rule["for"]
            assert rule["labels"]["severity"] in {"info", "warning", "critical"}
            assert rule["annotations"]["summary"]
            expr = rule["expr"]
            assert expr.count("(") == expr.count(")"), rule["alert"]
    alerts = {r["alert"] for r in rules()}
    assert {
        "PerdureStuckWorkflows",
        "PerdureTaskBacklogOld",
        "PerdureActivityFailureRateHigh",
        "PerdureScheduleLagging",
    } <= alerts
