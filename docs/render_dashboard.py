"""Render docs/images/dashboard.png: the panels of docs/grafana/perdure-dashboard.json drawn
from real data, without Grafana.

It runs a real load in this process (a SQLite file, workers with a ``PrometheusMetrics``:
orders with a flaky payment activity, some orders refused, reminders sleeping on durable
timers, a report queue whose worker starts late, a few workflows whose code is broken, a
schedule), then answers each panel's PromQL query over the load and draws it with matplotlib:

- with a Prometheus server binary (``--prometheus PATH``, or ``prometheus`` on PATH), that
  Prometheus scrapes the load every second and answers the queries itself (``query_range``);
- without one, the script scrapes its registry every ``--interval`` seconds and a small
  evaluator for the subset of PromQL the dashboard uses (``rate``, ``sum``/``max`` ``by``,
  ``histogram_quantile``, ``clamp_min``, ``+``, ``/``) answers them.

The image's title says which. Needs ``pip install matplotlib``.

    python docs/render_dashboard.py                 # about 70 s of load
    python docs/render_dashboard.py --seconds 20 --prometheus /usr/bin/prometheus
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import logging
import math
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from perdure import ApplicationError, Client, RetryPolicy, Worker, activity, workflow
from perdure.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
)
from perdure.contrib.prometheus import PrometheusMetrics

HERE = Path(__file__).resolve().parent
DASHBOARD = HERE / "grafana" / "perdure-dashboard.json"
OUT = HERE / "images" / "dashboard.png"

Labels = frozenset[tuple[str, str]]
Vector = dict[Labels, float]

# ------------------------------------------------------------------------------------------
# The load
# ------------------------------------------------------------------------------------------


@activity.defn
async def reserve(order: int) -> int:
    await asyncio.sleep(random.uniform(0.005, 0.02))
    return order


@activity.defn
async def charge(order: int) -> int:
    await asyncio.sleep(random.uniform(0.02, 0.12))
    if random.random() < 0.15:
        raise RuntimeError("payment provider timed out")
    return order


@activity.defn
async def ship(order: int) -> int:
    await asyncio.sleep(random.uniform(0.01, 0.05))
    return order


@activity.defn
async def build_report(n: int) -> int:
    await asyncio.sleep(random.uniform(0.05, 0.2))
    return n


QUICK = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5)


@workflow.defn
class Order:
    @workflow.run
    async def run(self, order: int) -> int:
        opts: dict[str, Any] = {
            "start_to_close_timeout": timedelta(seconds=10),
            "retry_policy": QUICK,
        }
        await workflow.execute_activity(reserve, order, **opts)
        if order % 11 == 0:
            raise ApplicationError("out of stock", non_retryable=True)
        await workflow.execute_activity(charge, order, **opts)
        return await workflow.execute_activity(ship, order, **opts)


@workflow.defn
class Reminder:
    @workflow.run
    async def run(self, seconds: float) -> None:
        await workflow.sleep(seconds)


@workflow.defn
class Report:
    @workflow.run
    async def run(self, n: int) -> int:
        return await workflow.execute_activity(
            build_report, n, start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn
class Broken:
    @workflow.run
    async def run(self) -> None:
        raise KeyError("a bug: this workflow's task fails until its code is fixed")


@dataclass
class Scrape:
    t: float
    samples: dict[str, Vector]


def parse(text: str) -> dict[str, Vector]:
    out: dict[str, Vector] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return out


async def run_load(registry: CollectorRegistry, seconds: float, interval: float) -> list[Scrape]:
    metrics = PrometheusMetrics(registry, store_interval=interval)
    scrapes: list[Scrape] = []
    with tempfile.TemporaryDirectory() as tmp:
        client = await Client.connect(f"sqlite:///{Path(tmp) / 'load.db'}", metrics=metrics)
        orders = Worker(
            client,
            task_queue="orders",
            workflows=[Order, Reminder, Broken],
            activities=[reserve, charge, ship],
            max_concurrent_activities=12,
        )
        reports = Worker(
            client, task_queue="reports", workflows=[Report], activities=[build_report],
            max_concurrent_activities=4,
        )  # fmt: skip
        await client.create_schedule(
            "nightly-report",
            Schedule(
                action=ScheduleActionStartWorkflow("Report", 0, id="report", task_queue="reports"),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=5))]),
            ),
        )
        started = time.monotonic()
        n = 0
        ids = itertools.count()
        async with orders:
            report_task: asyncio.Task[None] | None = None
            next_scrape = started
            while (now := time.monotonic()) - started < seconds:
                phase = (now - started) / seconds
                # Orders come in waves; a burst at 40% of the run fills the activity backlog.
                rate = 8 + 6 * math.sin(phase * 2 * math.pi * 2) + (40 if 0.4 < phase < 0.5 else 0)
                for _ in range(max(int(rate * 0.25), 0)):
                    n += 1
                    await client.start_workflow(Order.run, n, id=f"order-{n}", task_queue="orders")
                if random.random() < 0.3:
                    await client.start_workflow(
                        Reminder.run,
                        random.uniform(3, 25),
                        id=f"remind-{next(ids)}",
                        task_queue="orders",
                    )
                if random.random() < 0.25:
                    await client.start_workflow(
                        Report.run, n, id=f"report-{next(ids)}", task_queue="reports"
                    )
                if 0.3 < phase < 0.6 and random.random() < 0.05:
                    await client.start_workflow(
                        Broken.run, id=f"broken-{next(ids)}", task_queue="orders"
                    )
                if phase > 0.55 and report_task is None:  # the report worker is deployed late
                    report_task = asyncio.get_running_loop().create_task(reports.run())
                if now >= next_scrape:
                    await metrics.update_store_gauges()
                    text = generate_latest(registry).decode()
                    scrapes.append(Scrape(now - started, parse(text)))
                    next_scrape += interval
                await asyncio.sleep(0.25)
            await reports.shutdown()
            if report_task is not None:
                await report_task
        await client.close()
    return scrapes


# ------------------------------------------------------------------------------------------
# A small PromQL evaluator, for the dashboard's queries
# ------------------------------------------------------------------------------------------

TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?(?:e-?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<sel>\{[^}]*\})|(?P<range>\[[^\]]*\])|(?P<op>[(),/+]))"
)


class Query:
    """Parses one expression; ``at(i)`` evaluates it at scrape ``i``."""

    def __init__(self, expr: str, scrapes: list[Scrape], window: int) -> None:
        self.tokens = [
            (kind, m.group(kind))
            for m in TOKEN.finditer(expr)
            for kind in ("num", "name", "sel", "range", "op")
            if m.group(kind) is not None
        ]
        self.pos = 0
        self.scrapes = scrapes
        self.window = window
        self.tree = self._expr()

    def _kind(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _take(self, want: str | None = None) -> str:
        text = self.tokens[self.pos][1]
        if want is not None and text != want:
            raise ValueError(f"expected {want!r}, got {text!r}")
        self.pos += 1
        return text

    def _expr(self) -> Any:
        node = self._term()
        while self._peek() in ("/", "+"):
            node = ("op", self._take(), node, self._term())
        return node

    def _labels(self) -> list[str]:
        self._take("(")
        names = []
        while self._peek() != ")":
            names.append(self._take())
            if self._peek() == ",":
                self._take(",")
        self._take(")")
        return names

    def _term(self) -> Any:
        kind, text = self.tokens[self.pos]
        if kind == "num":
            self.pos += 1
            return ("num", float(text))
        self.pos += 1
        if text in ("sum", "max"):
            by = self._labels() if self._peek() == "by" and self._take() else None
            self._take("(")
            inner = self._expr()
            self._take(")")
            return ("agg", text, by, inner)
        if text in ("rate", "histogram_quantile", "clamp_min"):
            self._take("(")
            args = [self._expr()]
            while self._peek() == ",":
                self._take(",")
                args.append(self._expr())
            self._take(")")
            return ("fn", text, args)
        sel = self._take() if self._kind() == "sel" else "{}"
        if self._kind() == "range":
            self._take()
        return ("sel", text, dict(re.findall(r'(\w+)=~"([^"]*)"', sel)))

    def at(self, i: int) -> Vector | float:
        return self._eval(self.tree, i)

    def _select(self, name: str, match: dict[str, str], i: int) -> Vector:
        vec = self.scrapes[i].samples.get(name, {})
        patterns = {k: re.compile(v.replace("$namespace", ".*").replace("$task_queue", ".*"))
                    for k, v in match.items()}  # fmt: skip
        return {
            labels: v
            for labels, v in vec.items()
            if all(p.fullmatch(dict(labels).get(k, "")) for k, p in patterns.items())
        }

    def _eval(self, node: Any, i: int) -> Vector | float:
        kind = node[0]
        if kind == "num":
            return float(node[1])
        if kind == "sel":
            return self._select(node[1], node[2], i)
        if kind == "agg":
            _, how, by, inner = node
            vec = self._eval(inner, i)
            assert isinstance(vec, dict)
            groups: dict[Labels, list[float]] = {}
            for labels, v in vec.items():
                key = frozenset((k, x) for k, x in labels if by is not None and k in by)
                groups.setdefault(key, []).append(v)
            return {k: (sum(vs) if how == "sum" else max(vs)) for k, vs in groups.items()}
        if kind == "fn":
            _, fn, args = node
            if fn == "rate":
                j = max(i - self.window, 0)
                if j == i:
                    return {}
                now, then = self._eval(args[0], i), self._eval(args[0], j)
                assert isinstance(now, dict) and isinstance(then, dict)
                dt = self.scrapes[i].t - self.scrapes[j].t
                return {k: max(v - then.get(k, 0.0), 0.0) / dt for k, v in now.items()}
            if fn == "clamp_min":
                vec, low = self._eval(args[0], i), self._eval(args[1], i)
                assert isinstance(vec, dict) and isinstance(low, float)
                return {k: max(v, low) for k, v in vec.items()}
            q, vec = self._eval(args[0], i), self._eval(args[1], i)
            assert isinstance(q, float) and isinstance(vec, dict)
            return quantiles(q, vec)
        _, op, left, right = node
        a, b = self._eval(left, i), self._eval(right, i)
        assert isinstance(a, dict) and isinstance(b, dict)
        if op == "+":
            return {k: v + b[k] for k, v in a.items() if k in b}
        return {k: v / b[k] for k, v in a.items() if b.get(k)}


def quantiles(q: float, buckets: Vector) -> Vector:
    """Prometheus's histogram_quantile: linear within the bucket the rank falls in."""
    series: dict[Labels, list[tuple[float, float]]] = {}
    for labels, v in buckets.items():
        le = dict(labels)["le"]
        key = frozenset((k, x) for k, x in labels if k != "le")
        series.setdefault(key, []).append((math.inf if le == "+Inf" else float(le), v))
    out: Vector = {}
    for key, points in series.items():
        points.sort()
        total = points[-1][1]
        if total <= 0:
            continue
        rank, lower, below = q * total, 0.0, 0.0
        for upper, count in points:
            if count >= rank:
                if math.isinf(upper):
                    out[key] = lower
                else:
                    width = count - below
                    out[key] = lower + (upper - lower) * ((rank - below) / width if width else 1)
                break
            lower, below = upper, count
    return out


# ------------------------------------------------------------------------------------------
# Drawing
# ------------------------------------------------------------------------------------------


def legend(fmt: str, labels: Labels) -> str:
    values = dict(labels)
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values.get(m.group(1), ""), fmt).strip() or fmt


# One panel query's result over the load: the sample times, and a value per time (NaN where
# the series has none) for each label set.
Series = tuple[list[float], dict[Labels, list[float]]]


def evaluated(scrapes: list[Scrape], window: int) -> Callable[[str], Series]:
    """Panel queries answered by this script's evaluator over its own scrapes."""

    def series(expr: str) -> Series:
        query = Query(expr, scrapes, window)
        lines: dict[Labels, list[float]] = {}
        for i in range(len(scrapes)):
            value = query.at(i)
            for labels, v in value.items() if isinstance(value, dict) else []:
                lines.setdefault(labels, [math.nan] * len(scrapes))[i] = v
        return [s.t for s in scrapes], lines

    return series


def render(series: Callable[[str], Series], out: Path, source: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter
    from PIL import Image

    dash = json.loads(DASHBOARD.read_text())
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    cols = 3
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(13, 2.3 * rows), dpi=72)
    fig.patch.set_facecolor("#111217")
    for ax, panel in zip(axes.flat, panels, strict=False):
        ax.set_facecolor("#181b1f")
        ax.set_title(panel["title"], color="#d8d9da", fontsize=10, loc="left")
        ax.tick_params(colors="#8e8e8e", labelsize=7)
        for spine in ax.spines.values():
            spine.set_color("#2c3235")
        ax.grid(color="#2c3235", linewidth=0.5)
        for target in panel["targets"]:
            times, lines = series(target["expr"])
            for labels, ys in sorted(lines.items(), key=lambda kv: sorted(kv[0])):
                ax.plot(times, ys, linewidth=1.2, label=legend(target["legendFormat"], labels))
        unit = panel["fieldConfig"]["defaults"]["unit"]
        if unit == "percentunit":
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylim(bottom=0)
        ax.set_xlabel("seconds into the load" if unit else "", color="#8e8e8e", fontsize=7)
        if ax.lines:
            ax.legend(fontsize=6, loc="upper left", facecolor="#181b1f", labelcolor="#d8d9da",
                      edgecolor="#2c3235", ncol=2)  # fmt: skip
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(
        "perdure-dashboard.json over a real load, its queries "
        f"{source} (drawn by docs/render_dashboard.py, not Grafana)",
        color="#d8d9da", fontsize=11, x=0.01, ha="left",
    )  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", facecolor=fig.get_facecolor())
    plt.close(fig)
    image = Image.open(buffer).convert("RGB").quantize(colors=64)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, optimize=True)


class Prometheus:
    """A real Prometheus server (the binary at ``binary``) scraping this process every second,
    for the panels' queries to be answered by Prometheus itself."""

    def __init__(self, binary: str, registry: CollectorRegistry, tmp: Path) -> None:
        from prometheus_client import start_http_server

        self.exporter, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config = tmp / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: perdure\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{self.exporter.server_port}']}}]\n"
        )
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ]
        )
        # Ready once it has scraped the exporter (not merely started).
        deadline = time.monotonic() + 30
        while not self._scraped():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("Prometheus did not start scraping")
            time.sleep(0.2)

    def _scraped(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query?query=up", timeout=1) as r:
                return any(v["value"][1] == "1" for v in json.load(r)["data"]["result"])
        except OSError:
            return False

    def series(self, start: float, end: float) -> Callable[[str], Series]:
        times = [float(t) for t in range(int(end - start) + 1)]

        def series(expr: str) -> Series:
            query = (
                expr.replace("$__rate_interval", "5s")
                .replace("$namespace", ".*")
                .replace("$task_queue", ".*")
            )
            args = urllib.parse.urlencode(
                {"query": query, "start": start, "end": end, "step": "1s"}
            )
            with urllib.request.urlopen(f"{self.url}/api/v1/query_range?{args}") as answer:
                result = json.load(answer)["data"]["result"]
            lines: dict[Labels, list[float]] = {}
            for item in result:
                labels = frozenset((k, v) for k, v in item["metric"].items() if k != "__name__")
                ys = lines.setdefault(labels, [math.nan] * len(times))
                for t, v in item["values"]:
                    i = round(float(t) - start)
                    if 0 <= i < len(ys):
                        ys[i] = float(v)
            return times, lines

        return series

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.exporter.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=70.0, help="how long the load runs")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between scrapes")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--prometheus",
        metavar="BINARY",
        default=shutil.which("prometheus"),
        help="a Prometheus server binary to scrape the load and answer the queries (default: "
        "prometheus on PATH; without one, this script's own evaluator answers them)",
    )
    args = parser.parse_args()
    random.seed(7)
    logging.getLogger("perdure").setLevel(logging.CRITICAL)  # the failures are on purpose
    registry = CollectorRegistry()
    with tempfile.TemporaryDirectory() as tmp:
        prometheus = Prometheus(args.prometheus, registry, Path(tmp)) if args.prometheus else None
        start = time.time()
        scrapes = asyncio.run(run_load(registry, args.seconds, args.interval))
        end = time.time()
        if prometheus is not None:
            time.sleep(2)  # its last scrape
            render(prometheus.series(start, end), args.out, "answered by Prometheus")
            prometheus.stop()
        else:
            window = max(int(5 / args.interval), 1)  # rate over 5 s of scrapes
            render(evaluated(scrapes, window), args.out, "evaluated by the script")
    print(f"{args.out}: {len(scrapes)} scrapes, {args.out.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
