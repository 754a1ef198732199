"""The reliability harness (RELIABILITY.md section 0), shared by tests/reliability and
``python -m benchmarks.torture``: an activity ledger outside the store, a history auditor, a
Jepsen-style checker, a seeded fault-injecting store wrapper, named crash points, a loopback
TCP proxy and the worker processes that run the torture workflow.

Nothing here changes the engine: faults are injected at the store's public methods (the seam
workers call), crash points through the worker's and the store's crash hooks (which the
engine calls and the harness installs), network faults in a proxy.
"""

from __future__ import annotations

import os
import random

SEED_VARIABLE = "PERDURE_SEED"


def seed(default: int | None = None) -> int:
    """The run's seed: ``PERDURE_SEED`` if set (to re-run a failing seed alone), else
    ``default``, else a fresh random one. Tests print it in every failure message."""
    text = os.environ.get(SEED_VARIABLE)
    if text:
        return int(text)
    if default is not None:
        return default
    return random.SystemRandom().randrange(1, 2**31)


def rerun_hint(value: int, nodeid: str = "") -> str:
    """How to run this seed again, alone."""
    return f"seed {value}: re-run with {SEED_VARIABLE}={value} pytest {nodeid}".rstrip()
