"""``perdure workflow ...`` as a user runs it: subprocesses against a real database, with a
real ``perdure worker`` process doing the work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from cli_support import Perdure

from perdure.client import WorkflowHistory

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(120)]


def start(perdure: Perdure, workflow_id: str, *more: str) -> Any:
    return perdure.json(
        "workflow", "start", "--type", "Checkout", "-t", "shop", "-w", workflow_id,
        "-i", f'"{workflow_id}"', "-i", "42.5", *more,
    )  # fmt: skip


def test_a_workflow_from_start_to_result(perdure: Perdure) -> None:
    with perdure.worker():
        started = start(perdure, "o-1", "--memo", 'customer="acme"')
        assert started["workflow_id"] == "o-1" and started["status"] == "RUNNING"
        assert started["memo"] == {"customer": "acme"}
        text = perdure.ok(
            "workflow", "start", "--type", "Checkout", "-t", "shop", "-w", "o-2",
            "-i", '"o-2"', "-i", "1",
        )  # fmt: skip
        assert "Started workflow o-2" in text and "Run ID" in text
        stack = perdure.ok("workflow", "stack", "-w", "o-2")  # the built-in __stack_trace query
        assert (
            stack.startswith("Stack for <Task pending name='workflow.run'")
            and ", in run\n" in stack
        )

        assert perdure.ok("workflow", "query", "-w", "o-1", "--name", "status").strip() == (
            '"waiting"'
        )
        assert (
            perdure.ok(
                "workflow", "update", "execute", "-w", "o-1", "--name", "set_discount", "-i", "10"
            ).strip()
            == "10"
        )
        rejected = perdure.run(
            "workflow", "update", "execute", "-w", "o-1", "--name", "set_discount", "-i", "90"
        )
        assert rejected.returncode == 1 and "at most 50%" in rejected.stderr
        approve = ("workflow", "signal", "-w", "o-1", "--name", "approve", "-i", '"ada"')
        assert "Signalled workflow o-1" in perdure.ok(*approve, "--request-id", "approve-1")
        assert orjson.loads(perdure.ok("workflow", "result", "-w", "o-1")) == (
            "receipt-o-1 approved by ada discount 10"
        )
        # Run again with its key once the workflow has closed: accepted, it was taken.
        assert "Signalled workflow o-1" in perdure.ok(*approve, "--request-id", "approve-1")
        assert perdure.run(*approve).returncode == 1  # a new signal to a closed workflow

        listed = perdure.ok("workflow", "list")
        lines = listed.splitlines()
        assert lines[0].split() == ["STATUS", "WORKFLOW", "ID", "TYPE", "STARTED", "DURATION"]
        assert any(line.startswith("COMPLETED") and "o-1" in line for line in lines)
        assert any(line.startswith("RUNNING") and "o-2" in line for line in lines)
        as_json = perdure.json("workflow", "list", "-q", "ExecutionStatus = 'Running'")
        assert isinstance(as_json, list) and [w["workflow_id"] for w in as_json] == ["o-2"]
        jsonl = perdure.ok("workflow", "list", "-o", "jsonl").splitlines()
        assert sorted(orjson.loads(line)["workflow_id"] for line in jsonl) == ["o-1", "o-2"]
        assert perdure.ok("workflow", "count").strip() == "Total: 2"
        assert perdure.json("workflow", "count", "-q", "WorkflowId = 'o-1'") == {"count": 1}

        described = perdure.ok("workflow", "describe", "-w", "o-1")
        assert "COMPLETED" in described and "Checkout" in described
        assert '{"customer":"acme"}' in described
        as_json = perdure.json("workflow", "describe", "-w", "o-1")
        assert isinstance(as_json, dict)
        assert as_json["status"] == "COMPLETED" and as_json["close_time"].endswith("Z")
        assert as_json["history_length"] > 5

        shown = perdure.ok("workflow", "show", "-w", "o-1")
        assert 'input=["o-1",42.5]' in shown
        assert 'signal_name=approve  input=["ada"]' in shown
        assert 'result="receipt-o-1 approved by ada discount 10"' in shown
        history = WorkflowHistory.from_json(
            None, perdure.ok("workflow", "show", "-w", "o-1", "-o", "json")
        )
        assert history.workflow_id == "o-1"
        assert history.events[-1].event_type.value == "WorkflowExecutionCompleted"


def test_execute_prints_the_result_or_the_failure_chain(perdure: Perdure) -> None:
    with perdure.worker():
        execute = perdure.popen(
            "workflow", "execute", "--type", "Checkout", "-t", "shop", "-w", "bad-1",
            "-i", '"bad-1"', "-i", "3",
        )  # fmt: skip
        perdure.wait_until('"waiting"', "workflow", "query", "-w", "bad-1", "--name", "status")
        follower = perdure.popen("workflow", "show", "-w", "bad-1", "--follow", "-o", "jsonl")
        perdure.ok("workflow", "signal", "-w", "bad-1", "--name", "approve", "-i", '"bob"')
        out, err = execute.communicate(timeout=60)
        assert execute.returncode == 1, out + err
        assert "Workflow bad-1 FAILED: Declined: card declined" in err
        followed, _ = follower.communicate(timeout=60)
        assert follower.returncode == 0
        types = [orjson.loads(line)["event_type"] for line in followed.splitlines()]
        assert types[0] == "WorkflowExecutionStarted" and types[-1] == "WorkflowExecutionFailed"
        assert "WorkflowExecutionSignaled" in types

        ok = perdure.popen(
            "workflow", "execute", "--type", "Checkout", "-t", "shop", "-w", "good-1",
            "-i", '"good-1"', "-i", "3", "-o", "json",
        )  # fmt: skip
        perdure.wait_until('"waiting"', "workflow", "query", "-w", "good-1", "--name", "status")
        perdure.ok("workflow", "signal", "-w", "good-1", "--name", "approve", "-i", '"eve"')
        out, err = ok.communicate(timeout=60)
        assert ok.returncode == 0, err
        assert orjson.loads(out) == "receipt-good-1 approved by eve discount 0"


def test_a_workflow_task_that_keeps_failing_is_described(perdure: Perdure) -> None:
    with perdure.worker():
        perdure.ok("workflow", "start", "--type", "Stuck", "-t", "shop", "-w", "stuck")
        out = perdure.wait_until("Workflow task failing", "workflow", "describe", "-w", "stuck")
        assert "RuntimeError: a bug in the workflow code" in out
        assert 'raise RuntimeError("a bug in the workflow code")' in out  # the stack trace
        as_json = perdure.json("workflow", "describe", "-w", "stuck")
        assert isinstance(as_json, dict)
        failure = as_json["last_workflow_task_failure"]
        assert failure["message"] == "a bug in the workflow code" and failure["attempt"] >= 1


def test_describe_shows_what_a_workflow_waits_on(perdure: Perdure) -> None:
    with perdure.worker():
        perdure.ok("workflow", "start", "--type", "Retrying", "-t", "shop", "-w", "retrying")
        perdure.ok("workflow", "start", "--type", "Parent", "-t", "shop", "-w", "parent")
        out = perdure.wait_until("Pending activities (1)", "workflow", "describe", "-w", "retrying")
        row = next(line for line in out.splitlines() if line.startswith("1 "))
        assert row.split()[:4] == ["1", "reserve", "SCHEDULED", "2"]
        assert "in 4 minutes" in row and "ApplicationError: warehouse w-1 is down" in row
        described = perdure.json("workflow", "describe", "-w", "retrying")
        assert isinstance(described, dict)
        (activity,) = described["pending_activities"]
        assert activity["activity_type"] == "reserve" and activity["attempt"] == 2
        assert activity["last_failure"]["message"] == "warehouse w-1 is down"
        assert activity["next_attempt_schedule_time"].endswith("Z")

        out = perdure.wait_until("Pending children (1)", "workflow", "describe", "-w", "parent")
        assert "child-of-parent" in out and "Checkout" in out
        child = perdure.json("workflow", "describe", "-w", "child-of-parent")
        assert isinstance(child, dict) and child["parent"]["workflow_id"] == "parent"


def test_cancel_and_terminate_one_workflow(perdure: Perdure) -> None:
    with perdure.worker():
        start(perdure, "c-1")
        start(perdure, "t-1")
        assert "Cancelled workflow c-1" in perdure.ok("workflow", "cancel", "-w", "c-1")
        cancelled = perdure.run("workflow", "result", "-w", "c-1")
        assert cancelled.returncode == 1 and "CANCELED" in cancelled.stderr
        perdure.ok("workflow", "terminate", "-w", "t-1", "--reason", "duplicate order")
        terminated = perdure.run("workflow", "result", "-w", "t-1")
        assert terminated.returncode == 1
        assert "TERMINATED: TerminatedError: duplicate order" in terminated.stderr


def test_batch_terminate_and_signal_by_query(perdure_sqlite: Perdure) -> None:
    perdure = perdure_sqlite
    for i in range(12):
        start(perdure, f"batch-{i}")
    start(perdure, "keep-me")
    query = "WorkflowId STARTS_WITH 'batch-'"

    refused = perdure.run("workflow", "terminate", "-q", query, input="n\n")
    assert refused.returncode == 1 and "12 workflow(s) match the query" in refused.stderr
    assert "Aborted" in refused.stderr
    assert perdure.json("workflow", "count", "-q", "ExecutionStatus = 'Running'") == {"count": 13}
    # On a big database: counts that stop at --max-count, by status with GROUP BY.
    capped = perdure.json("workflow", "count", "-q", query, "--max-count", "5")
    assert capped == {"count": 5, "capped": True}
    grouped = perdure.ok(
        "workflow", "count", "-q", "GROUP BY ExecutionStatus", "--max-count", "20"
    ).splitlines()
    assert grouped == ["Total: 13", "  RUNNING: 13"]
    assert perdure.ok("workflow", "count", "--max-count", "10").strip() == "Total: 10+"

    report = perdure.json(
        "workflow", "signal", "-q", query, "--name", "approve", "-i", '"x"', "--yes"
    )
    assert report == {"matched": 12, "succeeded": 12, "failures": []}
    out = perdure.ok("workflow", "terminate", "-q", query, "--reason", "cleanup", input="y\n")
    assert "Terminated 12 of 12 workflow(s)" in out
    running = perdure.json("workflow", "list", "-q", "ExecutionStatus = 'Running'")
    assert isinstance(running, list) and [w["workflow_id"] for w in running] == ["keep-me"]
    history = WorkflowHistory.from_json(
        None, perdure.ok("workflow", "show", "-w", "batch-3", "-o", "json")
    )
    types = [e.event_type.value for e in history.events]
    assert types[-2:] == ["WorkflowExecutionSignaled", "WorkflowExecutionTerminated"]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["workflow", "describe"], 2, "Missing option '-w'"),
        (["workflow", "start", "--type", "X", "-t", "q", "-i", "not json"], 2, "not valid JSON"),
        (["workflow", "cancel"], 2, "Give a workflow with -w/--workflow-id, or a batch"),
        (["workflow", "cancel", "-w", "a", "-q", "WorkflowId = 'a'"], 2, "not both"),
        (["workflow", "start", "--type", "X", "-t", "q", "--execution-timeout", "soon"], 2,
         "is not a duration"),
        (["workflow", "describe", "-w", "nobody"], 1, "nobody"),
        (["workflow", "list", "-q", "WorkflowType = "], 1, "query"),
    ],
)  # fmt: skip
def test_mistakes_are_explained(
    perdure_sqlite: Perdure, args: list[str], code: int, says: str
) -> None:
    start(perdure_sqlite, "exists")  # so that the database file exists
    done = perdure_sqlite.run(*args)
    assert done.returncode == code, done.stdout + done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_stack_without_a_worker_says_to_start_one(perdure_sqlite: Perdure) -> None:
    start(perdure_sqlite, "nobody-runs-me")
    done = perdure_sqlite.run("workflow", "stack", "-w", "nobody-runs-me", "--timeout", "1s")
    assert done.returncode == 1
    assert "No worker answered" in done.stderr and "perdure worker" in done.stderr


def test_a_missing_database_file_is_not_created(perdure_sqlite: Perdure) -> None:
    done = perdure_sqlite.run("workflow", "list", "--db", "sqlite:///typo.db")
    assert done.returncode == 1 and "No database at typo.db" in done.stderr
    assert not (perdure_sqlite.cwd / "typo.db").exists()


def test_version_and_shell_completion(perdure_sqlite: Perdure) -> None:
    assert "version" in perdure_sqlite.ok("--version")
    for shell in ("bash", "zsh", "fish"):
        script = perdure_sqlite.run(env={"_PERDURE_COMPLETE": f"{shell}_source"})
        assert script.returncode == 0 and "_PERDURE_COMPLETE" in script.stdout


def test_reset_past_a_bug_then_delete(perdure: Perdure, tmp_path: Path) -> None:
    with perdure.worker():
        for workflow_id in ("bad-a", "bad-b", "bad-c"):
            start(perdure, workflow_id)
            perdure.ok("workflow", "signal", "-w", workflow_id, "--name", "approve", "-i", '"ann"')
            assert perdure.run("workflow", "result", "-w", workflow_id).returncode == 1
    # The fix: orders starting "bad" no longer fail. Deployed, the failed runs are reset.
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    code = (tmp_path / "cli_app.py").read_text()
    (fixed / "cli_app.py").write_text(code.replace('order_id.startswith("bad")', "False"))
    deploy = Perdure(perdure.db, fixed)
    with deploy.worker():
        out = deploy.ok("workflow", "reset", "-w", "bad-a", "--reason", "fixed the card check")
        assert out.startswith("Reset workflow bad-a: new run ")
        assert orjson.loads(deploy.ok("workflow", "result", "-w", "bad-a")) == (
            "receipt-bad-a approved by ann discount 0"
        )
        described = deploy.ok("workflow", "describe", "-w", "bad-a")
        assert "Reset from" in described and "fixed the card check" in described

        history = WorkflowHistory.from_json(
            None, deploy.ok("workflow", "show", "-w", "bad-b", "-o", "json")
        )
        first_task = next(
            e.event_id for e in history.events if e.event_type.value == "WorkflowTaskCompleted"
        )
        reset = deploy.json(
            "workflow", "reset", "-w", "bad-b", "--event-id", str(first_task), "--reason", "again"
        )
        assert isinstance(reset, dict) and reset["run_id"] != history.run_id
        # Reset to its first task, it runs the charge again and waits for the approval it had
        # (signals after the point are delivered again).
        assert orjson.loads(deploy.ok("workflow", "result", "-w", "bad-b")).endswith(
            "by ann discount 0"
        )

        batch = deploy.run(
            "workflow", "reset", "-q", "ExecutionStatus = 'Failed'", "--reason", "all", "--yes"
        )
        # The failed runs of bad-a and bad-b were reset already: reported, not reset twice.
        assert batch.returncode == 1
        assert "Reset 1 of 3 workflow(s)" in batch.stdout
        assert batch.stderr.count("was already reset into run") == 2
        assert deploy.ok("workflow", "result", "-w", "bad-c")

        both = deploy.run("workflow", "reset", "-w", "bad-c", "--event-id", "2",
                          "--reset-type", "FirstWorkflowTask", "--reason", "x")  # fmt: skip
        assert both.returncode == 2 and "not both" in both.stderr
        wrong = deploy.run("workflow", "reset", "-w", "bad-c", "--event-id", "1", "--reason", "x")
        assert wrong.returncode == 1 and "WorkflowTaskCompleted" in wrong.stderr

        assert "Deleted workflow bad-a" in deploy.ok("workflow", "delete", "-w", "bad-a")
        # As in Temporal, a delete removes one run (here the latest): the reset one remains.
        earlier = deploy.json("workflow", "describe", "-w", "bad-a")
        assert isinstance(earlier, dict) and earlier["status"] == "FAILED"
        report = deploy.json("workflow", "delete", "-q", "WorkflowId STARTS_WITH 'bad-'", "--yes")
        assert isinstance(report, dict) and report["failures"] == [] and report["succeeded"] >= 2
        assert deploy.json("workflow", "count", "-q", "WorkflowId STARTS_WITH 'bad-'") == {
            "count": 0
        }
        gone = deploy.run("workflow", "describe", "-w", "bad-a")
        assert gone.returncode == 1 and "bad-a" in gone.stderr


def test_payloads_written_through_a_codec(perdure_sqlite: Perdure) -> None:
    """A history written through an encrypting codec: without the application's data
    converter, `show` marks each payload undecodable and `describe` says what to do; with
    `--data-converter` every payload reads."""
    import asyncio
    import os

    from perdure import Client
    from perdure.converter import AesGcmCodec, DataConverter

    key = os.urandom(32)
    (perdure_sqlite.cwd / "app_codec.py").write_text(
        "from perdure.converter import AesGcmCodec, DataConverter\n"
        f"converter = DataConverter(payload_codec=AesGcmCodec({key!r}, key_id='k1'))\n"
    )

    async def start_encrypted() -> None:
        codec = AesGcmCodec(key, key_id="k1")
        client = await Client.connect(
            perdure_sqlite.db, data_converter=DataConverter(payload_codec=codec)
        )
        try:
            await client.start_workflow(
                "Checkout", args=["secret-order", 1.0], id="sealed", task_queue="shop",
                memo={"note": "secret-memo"},
            )  # fmt: skip
        finally:
            await client.close()

    asyncio.run(start_encrypted())
    shown = perdure_sqlite.ok("workflow", "show", "-w", "sealed")
    assert "WorkflowExecutionStarted" in shown and 'input=[{"undecodable":' in shown
    assert "secret-order" not in shown
    # The memo is decoded by describe and list: they say what to do instead of failing bare.
    refused = perdure_sqlite.run("workflow", "describe", "-w", "sealed")
    assert refused.returncode == 1 and "--data-converter MODULE:NAME" in refused.stderr
    # With the application's data converter, everything reads.
    with_key = ("--data-converter", "app_codec:converter")
    shown = perdure_sqlite.ok("workflow", "show", "-w", "sealed", *with_key)
    assert 'input=["secret-order",1.0]' in shown
    described = perdure_sqlite.json("workflow", "describe", "-w", "sealed", *with_key)
    assert isinstance(described, dict) and described["memo"] == {"note": "secret-memo"}
    bad = perdure_sqlite.run("workflow", "list", "--data-converter", "app_codec:nothing")
    assert bad.returncode == 2 and "cannot load app_codec:nothing" in bad.stderr


def test_priority_flags_are_the_runs_priority(perdure_sqlite: Perdure) -> None:
    start(perdure_sqlite, "p-1", "--priority-key", "1", "--fairness-key", "acme",
          "--fairness-weight", "2.5")  # fmt: skip
    history: Any = perdure_sqlite.json("workflow", "show", "-w", "p-1")
    assert history["events"][0]["attributes"]["priority"] == {
        "priority_key": 1, "fairness_key": "acme", "fairness_weight": 2.5,
    }  # fmt: skip
    for flag, value, says in [
        ("--priority-key", "9", "1<=x<=5"),
        ("--fairness-weight", "0", "0.001<=x<=1000"),
        ("--fairness-key", "k" * 65, "at most 64 characters"),
    ]:
        done = perdure_sqlite.run("workflow", "start", "--type", "X", "-t", "q", flag, value)
        assert done.returncode == 2 and says in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
