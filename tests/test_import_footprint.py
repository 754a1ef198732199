"""Importing perdure stays light: the client and worker do not bring in the optional
dependencies (the PostgreSQL driver, the server, metrics and tracing, the CLI) nor modules
only some features use. Besides start-up time, what is imported stays on the heap, and every
full garbage collection walks it (in S1, the collector's share grew with the heap)."""

from __future__ import annotations

import json
import subprocess
import sys

# Loaded only by the features that need them.
NOT_AT_IMPORT = [
    "asyncpg",
    "click",
    "starlette",
    "uvicorn",
    "prometheus_client",
    "opentelemetry",
    "http.client",  # S3Storage
    "email",
    "perdure.cli",
    "perdure.server",
    "perdure.contrib",
    "perdure.converter._s3",
    "perdure._store._postgres",
]


def test_importing_the_client_and_worker_loads_no_optional_module() -> None:
    code = (
        "import json, sys; import perdure; from perdure import Client, Worker; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert "perdure.worker" in loaded  # the probe imported what it says
    assert [m for m in NOT_AT_IMPORT if m in loaded] == []
