"""Writes docs/server.md: each HTTP route called for real, its answer pasted under it.

    python docs/server_examples.py           # rewrite docs/server.md
    python docs/server_examples.py --check   # exit 1 if docs/server.md differs from a fresh run

A fresh SQLite database in a temporary directory, the small shop app below, a real ``perdure
worker`` process and a real ``perdure server`` process: each step sends the request as a
client would and shows the answer, so the page cannot drift from what the server says.
``--check`` (run by the test suite) compares with ids, times, tokens and ports masked.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx

DOC = Path(__file__).resolve().parent / "server.md"
PERDURE = str(Path(sys.executable).parent / "perdure")

APP = textwrap.dedent(
    '''
    """The shop app the server page drives."""

    from datetime import timedelta
    from pathlib import Path

    from perdure import activity, workflow


    @activity.defn
    async def charge(order_id: str, amount: float) -> str:
        return f"receipt-{order_id}"


    @activity.defn
    async def ask_the_bank(order_id: str) -> str:
        # The bank answers later, through a webhook: hand it the task token.
        Path(f"{order_id.replace('/', '-')}.token").write_bytes(activity.info().task_token)
        activity.raise_complete_async()


    @workflow.defn
    class Checkout:
        def __init__(self) -> None:
            self.approved_by = ""
            self.discount = 0

        @workflow.run
        async def run(self, order_id: str, amount: float) -> str:
            receipt = await workflow.execute_activity(
                charge, args=[order_id, amount], start_to_close_timeout=timedelta(seconds=30)
            )
            await workflow.wait_condition(lambda: bool(self.approved_by))
            return f"{receipt}, approved by {self.approved_by}, {self.discount}% off"

        @workflow.signal
        def approve(self, who: str) -> None:
            self.approved_by = who

        @workflow.query
        def status(self) -> str:
            return f"approved by {self.approved_by}" if self.approved_by else "waiting"

        @workflow.update
        def set_discount(self, percent: int) -> int:
            self.discount = percent
            return percent


    @workflow.defn
    class Refund:
        @workflow.run
        async def run(self, order_id: str) -> str:
            return await workflow.execute_activity(
                ask_the_bank, order_id, start_to_close_timeout=timedelta(hours=1)
            )
    '''
)


@dataclass(frozen=True)
class Step:
    """One request of the page: a heading, what it is for, the request."""

    heading: str
    text: str
    method: str
    path: str
    body: Any = None
    token: str = "write"  # which token sends it: write, read, or none
    wait_for: str = ""  # re-send (quietly) until the answer contains this
    task_token_of: str = ""  # the body's task_token is the one this order's activity wrote


def start(workflow_type: str, workflow_id: str, *args: Any) -> dict[str, Any]:
    return {
        "workflow_type": workflow_type,
        "workflow_id": workflow_id,
        "task_queue": "shop",
        "args": list(args),
    }


W = "/api/v1/workflows"

STEPS = [
    Step(
        "Health",
        "`/healthz` (the process is up) and `/readyz` (it reaches its database) need no token "
        "and show no data: for load balancers and orchestrators.",
        "GET",
        "/healthz",
        token="none",
    ),
    Step("", "", "GET", "/readyz", token="none"),
    Step(
        "Start a workflow",
        "By type name, with the arguments as a JSON array; the other start options of "
        "`client.start_workflow` are fields too (`execution_timeout` and the other durations "
        "in seconds, `id_reuse_policy`, `id_conflict_policy`, `retry_policy`, `memo`, "
        "`search_attributes`, `start_delay`, `start_signal`, `priority`). The answer is the "
        "workflow, as `perdure workflow list -o json` prints it; 409 if a run of the id is open.",
        "POST",
        W,
        start("Checkout", "orders/7", "orders/7", 42.5),
    ),
    Step(
        "Ask a query",
        "Answered by a worker; nothing is written to history. An id with a `/` is "
        "percent-encoded in the path. A read token may ask queries too. The body may carry "
        "`timeout` (seconds to wait for a worker, 30 by default; 504 past it).",
        "POST",
        f"{W}/orders%2F7/queries/status",
        {"args": []},
        wait_for='"waiting"',
    ),
    Step(
        "Send an update",
        "Waits for the update's result; a validator's refusal or a failed handler is a 422 "
        "problem. `update_id` deduplicates.",
        "POST",
        f"{W}/orders%2F7/updates/set_discount",
        {"args": [10], "update_id": "discount-1"},
    ),
    Step(
        "Send a signal",
        "Every route on a workflow takes `?run_id=` for one run; without it, the latest. "
        "`request_id` is the signal's idempotency key: a client that retries the request "
        "(after a timeout, say) with the same one gets a 200 and the workflow records the "
        "signal once, across continue-as-new too. Without it each request is a new signal.",
        "POST",
        f"{W}/orders%2F7/signals/approve",
        {"args": ["ada"], "request_id": "approve-7"},
    ),
    Step(
        "Wait for the result",
        "`wait` is how long to wait for the run to close (at most 300 s); without it the answer "
        "comes at once, `RUNNING` if the workflow is. It follows the run through "
        "continue-as-new, retries and resets, as `WorkflowHandle.result()` does; a run that "
        "did not complete answers `{status, failure}`.",
        "GET",
        f"{W}/orders%2F7/result?wait=30",
    ),
    Step("", "", "POST", W, start("Checkout", "orders/8", "orders/8", 19.0)),
    Step(
        "Describe a workflow",
        "The workflow plus what it waits on (`pending_activities`, `pending_children`), the "
        "resets it took part in, and the failure of a workflow task that keeps failing.",
        "GET",
        f"{W}/orders%2F8",
        # Charged, waiting for the approval: nothing moves until then.
        wait_for='"history_length": 6',
    ),
    Step(
        "List workflows",
        "Newest first, a page at a time: `page_size` (at most 1000, 100 by default), and "
        "`next_page_token` from the previous page for the next. `query` takes the visibility "
        "query language.",
        "GET",
        f"{W}?page_size=1&query=WorkflowType%20%3D%20%27Checkout%27",
    ),
    Step(
        "Count",
        "With `GROUP BY ExecutionStatus` at the end of the query, the count of each status too. "
        "A count reads an index entry per matching run (a million take 100 to 300 ms): "
        "`max_count` stops each count there, and `capped` says whether one did (show it as "
        "`10,000+`).",
        "GET",
        f"{W}/count?query=GROUP%20BY%20ExecutionStatus&max_count=10000",
    ),
    Step(
        "Read a history",
        "`WorkflowHistory.to_json()`'s document, a page at a time (`page_size`, at most and "
        "by default 1000): a history of 10,000 events is read in pages, never whole. With "
        "`decode=true` the payloads are decoded to their JSON values, for reading. With "
        "`wait=SECONDS`, a page that would be empty waits for the next event and the token "
        "stays set while the run is open: a live view.",
        "GET",
        f"{W}/orders%2F7/history?decode=true&page_size=3",
    ),
    Step(
        "",
        "The same history as the document `perdure history export` writes (payloads encoded):",
        "GET",
        f"{W}/orders%2F7/history?page_size=1",
    ),
    Step(
        "Complete an activity from a webhook",
        "An activity that calls `activity.raise_complete_async()` hands its task token "
        "(`activity.info().task_token`, ASCII) to another system, which finishes it later "
        "through `/api/v1/activities/complete`, `/fail` (an `ApplicationError`: `message`, "
        "`type`, `details`, `non_retryable`) or `/heartbeat` (which says whether the workflow "
        "asked to cancel it).",
        "POST",
        W,
        start("Refund", "refund-1", "refund-1"),
    ),
    Step(
        "",
        "",
        "POST",
        "/api/v1/activities/heartbeat",
        {"details": ["the bank is looking"]},
        task_token_of="refund-1",
    ),
    Step(
        "",
        "",
        "POST",
        "/api/v1/activities/complete",
        {"result": "refunded"},
        task_token_of="refund-1",
    ),
    Step("", "", "GET", f"{W}/refund-1/result?wait=30"),
    Step("", "Or the bank says no:", "POST", W, start("Refund", "refund-2", "refund-2")),
    Step(
        "",
        "",
        "POST",
        "/api/v1/activities/fail",
        {"failure": {"message": "card expired", "type": "CardExpired", "non_retryable": True}},
        task_token_of="refund-2",
    ),
    Step("", "", "GET", f"{W}/refund-2/result?wait=30"),
    Step(
        "Cancel, terminate",
        "`cancel` asks the workflow to cancel (it sees `asyncio.CancelledError`, and may clean "
        "up); `terminate` ends it at once. Both take an optional `reason`.",
        "POST",
        W,
        start("Checkout", "orders/9", "orders/9", 5.0),
    ),
    Step("", "", "POST", f"{W}/orders%2F9/cancel", {"reason": "changed my mind"}),
    Step("", "", "GET", f"{W}/orders%2F9/result?wait=30"),
    Step("", "", "POST", f"{W}/orders%2F8/terminate", {"reason": "duplicate order"}),
    Step(
        "Reset",
        "Runs a workflow task again on the current code in a new run, which the answer "
        "names: `event_id` (a `WorkflowTaskCompleted` event) or `reset_type` "
        "(`FIRST_WORKFLOW_TASK`, `LAST_WORKFLOW_TASK`, `LAST_CONTINUED_AS_NEW`), and a "
        "`reason`.",
        "POST",
        f"{W}/orders%2F8/reset",
        {"reset_type": "FIRST_WORKFLOW_TASK", "reason": "not a duplicate after all"},
    ),
    Step(
        "Delete",
        "A run and its history (an open run is terminated first).",
        "DELETE",
        f"{W}/refund-1",
    ),
    Step(
        "Errors",
        "RFC 9457 problem documents (`application/problem+json`) with the Python API's "
        "messages; `error` names the Python exception. A missing workflow is 404:",
        "GET",
        f"{W}/refund-1",
    ),
    Step(
        "",
        "A start whose id is taken, 409:",
        "POST",
        W,
        start("Checkout", "orders/8", "orders/8", 1),
    ),
    Step(
        "",
        "A bad visibility query, 400 with the position (1-based column) of the error:",
        "GET",
        f"{W}?query=WorkflowType%20%3D%3D%20%27Checkout%27",
    ),
    Step(
        "",
        "A request that does not match the API, 400 with each error's location; a payload "
        "over the 2 MiB limit, 413.",
        "POST",
        W,
        {"workflow_type": "Checkout", "task_queue": "shop", "args": "not a list"},
    ),
    Step("", "No token, 401:", "GET", W, token="none"),
    Step(
        "",
        "A read token changing something, 403:",
        "POST",
        f"{W}/orders%2F8/cancel",
        {},
        token="read",
    ),
    Step(
        "Who am I",
        "How the request authenticated, its role, and for a cookie session the CSRF value.",
        "GET",
        "/api/v1/session",
        token="read",
    ),
    Step(
        "",
        "`DELETE /api/v1/session` logs a browser out (it clears the session cookies).",
        "DELETE",
        "/api/v1/session",
        token="read",
    ),
]

_MASKED_HEADERS = ("date", "content-length", "set-cookie", "x-", "referrer", "server")


def _body_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _request_text(method: str, path: str, body: Any, token: str) -> str:
    lines = [f"{method} {path} HTTP/1.1"]
    if token != "none":
        lines.append(f"Authorization: Bearer ${'READ_' if token == 'read' else ''}TOKEN")
    if body is not None:
        lines.append("Content-Type: application/json")
        lines += ["", _body_text(body)]
    return "\n".join(lines)


def _response_text(response: httpx.Response) -> str:
    phrase = HTTPStatus(response.status_code).phrase
    lines = [f"HTTP/1.1 {response.status_code} {phrase}"]
    for name in ("content-type", "location", "www-authenticate"):
        if name in response.headers:
            lines.append(f"{name.title()}: {response.headers[name]}")
    if response.content:
        lines += ["", _body_text(response.json())]
    return "\n".join(lines)


def _send(http: httpx.Client, step: Step, tokens: dict[str, str], cwd: Path) -> httpx.Response:
    body = step.body
    if step.task_token_of:
        token_file = cwd / f"{step.task_token_of.replace('/', '-')}.token"
        deadline = time.monotonic() + 30
        while not token_file.exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"{step.task_token_of} never wrote its task token")
            time.sleep(0.1)
        body = {"task_token": token_file.read_text(), **body}
    headers = {}
    if step.token != "none":
        headers["Authorization"] = f"Bearer {tokens[step.token]}"
    return http.request(step.method, step.path, json=body, headers=headers)


def generate() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "shop.py").write_text(APP)
        env = {**os.environ, "PERDURE_DB": "sqlite:///shop.db", "PYTHONPATH": str(cwd)}
        processes = []
        try:
            worker = subprocess.Popen(
                [PERDURE, "worker", "-q", "shop", "--log-level", "ERROR", "shop"],
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            processes.append(worker)
            if worker.stdout is None or "perdure worker" not in worker.stdout.readline():
                raise SystemExit("the worker did not start")
            server = subprocess.Popen(
                [PERDURE, "server", "--port", "0", "--log-level", "WARNING", "shop"],
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            processes.append(server)
            banner = []
            while server.stdout is not None:
                line = server.stdout.readline()
                if not line:
                    raise SystemExit("the server did not start:\n" + "".join(banner))
                banner.append(line)
                if "API docs at" in line:
                    break
            url = re.search(r"listening on (http://\S+)", banner[0])
            login = re.search(r"\?token=(\S+)", "".join(banner))
            if url is None or login is None:
                raise SystemExit("unexpected banner:\n" + "".join(banner))
            read = subprocess.run(
                [PERDURE, "server", "token", "create", "--role", "read"],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            tokens = {"write": login.group(1), "read": read.stdout.strip()}
            parts = [HEADER, "```console", "$ export PERDURE_DB=sqlite:///shop.db"]
            parts += ["$ perdure server --port 0 shop    # a free port (8233 by default)"]
            parts += [b.rstrip() for b in banner]
            parts += ["```", "", STEPS_INTRO]
            with httpx.Client(base_url=url.group(1), timeout=60) as http:
                for step in STEPS:
                    response = _send(http, step, tokens, cwd)
                    deadline = time.monotonic() + 30
                    while step.wait_for and step.wait_for not in _response_text(response):
                        if time.monotonic() > deadline:
                            raise SystemExit(f"{step.path}: never answered {step.wait_for!r}")
                        time.sleep(0.2)
                        response = _send(http, step, tokens, cwd)
                    if step.heading:
                        parts.append(f"## {step.heading}\n")
                    if step.text:
                        parts.append(f"{step.text}\n")
                    shown_body = step.body
                    if step.task_token_of:
                        shown_body = {"task_token": "$TASK_TOKEN", **step.body}
                    request = _request_text(step.method, step.path, shown_body, step.token)
                    parts.append(f"```http\n{request}\n```\n")
                    parts.append(f"```http\n{_response_text(response)}\n```\n")
            return "\n".join(parts)
        finally:
            for process in processes:
                process.terminate()
                process.wait(30)
                if process.stdout is not None:
                    process.stdout.close()


HEADER = """# `perdure server`: the HTTP API

`perdure server` serves the HTTP API of a perdure database (and the web UI) from one process:
JSON under `/api/v1/`, the same operations as the Python client and the `perdure` command,
and the same JSON shapes as their `-o json`. Every request and answer below was sent to a real
server, with a `perdure worker` process running the app it drives, by
`docs/server_examples.py` (run it to regenerate this page; the test suite checks the page
still matches). The app is the small shop of `docs/cli.md`, plus a `Refund` workflow whose
bank answers through a webhook.

## Running it

```console
$ pip install 'perdure[server]'
$ perdure server --db sqlite:///shop.db shop   # [--host 127.0.0.1] [--port 8233]
```

The server's packages (FastAPI, uvicorn) come with the `server` extra; the library does
without them. `MODULE` (here `shop`) is the application's workflow code, optional. The server
stops cleanly on SIGTERM or Ctrl-C (requests in flight get 5 seconds). The OpenAPI 3.1
document is at `/api/v1/openapi.json` and an interactive page for it at `/api/v1/docs`
(served by the server itself: no CDN).

To serve the API from an ASGI application of your own (Starlette, FastAPI), mount it:

```python
from perdure.client import Client
from perdure.server import create_app

client = await Client.connect("sqlite:///shop.db")
app.mount("/perdure", create_app(client, token_file="shop.db.tokens"))
```

## Tokens and the login URL

Every route but `/healthz` and `/readyz` needs a token, as `Authorization: Bearer TOKEN`, or
the session cookie of the web UI. Tokens live in a token file, one per line as `TOKEN ROLE`:

```
# perdure server tokens: TOKEN ROLE (read or write; write if omitted)
kq3JY2r0c3ZlX0bFhQd1mY6oEw7nT5aL9pRzUu2sVtw write
Qm9vdHN0cmFwIGEgcmVhZC1vbmx5IHRva2VuIGhlcmU read
```

- The file is `--token-file PATH`, by default beside the SQLite file (`shop.db.tokens`), or
  `~/.perdure/tokens` for PostgreSQL. It is created with mode 0600; an existing file is used as
  it is, and read again when it changes, so adding or removing a token needs no restart
  (removing one also ends the sessions it opened).
- At the first start, with no file, the server creates one with a `write` token and prints a
  login URL (below). Opening it in a browser sets the session cookie (`HttpOnly`,
  `SameSite=Strict`) and drops the token from the address bar; `/api/v1/docs?token=TOKEN`
  logs in on the API's page the same way. A session lasts 7 days.
- `perdure server token create [--role read] [--db URL | --token-file PATH]` adds a token and
  prints it.
- A `read` token sees everything and changes nothing; it may ask queries, which change
  nothing either (Temporal's authorizer counts `QueryWorkflow` as read-only too). Everything
  else needs `write` (403 otherwise).
- A state-changing request made with the session cookie must carry the header
  `X-Perdure-CSRF`, equal to the `perdure_csrf` cookie (or `csrf_token` of
  `GET /api/v1/session`); bearer requests need no such header.
- `--insecure-no-auth` serves everyone with every right and is refused unless the server
  listens on loopback only (`127.0.0.1`, `::1`, `localhost`); even then, requests to another
  host name are refused, so a web page cannot reach it through a DNS name of its own.
- `GET /metrics` (Prometheus) needs a token too; a `read` token is enough. `--public-metrics`
  serves it without one, for a scraper on a network you trust (see observability.md).

Tokens never appear in the access log (the login URL's is redacted), and a database password
is not printed.
"""

STEPS_INTRO = """## The routes

| Route | What |
| --- | --- |
| `GET /healthz`, `GET /readyz` | up; reaches its database (no token) |
| `GET /metrics` | Prometheus metrics (a read token; see observability.md) |
| `POST /api/v1/workflows` | start a workflow |
| `GET /api/v1/workflows?query=&page_size=&next_page_token=` | list, a page at a time |
| `GET /api/v1/workflows/count?query=&max_count=` | count (per status: `GROUP BY ExecutionStatus`) |
| `GET /api/v1/workflows/{id}` | describe |
| `GET /api/v1/workflows/{id}/history?decode=&page_size=&next_page_token=&wait=` | history |
| `GET /api/v1/workflows/{id}/result?wait=` | how it ended (a long poll) |
| `POST /api/v1/workflows/{id}/signals/{name}` | signal |
| `POST /api/v1/workflows/{id}/queries/{name}` | query |
| `POST /api/v1/workflows/{id}/updates/{name}` | update |
| `POST /api/v1/workflows/{id}/cancel`, `/terminate`, `/reset` | cancel, terminate, reset |
| `DELETE /api/v1/workflows/{id}` | delete a run |
| `GET /api/v1/workflows/{id}/replay` | would the history replay on the server's code (`MODULE`) |
| `GET /api/v1/workflows/{id}/replay/state?event_id=` | the state at an event: queries, stack |
| `GET`, `POST /api/v1/schedules` | list, create schedules |
| `GET`, `PATCH`, `DELETE /api/v1/schedules/{id}` | describe, change (fields given), delete |
| `POST /api/v1/schedules/{id}/pause`, `/unpause`, `/trigger`, `/backfill` | act on a schedule |
| `POST /api/v1/activities/complete`, `/fail`, `/heartbeat` | finish an async activity |
| `GET`, `DELETE /api/v1/session` | who is asking; log out |
| `GET /api/v1/openapi.json`, `GET /api/v1/docs` | the OpenAPI document, its page |
| `GET /`, `/workflow?id=`, `/schedules` | the web UI (docs/ui.md) |

Every route on a workflow takes `?run_id=`.

Bodies are JSON objects (`Content-Type: application/json`; anything else is 415), at most 4 MiB
(413). `args` is a JSON array of the arguments. Ids and names in paths are percent-encoded: a
workflow id may contain `/` (`orders/7` is `orders%2F7`); a route's own words are matched as
written, so the workflow whose id is `count` is `/api/v1/workflows/%63ount`. Each request
below shows `Authorization: Bearer $TOKEN`, the write token printed above (`$READ_TOKEN` is a
read token).
"""

# What differs between two runs of the page: ids, times, tokens, ports, seeds, sizes.
_VOLATILE = [
    re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?"),
    re.compile(r"127\.0\.0\.1:\d+"),
    re.compile(r"token=[\w-]+"),
    re.compile(r'"(next_page_token|task_token|stack_trace)": "[^"]*"'),
    re.compile(r"\d+@[\w.-]+"),
    re.compile(r"\b\d{9,}(\.\d+)?\b"),
    re.compile(r'"(history_size|randomness_seed|time)": [\d.]+'),
    re.compile(r"[ \t]+"),
]


def masked(text: str) -> str:
    for pattern in _VOLATILE:
        text = pattern.sub("~", text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    page = generate()
    if args.check:
        if masked(page) != masked(DOC.read_text()):
            print(
                "docs/server.md is out of date: run python docs/server_examples.py",
                file=sys.stderr,
            )
            raise SystemExit(1)
        print("docs/server.md matches a fresh run")
        return
    DOC.write_text(page)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
