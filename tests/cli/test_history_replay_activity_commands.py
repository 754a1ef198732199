"""``perdure history export | import``, ``perdure replay`` and ``perdure activity complete |
fail``, as subprocesses against a real database and a real worker process."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from cli_support import Perdure

from perdure.client import WorkflowHistory

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(120)]


def checkout(perdure: Perdure, workflow_id: str, approve: bool = True) -> None:
    perdure.ok(
        "workflow", "start", "--type", "Checkout", "-t", "shop", "-w", workflow_id,
        "-i", f'"{workflow_id}"', "-i", "10",
    )  # fmt: skip
    if approve:
        perdure.ok("workflow", "signal", "-w", workflow_id, "--name", "approve", "-i", '"ada"')
        perdure.ok("workflow", "result", "-w", workflow_id)


def test_export_then_import_a_history(perdure: Perdure, tmp_path: Path) -> None:
    with perdure.worker():
        checkout(perdure, "done")
        checkout(perdure, "open", approve=False)
        perdure.wait_until("ActivityTaskCompleted", "workflow", "show", "-w", "open")
    exported = tmp_path / "done.json"
    perdure.ok("history", "export", "-w", "done", "--output-file", str(exported))
    original = WorkflowHistory.from_json(None, exported.read_text())
    assert original.events[-1].event_type.value == "WorkflowExecutionCompleted"
    (tmp_path / "open.json").write_text(perdure.ok("history", "export", "-w", "open"))

    again = perdure.run("history", "import", str(exported))
    assert again.returncode == 1 and "already in this database" in again.stderr

    elsewhere = Perdure(f"sqlite:///{tmp_path / 'inspect.db'}", tmp_path)
    out = elsewhere.ok("history", "import", str(exported), str(tmp_path / "open.json"))
    assert "workflow done" in out and "COMPLETED" in out and "TERMINATED" in out
    copy = WorkflowHistory.from_json(
        None, elsewhere.ok("workflow", "show", "-w", "done", "-o", "json")
    )
    assert copy.to_json_dict()["events"] == original.to_json_dict()["events"]
    assert copy.run_id == original.run_id
    described = elsewhere.json("workflow", "describe", "-w", "open")
    assert isinstance(described, dict) and described["status"] == "TERMINATED"
    shown = elsewhere.ok("workflow", "show", "-w", "open")
    assert "still open when it was exported" in shown
    listed = elsewhere.json("workflow", "list", "-q", "ExecutionStatus = 'Running'")
    assert listed == []  # nothing for a worker here to run

    renamed = elsewhere.ok("history", "import", "-w", "done-copy", str(exported), "-o", "json")
    assert orjson.loads(renamed)["run_id"] != original.run_id
    broken = tmp_path / "broken.json"
    broken.write_text('{"events": [1, 2]}')
    bad = elsewhere.run("history", "import", str(broken))
    assert bad.returncode == 1 and "malformed event" in bad.stderr


# The app's Checkout as a later deploy changed it: a timer before the charge.
CHANGED = "receipt = await workflow.execute_activity("
CHANGED_TO = "await workflow.sleep(1)\n        receipt = await workflow.execute_activity("


def test_replay_names_each_open_run_the_new_code_would_break(
    perdure: Perdure, tmp_path: Path
) -> None:
    with perdure.worker():
        checkout(perdure, "finished")
        for i in range(3):
            checkout(perdure, f"waiting-{i}", approve=False)
        perdure.wait_until("ActivityTaskCompleted", "workflow", "show", "-w", "waiting-2")
    same = perdure.run("replay", "cli_app")
    assert same.returncode == 0, same.stderr
    assert "Replayed 3 workflow(s): 3 ok" in same.stdout  # the open ones only

    release = tmp_path / "release"
    release.mkdir()
    code = (tmp_path / "cli_app.py").read_text()
    (release / "cli_app.py").write_text(code.replace(CHANGED, CHANGED_TO))
    deploy = Perdure(perdure.db, release)
    breaks = deploy.run("replay", "cli_app")
    assert breaks.returncode == 1, breaks.stdout + breaks.stderr
    lines = [line for line in breaks.stdout.splitlines() if line.startswith("BREAKS")]
    assert sorted(line.split()[2] for line in lines) == ["waiting-0", "waiting-1", "waiting-2"]
    assert "History event 3 (ActivityTaskScheduled seq=1, type='charge')" in lines[0]
    assert "StartTimer" in lines[0]
    assert "Replayed 3 workflow(s): 0 ok, 3 would break" in breaks.stdout

    one = deploy.run("replay", "-q", "WorkflowId = 'finished'", "cli_app", "-o", "jsonl")
    assert one.returncode == 1
    (outcome,) = [orjson.loads(line) for line in one.stdout.splitlines()]
    assert outcome["workflow_id"] == "finished" and outcome["ok"] is False

    exported = tmp_path / "finished.json"
    exported.write_text(perdure.ok("history", "export", "-w", "finished"))
    files_only = Perdure("", tmp_path)
    assert (
        files_only.run("replay", str(exported), "cli_app", env={"PERDURE_DB": ""}).returncode == 0
    )
    from_files = Perdure("", release).run(
        "replay", str(exported), "cli_app", env={"PERDURE_DB": ""}
    )
    assert from_files.returncode == 1 and "BREAKS Checkout finished" in from_files.stdout


def test_an_activity_completed_or_failed_from_the_shell(perdure: Perdure) -> None:
    with perdure.worker():
        for name in ("yes", "no"):
            perdure.ok(
                "workflow", "start", "--type", "Approval", "-t", "shop",
                "-w", name, "-i", f'"{name}"',
            )  # fmt: skip
        tokens = {name: perdure.cwd / f"token-{name}.txt" for name in ("yes", "no")}
        deadline = time.monotonic() + 30
        while not all(t.exists() and t.read_text() for t in tokens.values()):
            assert time.monotonic() < deadline, "the activities never ran"
            time.sleep(0.05)
        token = tokens["yes"].read_text()
        assert "Completed the activity" in perdure.ok(
            "activity", "complete", "--task-token", token, "--result", '"approved by ops"'
        )
        assert orjson.loads(perdure.ok("workflow", "result", "-w", "yes")) == "approved by ops"
        again = perdure.run("activity", "complete", "--task-token", token, "--result", "1")
        assert again.returncode == 1 and "Traceback" not in again.stderr

        perdure.ok(
            "activity", "fail", "--task-token", tokens["no"].read_text(),
            "--reason", "rejected by ops", "--type", "Rejected", "--non-retryable",
        )  # fmt: skip
        failed = perdure.run("workflow", "result", "-w", "no")
        assert failed.returncode == 1
        assert "Rejected: rejected by ops" in failed.stderr
        bad = perdure.run("activity", "complete", "--task-token", "garbage")
        assert bad.returncode == 1 and "Not a perdure activity task token" in bad.stderr
