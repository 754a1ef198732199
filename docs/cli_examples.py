"""Writes docs/cli.md: each ``perdure`` command run for real, its output pasted under it.

    python docs/cli_examples.py           # rewrite docs/cli.md
    python docs/cli_examples.py --check   # exit 1 if docs/cli.md differs from a fresh run

A fresh SQLite database in a temporary directory, the small shop app below, and a real
``perdure worker`` process for it: each step runs the command as a user types it, so the page
cannot drift from what the command prints. ``--check`` (run by the test suite) compares with
ids, times and sizes masked, since those differ from run to run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parent / "cli.md"
PERDURE = str(Path(sys.executable).parent / "perdure")

APP = textwrap.dedent(
    '''
    """The shop app the CLI page drives."""

    from datetime import timedelta

    from perdure import RetryPolicy, activity, workflow
    from perdure.exceptions import ApplicationError


    @activity.defn
    async def charge(order_id: str, amount: float) -> str:
        return f"receipt-{order_id}"


    @activity.defn
    async def ship(order_id: str) -> str:
        raise ApplicationError("the carrier's API is down")


    @workflow.defn
    class Quote:
        @workflow.run
        async def run(self, items: int) -> dict[str, float]:
            return {"items": items, "total": items * 9.5}


    @workflow.defn
    class Checkout:
        def __init__(self) -> None:
            self.approved_by = ""

        @workflow.run
        async def run(self, order_id: str, amount: float) -> str:
            receipt = await workflow.execute_activity(
                charge, args=[order_id, amount], start_to_close_timeout=timedelta(seconds=30)
            )
            await workflow.wait_condition(lambda: bool(self.approved_by))
            if amount > 1000:
                await workflow.execute_activity(
                    ship,
                    order_id,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RetryPolicy(initial_interval=timedelta(minutes=10)),
                )
            return f"{receipt}, approved by {self.approved_by}"

        @workflow.signal
        def approve(self, who: str) -> None:
            self.approved_by = who

        @workflow.query
        def status(self) -> str:
            return f"approved by {self.approved_by}" if self.approved_by else "waiting"
    '''
)


@dataclass(frozen=True)
class Step:
    """One command of the page: a heading, what it is for, the command line."""

    heading: str
    text: str
    command: str
    wait_for: str = ""  # re-run (quietly) until the output contains this


STEPS = [
    Step(
        "Start a workflow",
        "`workflow start` starts a run and returns at once; a worker of its task queue runs "
        "it. Arguments are JSON, one `-i` each (or `--input-file`).",
        "perdure workflow start --type Checkout -t shop -w order-1 -i '\"order-1\"' -i 42.5",
    ),
    Step(
        "Start one and wait for its result",
        "`workflow execute` waits for the run to close and prints its result as JSON, or its "
        "failure chain on stderr with exit code 1.",
        "perdure workflow execute --type Quote -t shop -w quote-1 -i 3",
    ),
    Step(
        "",
        "",
        "perdure workflow start --type Checkout -t shop -w order-2 -i '\"order-2\"' -i 2500",
    ),
    Step(
        "Ask a query",
        "`workflow query` asks a running worker; nothing is written to history.",
        "perdure workflow query -w order-1 --name status",
        wait_for='"waiting"',
    ),
    Step(
        "Where is its code waiting?",
        "`workflow stack` asks a running worker for the workflow's coroutines and where each "
        "one waits (the built-in `__stack_trace` query).",
        "perdure workflow stack -w order-1",
    ),
    Step(
        "Send a signal",
        "`workflow signal` records the signal in the workflow's history. With `--request-id` "
        "(its idempotency key) the command can be run again after a timeout: the workflow "
        "records the signal once.",
        "perdure workflow signal -w order-1 --name approve -i '\"ada\"' --request-id approve-1",
    ),
    Step(
        "Wait for a result",
        "`workflow result` waits for the run to close.",
        "perdure workflow result -w order-1",
    ),
    Step(
        "List workflows",
        "Newest first. `-q` takes the visibility query language; `-o json` or `-o jsonl` "
        "print the workflow shape for scripts.",
        "perdure workflow list",
    ),
    Step(
        "List with a query, as JSON lines",
        "",
        "perdure workflow list -q \"ExecutionStatus = 'Completed'\" -o jsonl",
    ),
    Step("Count", "", "perdure workflow count -q \"WorkflowType = 'Checkout'\""),
    Step(
        "Count by status",
        "End the query with `GROUP BY ExecutionStatus` for the count of each status. On a big "
        "database `--max-count N` stops each count at N (shown as `N+`): an exact count reads "
        "every matching run.",
        "perdure workflow count -q 'GROUP BY ExecutionStatus' --max-count 1000",
    ),
    Step(
        "Look at a history",
        "`workflow show` prints the events with their inputs and results decoded; `--follow` "
        "keeps printing until the workflow closes; `-o json` prints the history document "
        "(what `history export` writes).",
        "perdure workflow show -w order-1",
    ),
    Step(
        "Describe a stuck workflow",
        "order-2 is over 1,000, so it ships, and shipping fails: `describe` shows the pending "
        "activity, its attempt, the last failure and when it is retried.",
        "perdure workflow signal -w order-2 --name approve -i '\"bob\"'",
    ),
    Step(
        "",
        "",
        "perdure workflow describe -w order-2",
        wait_for="Pending activities (1)",
    ),
    Step(
        "Terminate every workflow a query matches",
        "Batch forms of `cancel`, `terminate`, `signal` (and `reset`) take `--query`: they say "
        "how many match, ask to confirm (`--yes` skips it), show progress and report each "
        "failure.",
        "perdure workflow terminate -q \"ExecutionStatus = 'Running'\" --reason 'stuck on "
        "shipping' --yes",
    ),
    Step(
        "Reset a workflow",
        "`workflow reset` runs a workflow task again on the current code, in a new run that "
        "carries the history before it: after fixing a bug, reset the runs it broke to before "
        "the bad decision. The current run is terminated; signals received after the point "
        "are delivered again. `--event-id` names the `WorkflowTaskCompleted` event (see "
        "`workflow show`), or `--reset-type FirstWorkflowTask|LastWorkflowTask|"
        "LastContinuedAsNew` picks one; `--query` resets a batch.",
        "perdure workflow reset -w order-1 --reset-type FirstWorkflowTask --reason 'charge again'",
    ),
    Step("", "", "perdure workflow result -w order-1"),
    Step(
        "",
        "`describe` shows where a run came from (and the old run, where it went):",
        "perdure workflow describe -w order-1",
    ),
    Step(
        "Delete a workflow",
        "`workflow delete` removes a run and its history (an open run is terminated first).",
        "perdure workflow delete -w quote-1",
    ),
    Step(
        "Export and import a history",
        "For bug reports and golden tests. `history import` brings a file into a database as "
        "a closed run, to look at with `show` and `describe`. The imported run keeps its "
        "events' times, but it is the latest run of its workflow id if it was imported last "
        "(the latest run is the one created last, whatever its start time): `show`, "
        "`describe` and a handle without a run id reach it; import it under another id "
        "(`--workflow-id`) to leave the id's own runs as they were.",
        "perdure history export -w order-1 --output-file order-1.json",
    ),
    Step(
        "",
        "",
        "perdure history import order-1.json --db sqlite:///inspect.db",
    ),
    Step(
        "Check a deploy: replay the running workflows against the new code",
        "`perdure replay` replays the histories of the open workflows (or those `-q` matches, "
        "or history files) against the workflows in a module, names each run the code would "
        "break with the first event that no longer matches, and exits 1 if any would.",
        "perdure replay -q \"WorkflowType = 'Checkout'\" shop",
    ),
]


def _run(command: str, cwd: Path, env: dict[str, str]) -> str:
    """What the command prints, standard output and error interleaved as on a terminal."""
    done = subprocess.run(
        command,
        shell=True,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )
    return done.stdout.rstrip()


def generate() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "shop.py").write_text(APP)
        env = {
            **os.environ,
            "PERDURE_DB": "sqlite:///shop.db",
            "PYTHONPATH": str(cwd),
            "PATH": f"{Path(PERDURE).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "COLUMNS": "100",
        }
        worker = subprocess.Popen(
            [PERDURE, "worker", "-q", "shop", "--log-level", "ERROR", "shop"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            if worker.stdout is None or "perdure worker" not in worker.stdout.readline():
                raise SystemExit("the worker did not start")
            parts = [HEADER]
            for step in STEPS:
                output = _run(step.command, cwd, env)
                deadline = time.monotonic() + 30
                while step.wait_for and step.wait_for not in output:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{step.command}: never printed {step.wait_for!r}")
                    time.sleep(0.2)
                    output = _run(step.command, cwd, env)
                if step.heading:
                    parts.append(f"## {step.heading}\n")
                if step.text:
                    parts.append(f"{step.text}\n")
                parts.append(f"```console\n$ {step.command}\n{output}\n```\n")
            return "\n".join(parts)
        finally:
            worker.terminate()
            worker.wait(30)
            if worker.stdout is not None:
                worker.stdout.close()


HEADER = """# The `perdure` command

Every command below was run for real against a SQLite file, with a `perdure worker` process
running the app it drives, and its output pasted under it by `docs/cli_examples.py` (run it
to regenerate this page; the test suite checks the page still matches). The app is a small
shop: a `Checkout` workflow charges a card, waits for an approval signal and ships large
orders.

The commands take Temporal CLI's verbs and flags. They find the database in `--db` or
`$PERDURE_DB` (here `export PERDURE_DB=sqlite:///shop.db`). If your application writes
payloads through a codec (encryption, compression), give the commands its data converter
with `--data-converter myapp.converters:data_converter` (or `$PERDURE_DATA_CONVERTER`);
without it they show such payloads as undecodable. `-o json` and `-o jsonl` print
for scripts; errors go to stderr with exit code 1 (2 for a usage error). Tables are coloured
on a terminal only. Shell completion: `eval "$(_PERDURE_COMPLETE=bash_source perdure)"`
(`zsh_source`, `fish_source`).

```console
$ perdure worker -q shop shop     # in another terminal: runs shop.py's workflows
```
"""

# What differs between two runs of the page: ids, times, sizes, durations, and the paths of
# files (the checkout's, the temporary directory's) in stack traces.
_VOLATILE = [
    re.compile(r"/[\w./-]+\.py(:\d+)?"),
    re.compile(r"line \d+"),
    re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?"),
    re.compile(r"\b\d+(\.\d+)?(ms|s|m\d\ds|h\d\dm)\b…?"),
    re.compile(r"(just now|(in )?\d+ (second|minute|hour|day)s?( ago)?)"),
    re.compile(r"[\d,]+ bytes"),
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
            print("docs/cli.md is out of date: run python docs/cli_examples.py", file=sys.stderr)
            raise SystemExit(1)
        print("docs/cli.md matches a fresh run")
        return
    DOC.write_text(page)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
