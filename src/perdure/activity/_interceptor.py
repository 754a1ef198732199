"""Activity interceptors, in the shapes of Temporal's Python SDK: the inbound chain wraps the
run of each attempt, the outbound chain what the activity calls (``activity.info()``,
``activity.heartbeat()``)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from perdure._common.payload import Payload

if TYPE_CHECKING:
    from perdure.activity._context import Info


@dataclass
class ExecuteActivityInput:
    """Input for :meth:`ActivityInboundInterceptor.execute_activity`."""

    fn: Callable[..., Any]
    args: Sequence[Any]
    executor: concurrent.futures.Executor | None
    headers: Mapping[str, Payload]


class ActivityInboundInterceptor:
    """Wraps each attempt of an activity. It runs in the activity's context (so
    ``activity.info()`` works in it, and context variables it sets are seen by the function,
    sync ones included); call ``self.next``'s (or ``super()``'s) method from yours."""

    def __init__(self, next: ActivityInboundInterceptor) -> None:
        self.next = next

    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        """Called before each attempt with the outbound chain: wrap it in your own and pass
        that on (``self.next.init(Mine(outbound))``)."""
        self.next.init(outbound)

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        """Run the attempt; returns its result."""
        return await self.next.execute_activity(input)


class ActivityOutboundInterceptor:
    """Wraps what an activity calls out to."""

    def __init__(self, next: ActivityOutboundInterceptor) -> None:
        self.next = next

    def info(self) -> Info:
        """What ``activity.info()`` returns."""
        return self.next.info()

    def heartbeat(self, *details: Any) -> None:
        """``activity.heartbeat(*details)``."""
        self.next.heartbeat(*details)
