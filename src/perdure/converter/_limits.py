"""How large the payloads of one call may be: a warning at 512 KiB, an error at 2 MiB.

Every payload lands in history and is read back on each replay, so large ones slow every
workflow task that touches them. The limit counts the payloads of one call together (all
arguments of a workflow start, one activity result), as they are stored together; check them
after the codec has run, so compression counts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from perdure._common.payload import Payload
from perdure._errors import PayloadSizeError

PAYLOAD_WARN_BYTES = 512 * 1024
PAYLOAD_LIMIT_BYTES = 2 * 1024 * 1024

_log = logging.getLogger("perdure.converter")

_ADVICE = (
    "store large data elsewhere (a blob store, a database) and pass a reference; "
    "or compress it with ZlibCodec (DataConverter(payload_codec=ZlibCodec()))"
)


def check_payloads(
    payloads: Sequence[Payload],
    what: str,
    *,
    logger: logging.Logger | None = None,
    warn_bytes: int = PAYLOAD_WARN_BYTES,
    limit_bytes: int = PAYLOAD_LIMIT_BYTES,
) -> None:
    """Warn about payloads over ``warn_bytes`` and refuse those over ``limit_bytes``.

    Sizes are summed over ``payloads`` once; below the warning size that is all it costs.

    Args:
        payloads: the payloads of one call, as they will be stored (after the codec).
        what: what they are, for the messages, e.g. ``"argument 1 of workflow 'Order'"``.
        logger: where the warning goes (default: the ``perdure.converter`` logger).
        warn_bytes: log one warning when the total is over this.
        limit_bytes: raise when the total is over this.

    Raises:
        PayloadSizeError: the payloads total more than ``limit_bytes``.
    """
    total = sum(p.size() for p in payloads)
    if total <= warn_bytes:
        return
    size = _describe(payloads, total)
    if total > limit_bytes:
        raise PayloadSizeError(
            f"{what} is {size}, over perdure's payload limit of {_kib(limit_bytes)}: {_ADVICE}"
        )
    (logger or _log).warning(
        "%s is %s, over the %s at which perdure warns (the limit is %s); "
        "large payloads slow every replay: %s",
        what,
        size,
        _kib(warn_bytes),
        _kib(limit_bytes),
        _ADVICE,
    )


def _kib(n: int) -> str:
    return f"{n / 1024:,.0f} KiB"


def _describe(payloads: Sequence[Payload], total: int) -> str:
    # Bytes too: just over the limit rounds to the limit in KiB.
    exact = f"{_kib(total)} ({total:,} bytes)"
    if len(payloads) <= 1:
        return exact
    index, largest = max(enumerate(payloads), key=lambda item: item[1].size())
    return (
        f"{exact} in {len(payloads)} payloads "
        f"(the largest, number {index + 1}, is {_kib(largest.size())})"
    )
