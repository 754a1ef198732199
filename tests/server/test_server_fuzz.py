"""Property-based tests of the API against its own OpenAPI document (schemathesis): requests
generated from the document, valid and not, sent to a real `perdure server` process with a
real worker; no answer is a 500, and every answer matches the document (status, content type,
body schema). Authentication is checked too: an operation that declares it must refuse a
request without it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from server_support import Running, server, worker, write_app

pytestmark = [pytest.mark.realtime, pytest.mark.timeout(300)]

# Examples per operation: enough to find what a schema allows and the API refuses, few
# enough to keep the test under a minute. The same ones each run, unless
# PERDURE_FUZZ_EXAMPLES asks for more (then new ones each run: exploring).
EXAMPLES = int(os.environ.get("PERDURE_FUZZ_EXAMPLES", "30"))
EXPLORE = "PERDURE_FUZZ_EXAMPLES" in os.environ


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, str]]:
    """A server and a worker on a SQLite file, with a few workflows in it."""
    cwd: Path = tmp_path_factory.mktemp("fuzz")
    write_app(cwd)
    db = f"sqlite:///{cwd / 'fuzz.db'}"
    with worker(db, cwd), server(db, cwd, "--token-file", str(cwd / "tokens")) as running:
        token = running.login_token
        assert token is not None
        with running.client(token) as http:
            for workflow_id, workflow_type, args in (
                ("order-1", "Checkout", ["order-1", 3]),
                ("chatty", "Chatty", [0]),
            ):
                started = http.post(
                    "/api/v1/workflows",
                    json={
                        "workflow_type": workflow_type,
                        "workflow_id": workflow_id,
                        "task_queue": "shop",
                        "args": args,
                    },
                )
                assert started.status_code == 201, started.text
            assert http.get("/api/v1/workflows/chatty/result?wait=60").json()["result"] == 0
        yield running, token


@pytest.fixture(scope="module")
def api_schema(fuzzed: tuple[Running, str]) -> Any:
    running, token = fuzzed
    return schemathesis.openapi.from_url(
        f"{running.url}/api/v1/openapi.json", headers={"Authorization": f"Bearer {token}"}
    )


def _number(value: object) -> bool:
    try:
        return value is not None and not isinstance(value, bool) and float(value) > 0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def test_the_api_matches_its_document(api_schema: Any, fuzzed: tuple[Running, str]) -> None:
    running, token = fuzzed
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 15
    for operation in operations:

        @given(
            case=st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE),
                operation.as_strategy(GenerationMode.NEGATIVE),
            )
        )
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=not EXPLORE,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: Any) -> None:
            # Long polls and waits for a worker are the flow tests' subject; here they are
            # kept short, or a workflow the fuzzer started on a queue no worker polls would
            # hold a request for minutes.
            if isinstance(case.query, dict) and _number(case.query.get("wait")):
                case.query["wait"] = min(float(case.query["wait"]), 0.5)
            if isinstance(case.body, dict) and _number(case.body.get("timeout")):
                case.body["timeout"] = min(float(case.body["timeout"]), 0.5)
            case.call_and_validate(
                base_url=running.url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
                # A schema-valid request may still be refused: a visibility query, a page token,
                # a task token or a reset point has a grammar the schema cannot state.
                excluded_checks=[positive_data_acceptance],
            )

        try:
            check()
        except Exception as exc:
            exc.add_note(f"operation: {operation.label}")
            raise
