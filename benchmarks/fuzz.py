"""Coverage-guided fuzzing with atheris (RELIABILITY.md section 8): the event decoder, the
payload converter and the list-query parser, each for ``--runs`` inputs (the long tier: a
million each). Only the declared exceptions may escape (any other is a crash: atheris
stops, prints the input and saves it as ``crash-*``), and no input may take over a second
(``-timeout=1``: libFuzzer kills the run and saves the input as ``timeout-*``).

Usage::

    pip install atheris                        # 62 MB: not in the dev extra
    python -m benchmarks.fuzz                  # all three targets, 1,000,000 inputs each
    python -m benchmarks.fuzz --target query --runs 10000

Each target runs in a process of its own (libFuzzer ends its process when done), with the
perdure modules it reaches instrumented for coverage. The figures: inputs run, seconds,
inputs a second, the slowest input, and how many raised each declared exception.

The CI tier is Hypothesis's (``tests/reliability/test_fuzz.py``).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

TARGETS = ("decoder", "payload", "query")
INSTRUMENTED = {
    "decoder": ["perdure._common.events", "perdure._common.payload"],
    "payload": [
        "perdure.converter._payload_converter",
        "perdure.converter._json",
        "perdure.converter._json_decode",
        "perdure.converter._json_shapes",
        "perdure._common.payload",
    ],
    "query": ["perdure._store._visibility_parse", "perdure._store._visibility_lex"],
}
ENCODINGS = [b"json/plain", b"binary/null", b"binary/plain", b"json/protobuf", b"binary/pickle"]


def _target(name: str, stats_path: str) -> Any:
    """The one-input function of ``name``, counting outcomes into ``stats_path`` now and
    then (libFuzzer exits the process without returning)."""
    import atheris

    from perdure._common.events import decode_attributes
    from perdure._common.payload import Payload
    from perdure._store._visibility_lex import VisibilityQueryError
    from perdure._store._visibility_parse import parse_query
    from perdure.converter import DataConverter
    from perdure.exceptions import PerdureError

    # Only the modules under test are instrumented (all of perdure takes half a minute).
    for module in INSTRUMENTED[name]:
        _instrument(atheris, importlib.import_module(module))

    converter = DataConverter.default.payload_converter
    outcomes: Counter[str] = Counter()
    slowest = [0.0]
    count = [0]

    def save() -> None:
        Path(stats_path).write_text(
            json.dumps({"runs": count[0], "slowest_s": slowest[0], "outcomes": outcomes})
        )

    def decoder(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        as_text = fdp.ConsumeBool()
        raw: bytes | str = (
            fdp.ConsumeUnicodeNoSurrogates(len(data)) if as_text else fdp.ConsumeBytes(len(data))
        )
        try:
            decode_attributes(raw)
        except ValueError as exc:
            outcomes[type(exc).__name__] += 1

    def payload(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        if fdp.ConsumeBool():
            encoding = ENCODINGS[fdp.ConsumeIntInRange(0, len(ENCODINGS) - 1)]
        else:
            encoding = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 20))
        body = fdp.ConsumeBytes(len(data))
        try:
            converter.from_payloads([Payload({"encoding": encoding}, body)])
        except (PerdureError, TypeError, ValueError) as exc:
            outcomes[type(exc).__name__] += 1

    def query(data: bytes) -> None:
        text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))
        try:
            parse_query(text)
        except VisibilityQueryError as exc:
            outcomes[type(exc).__name__] += 1

    fn = {"decoder": decoder, "payload": payload, "query": query}[name]

    def one(data: bytes) -> None:
        began = time.perf_counter()
        fn(data)
        slowest[0] = max(slowest[0], time.perf_counter() - began)
        count[0] += 1
        if count[0] % 20_000 == 0:
            save()

    return one, save


def _instrument(atheris: Any, module: Any) -> None:
    """Coverage for every function and method defined in ``module``."""
    for value in list(vars(module).values()):
        members = vars(value).values() if inspect.isclass(value) else [value]
        for fn in members:
            fn = getattr(fn, "__func__", fn)
            if inspect.isfunction(fn) and fn.__module__ == module.__name__:
                atheris.instrument_func(fn)


def _child(name: str, runs: int, stats: str, corpus: str) -> None:
    import atheris

    one, save = _target(name, stats)
    argv = [sys.argv[0], f"-runs={runs}", "-timeout=1", "-rss_limit_mb=4096", corpus]
    atheris.Setup(argv, one)
    try:
        atheris.Fuzz()
    finally:
        save()


def run(name: str, runs: int, directory: Path) -> dict[str, Any]:
    stats = directory / f"{name}.json"
    corpus = directory / f"corpus-{name}"
    corpus.mkdir(exist_ok=True)
    began = time.monotonic()
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.fuzz", "--child", name, "--runs", str(runs)),
            *("--stats", str(stats), "--corpus", str(corpus)),
        ],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    seconds = time.monotonic() - began
    figures = json.loads(stats.read_text()) if stats.exists() else {"runs": 0, "outcomes": {}}
    crashed = proc.returncode != 0
    done = re.search(r"Done (\d+) runs", proc.stdout)  # libFuzzer's own count
    return {
        "target": name,
        "returncode": proc.returncode,
        "seconds": round(seconds, 1),
        "runs": int(done.group(1)) if done else figures["runs"],
        "slowest_s": round(figures.get("slowest_s", 0.0), 4),
        "outcomes": figures["outcomes"],
        "corpus": len(list(corpus.iterdir())),
        "tail": proc.stdout[-3000:] if crashed else proc.stdout.strip().splitlines()[-1:],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__)
    parser.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--child", choices=TARGETS, help=argparse.SUPPRESS)
    parser.add_argument("--stats", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.runs, args.stats, args.corpus)
        return 0
    directory = Path(tempfile.mkdtemp(prefix="perdure-fuzz-"))
    print(f"atheris fuzzing, {args.runs:,} inputs a target, artifacts in {directory}", flush=True)
    ok = True
    for name in TARGETS if args.target == "all" else [args.target]:
        r = run(name, args.runs, directory)
        rate = r["runs"] / r["seconds"] if r["seconds"] else 0
        print(
            f"{name}: {r['runs']:,} inputs in {r['seconds']} s ({rate:,.0f}/s), slowest "
            f"{r['slowest_s']} s, corpus {r['corpus']}, declared exceptions {r['outcomes']}, "
            f"exit {r['returncode']}",
            flush=True,
        )
        if r["returncode"] != 0 or r["runs"] < args.runs or r["slowest_s"] > 1.0:
            ok = False
            print(r["tail"], flush=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
