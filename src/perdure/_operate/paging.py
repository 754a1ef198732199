"""One page of a workflow listing, and the token of the next: the HTTP API's list route."""

from __future__ import annotations

from dataclasses import dataclass

from perdure._errors import InvalidArgumentError
from perdure.client import Client, WorkflowExecution


@dataclass(frozen=True)
class WorkflowPage:
    """Executions of one page, and the token of the next page (None after the last)."""

    workflows: list[WorkflowExecution]
    next_page_token: bytes | None


async def list_page(
    client: Client, query: str | None, page_size: int, next_page_token: bytes | None
) -> WorkflowPage:
    """The page after ``next_page_token`` (the first without one) of the runs ``query``
    matches.

    Raises:
        VisibilityQueryError: a malformed query.
        InvalidArgumentError: a token this listing did not hand out.
    """
    offset = 0
    if next_page_token is not None:
        text = next_page_token.decode("ascii", "replace")
        if not text.isdigit():
            raise InvalidArgumentError("next_page_token: not a token of this listing")
        offset = int(text)
    found = [
        wf
        async for wf in client.list_workflows(
            query, page_size=offset + page_size + 1, limit=offset + page_size + 1
        )
    ]
    page = found[offset : offset + page_size]
    more = len(found) > offset + page_size
    return WorkflowPage(page, str(offset + page_size).encode() if more else None)
