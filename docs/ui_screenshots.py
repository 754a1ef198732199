"""Regenerate the screenshots of docs/ui.md: run a demo shop (a `perdure worker` and a
`perdure server` process on a fresh SQLite file), drive Debian's Chromium through Playwright,
and write the pictures into docs/images/.

    python docs/ui_screenshots.py            # needs perdure[server], playwright, chromium
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

IMAGES = Path(__file__).parent / "images"
CHROMIUM = os.environ.get("PERDURE_CHROMIUM", "/usr/bin/chromium")
PERDURE = str(Path(sys.executable).parent / "perdure")

APP = textwrap.dedent(
    """
    import asyncio
    from datetime import timedelta

    from perdure import activity, workflow
    from perdure.common import RetryPolicy
    from perdure.exceptions import ApplicationError

    FAST = RetryPolicy(initial_interval=timedelta(milliseconds=300), maximum_attempts=5)


    @activity.defn
    async def charge(order_id: str, amount: float) -> str:
        await asyncio.sleep(0.3)
        return f"receipt-{order_id}"


    @activity.defn
    async def reserve_stock(order_id: str) -> str:
        if activity.info().attempt < 3:
            raise ApplicationError("warehouse busy, try again")
        await asyncio.sleep(0.2)
        return "reserved"


    @activity.defn
    async def ship(order_id: str) -> str:
        await asyncio.sleep(0.5)
        return f"parcel-{order_id}"


    @workflow.defn
    class Notify:
        @workflow.run
        async def run(self, order_id: str) -> str:
            await workflow.sleep(0.5)
            return f"mailed {order_id}"


    @workflow.defn
    class Checkout:
        def __init__(self) -> None:
            self.stage = "new"
            self.approved_by = ""

        @workflow.run
        async def run(self, order_id: str, amount: float) -> str:
            self.stage = "charging"
            receipt = await workflow.execute_activity(
                charge, args=[order_id, amount], start_to_close_timeout=timedelta(seconds=30)
            )
            self.stage = "reserving"
            await workflow.execute_activity(
                reserve_stock, order_id, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=FAST,
            )
            self.stage = "cooling off"
            await workflow.sleep(1)
            self.stage = "awaiting approval"
            await workflow.wait_condition(lambda: bool(self.approved_by))
            self.stage = "shipping"
            parcel = await workflow.execute_activity(
                ship, order_id, start_to_close_timeout=timedelta(seconds=30)
            )
            await workflow.execute_child_workflow(Notify.run, order_id, id=f"notify-{order_id}")
            self.stage = "done"
            return f"{receipt}, {parcel}, approved by {self.approved_by}"

        @workflow.signal
        def approve(self, who: str) -> None:
            self.approved_by = who

        @workflow.query
        def status(self) -> str:
            return self.stage


    @workflow.defn
    class Refund:
        @workflow.run
        async def run(self, order_id: str) -> str:
            # A bug: the workflow task fails, and is retried until the code is fixed.
            raise RuntimeError(f"no refund rule for {order_id}")


    @workflow.defn
    class Invoice:
        @workflow.run
        async def run(self, order_id: str) -> str:
            raise ApplicationError(f"{order_id}: no billing address", type="MissingAddress")


    @workflow.defn
    class Report:
        @workflow.run
        async def run(self) -> str:
            return "report sent"
    """
)


def start(
    args: list[str], cwd: Path, env: dict[str, str], until: str
) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    lines: list[str] = []
    while True:
        line = process.stdout.readline()
        if not line:
            raise SystemExit("".join(lines) or f"{args[1]} did not start")
        lines.append(line)
        if until in line:
            return process, lines


def call(base: str, token: str, method: str, path: str, body: object = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def demo(base: str, token: str) -> None:
    """Fill the database: orders done, one waiting, a failing refund, a schedule."""

    def run(wf_type: str, wf_id: str, *args: object) -> None:
        call(
            base,
            token,
            "POST",
            "/api/v1/workflows",
            {
                "workflow_type": wf_type,
                "workflow_id": wf_id,
                "task_queue": "shop",
                "args": list(args),
            },
        )

    for n in range(1, 6):
        run("Checkout", f"order-{n}", f"order-{n}", 10.0 * n)
    run("Checkout", "order-6", "order-6", 60.0)
    run("Refund", "refund-3", "order-3")
    run("Invoice", "invoice-4", "order-4")
    for n in range(1, 4):
        call(base, token, "POST", f"/api/v1/workflows/order-{n}/signals/approve", {"args": ["ada"]})
    call(base, token, "POST", "/api/v1/workflows/order-4/terminate", {"reason": "customer left"})
    call(
        base,
        token,
        "POST",
        "/api/v1/schedules",
        {
            "schedule_id": "nightly-report",
            "action": {"workflow_type": "Report", "workflow_id": "report", "task_queue": "shop"},
            "spec": {"cron_expressions": ["0 2 * * *"]},
            "state": {"note": "Sales report for the team"},
        },
    )
    call(
        base,
        token,
        "POST",
        "/api/v1/schedules",
        {
            "schedule_id": "hourly-sync",
            "action": {"workflow_type": "Report", "workflow_id": "sync", "task_queue": "shop"},
            "spec": {"intervals": [{"every": 3600}]},
        },
    )
    call(base, token, "POST", "/api/v1/schedules/nightly-report/trigger", {})
    for n in range(1, 4):
        call(base, token, "GET", f"/api/v1/workflows/order-{n}/result?wait=30")
    time.sleep(2.5)  # order-5 and order-6 reach their approval step


def shoot(base: str, token: str) -> None:
    from playwright.sync_api import sync_playwright

    IMAGES.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 820})
        page.goto(f"{base}/?token={token}")
        page.wait_for_selector("table.workflows")
        page.wait_for_selector(".chip .count")
        page.screenshot(path=IMAGES / "workflows.png")

        page.goto(f"{base}/workflow?id=order-2")
        page.wait_for_selector("svg.timeline")
        page.screenshot(path=IMAGES / "workflow.png", full_page=True)

        page.goto(f"{base}/workflow?id=order-1&tab=travel")
        page.wait_for_selector("#tt-slider")
        page.fill("#tt-event", "12")  # the timer is running: where does the code wait?
        page.press("#tt-event", "Enter")
        page.wait_for_selector("text=Where the code waited")
        page.screenshot(path=IMAGES / "time-travel.png", full_page=True)

        page.goto(f"{base}/workflow?id=refund-3")
        page.wait_for_selector(".task-failure")
        page.screenshot(path=IMAGES / "task-failure.png")

        page.goto(f"{base}/schedules")
        page.wait_for_selector("table")
        page.screenshot(path=IMAGES / "schedules.png")

        page.evaluate("localStorage.setItem('perdure-theme', 'dark')")
        page.goto(f"{base}/workflow?id=order-5")
        page.wait_for_selector("svg.timeline")
        page.screenshot(path=IMAGES / "dark.png")

        phone = browser.new_page(viewport={"width": 390, "height": 780})
        phone.goto(f"{base}/?token={token}")
        phone.wait_for_selector("table.workflows")
        phone.screenshot(path=IMAGES / "phone.png")
        phone.goto(f"{base}/workflow?id=order-6")
        phone.wait_for_selector("svg.timeline")
        phone.screenshot(path=IMAGES / "phone-workflow.png")
        browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "demo_shop.py").write_text(APP)
        env = {**os.environ, "PERDURE_DB": f"sqlite:///{cwd / 'shop.db'}", "PYTHONPATH": str(cwd)}
        worker, _ = start(
            [PERDURE, "worker", "-q", "shop", "--log-level", "ERROR", "demo_shop"],
            cwd,
            env,
            "perdure worker",
        )
        server, banner = start(
            [PERDURE, "server", "--port", "0", "--log-level", "WARNING", "demo_shop"],
            cwd,
            env,
            "API docs at",
        )
        try:
            text = "".join(banner)
            base = re.search(r"listening on (http://\S+)", text).group(1)  # type: ignore[union-attr]
            token = re.search(r"/\?token=(\S+)", text).group(1)  # type: ignore[union-attr]
            demo(base, token)
            shoot(base, token)
        finally:
            for process in (server, worker):
                process.terminate()
                process.wait(30)
    # Keep the pictures small: pngquant (apt-get install pngquant) makes them a third of the size.
    pngquant = shutil.which("pngquant")
    for image in sorted(IMAGES.glob("*.png")):
        if pngquant:
            subprocess.run(
                [pngquant, "--quality", "60-85", "--speed", "1", "--force", "--ext", ".png", image],
                check=True,
            )
        print(f"{image.name}: {image.stat().st_size // 1024} KB")
    if not pngquant:
        print("(pngquant is not installed: the pictures are not compressed)")


if __name__ == "__main__":
    main()
