"""How long writing and reading one history event's attributes takes: the store does both for
every event it appends or loads.

    python benchmarks/bench_serialization.py [--number N] [--runs R]

Times three realistic events (an ActivityTaskScheduled with input payloads and a retry policy,
an ActivityTaskCompleted with a result, a WorkflowExecutionStarted with memo and search
attributes), each encoded (``encode_attributes``) and decoded (``decode_attributes``) N times
per run, and prints the median of R runs in µs per operation, next to the implementation
before the orjson ``default=`` hook (kept below as the reference, so one run shows both). It
first checks that both write the same bytes and read the same values.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from perdure._common.events import decode_attributes, encode_attributes
from perdure._common.payload import Payload

# --- The reference: events.py and Payload's JSON form as they were before. ---


def _reference_payload_to_json(p: Payload) -> dict[str, Any]:
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
        "data": base64.b64encode(p.data).decode(),
    }


def _reference_payload_from_json(obj: dict[str, Any]) -> Payload:
    return Payload(
        metadata={k: base64.b64decode(v) for k, v in obj.get("metadata", {}).items()},
        data=base64.b64decode(obj.get("data", "")),
    )


def _reference_to_json(value: Any) -> Any:
    if isinstance(value, Payload):
        return _reference_payload_to_json(value)
    if isinstance(value, dict):
        return {k: _reference_to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reference_to_json(v) for v in value]
    return value


def _reference_from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 2 and "metadata" in value and "data" in value:
            return _reference_payload_from_json(value)
        return {k: _reference_from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reference_from_json(v) for v in value]
    return value


def reference_encode(attributes: dict[str, Any]) -> bytes:
    return orjson.dumps(_reference_to_json(attributes))


def reference_decode(data: bytes) -> dict[str, Any]:
    value: dict[str, Any] = _reference_from_json(orjson.loads(data))
    return value


# --- Realistic attributes, shaped as the runtime writes them. ---


def _json_payload(value: Any) -> Payload:
    return Payload({"encoding": b"json/plain"}, orjson.dumps(value))


EVENTS: dict[str, dict[str, Any]] = {
    "ActivityTaskScheduled": {
        "seq": 7,
        "activity_id": "7",
        "activity_type": "charge_card",
        "task_queue": "payments",
        "input": [
            _json_payload({"order_id": "o-1842", "amount": 4200, "currency": "EUR"}),
            _json_payload("customer-93811"),
        ],
        "schedule_to_close_timeout": None,
        "schedule_to_start_timeout": None,
        "start_to_close_timeout": 30.0,
        "heartbeat_timeout": None,
        "retry_policy": {
            "initial_interval": 1.0,
            "backoff_coefficient": 2.0,
            "maximum_interval": 100.0,
            "maximum_attempts": 5,
            "non_retryable_error_types": ["CardDeclined", "InvalidAmount"],
        },
    },
    "ActivityTaskCompleted": {
        "scheduled_event_id": 19,
        "seq": 7,
        "result": _json_payload({"charge_id": "ch_3Nx8", "status": "succeeded"}),
    },
    "WorkflowExecutionStarted": {
        "workflow_type": "OrderWorkflow",
        "workflow_id": "order-o-1842",
        "task_queue": "orders",
        "input": [_json_payload({"order_id": "o-1842", "items": [["sku-1", 2], ["sku-9", 1]]})],
        "attempt": 1,
        "randomness_seed": 9165154829601398909,
        "task_timeout": 10.0,
        "run_timeout": None,
        "execution_deadline": None,
        "retry_policy": None,
        "memo": {
            "customer": _json_payload("customer-93811"),
            "channel": _json_payload("web"),
            "note": Payload({"encoding": b"binary/null"}, b""),
        },
        "search_attributes": {
            "CustomerId": {"type": "Keyword", "values": ["customer-93811"]},
            "Priority": {"type": "Int", "values": [3]},
        },
        "parent": None,
        "continued_run_id": None,
        "first_execution_run_id": "8d52b44c-6d68-4f58-9444-ed12bbab9be0",
        "start_delay": None,
        "identity": "13556@worker-1",
    },
}


def per_op_us(fn: Callable[[Any], Any], arg: Any, number: int, runs: int) -> float:
    """Median over ``runs`` of the mean time of one call, in µs."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(number):
            fn(arg)
        times.append((time.perf_counter() - start) / number * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls per run")
    parser.add_argument("--runs", type=int, default=7, help="runs; the median is reported")
    args = parser.parse_args()

    for name, attributes in EVENTS.items():
        blob = encode_attributes(attributes)
        if blob != reference_encode(attributes):
            raise SystemExit(f"{name}: encode_attributes writes other bytes than the reference")
        if decode_attributes(blob) != reference_decode(blob) or decode_attributes(blob) != (
            attributes
        ):
            raise SystemExit(f"{name}: decode_attributes reads another value than the reference")

    print(f"µs per operation, median of {args.runs} runs of {args.number:,} calls")
    print(f"{'event':<26} {'op':<7} {'before':>8} {'after':>8} {'speed-up':>9}")
    totals = [0.0, 0.0]
    for name, attributes in EVENTS.items():
        blob = encode_attributes(attributes)
        for op, before_fn, after_fn, arg in (
            ("encode", reference_encode, encode_attributes, attributes),
            ("decode", reference_decode, decode_attributes, blob),
        ):
            before = per_op_us(before_fn, arg, args.number, args.runs)
            after = per_op_us(after_fn, arg, args.number, args.runs)
            totals[0] += before
            totals[1] += after
            print(f"{name:<26} {op:<7} {before:8.2f} {after:8.2f} {before / after:8.2f}x")
    print(f"{'all six':<34} {totals[0]:8.2f} {totals[1]:8.2f} {totals[0] / totals[1]:8.2f}x")


if __name__ == "__main__":
    main()
