"""One scenario run of one system, in a process of its own (the runner starts one per run).

    python -m benchmarks.peers.child SYSTEM SCENARIO --scale quick|full
    python -m benchmarks.peers.child SYSTEM s5-worker --phase start|resume --target T --n N
    python -m benchmarks.peers.child SYSTEM s7-worker --target T

The last line printed is ``RESULT {json}``: ``{"figures": {...}, "notes": [...]}``, or
``{"na": reason}`` when the scenario cannot be run fairly on the system.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import sys
from types import ModuleType

from benchmarks.peers.common import SCALES, NotApplicable

# system name -> (module, variant)
SYSTEMS = {
    "perdure": ("perdure_peer", "sqlite"),
    "perdure-sqlite": ("perdure_peer", "sqlite"),
    "perdure-postgres": ("perdure_peer", "postgres"),
    "perdure-postgres-2w": ("perdure_peer", "postgres-2w"),
    "temporal": ("temporal_peer", "dev-server"),
    "dbos-sqlite": ("dbos_peer", "sqlite"),
    "dbos-postgres": ("dbos_peer", "postgres"),
}


def load(system: str) -> tuple[ModuleType, str]:
    module, variant = SYSTEMS[system]
    return importlib.import_module(f"benchmarks.peers.{module}"), variant


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("system", choices=sorted(SYSTEMS))
    scenarios = ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s5-worker", "s7-worker"]
    parser.add_argument("scenario", choices=scenarios)
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--phase", choices=["start", "resume"])
    parser.add_argument("--target", help="s5-worker: the database URL or server address")
    parser.add_argument("--n", type=int, help="s5-worker: how many workflows")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    module, variant = load(args.system)
    if args.scenario == "s5-worker":
        asyncio.run(module.s5_worker(variant, args.phase, args.target, args.n))
        return 0
    if args.scenario == "s7-worker":
        asyncio.run(module.s7_worker(variant, args.target))
        return 0
    try:
        result = asyncio.run(getattr(module, args.scenario)(variant, SCALES[args.scale]))
    except NotApplicable as exc:
        print("RESULT " + json.dumps({"na": str(exc)}), flush=True)
        return 0
    print("RESULT " + json.dumps({"figures": result.figures, "notes": result.notes}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
