"""Paginators with botocore's behaviour: ``PaginationConfig`` (MaxItems, PageSize, StartingToken),
resume tokens and ``build_full_result``, sync and async."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from .exceptions import ValidationException

# python name -> (operation, result key)
PAGINATED: dict[str, tuple[str, str]] = {
    "list_sessions": ("ListSessions", "sessionSummaries"),
    "list_invocations": ("ListInvocations", "invocationSummaries"),
    "list_invocation_steps": ("ListInvocationSteps", "invocationStepSummaries"),
}


def _encode_resume(next_token: str | None, skip: int) -> str:
    data: dict[str, Any] = {"boto_truncate_amount": skip}
    if next_token is not None:
        data["nextToken"] = next_token
    return base64.b64encode(json.dumps(data).encode()).decode()


def _decode_starting(token: str, operation: str) -> tuple[str | None, int]:
    """A StartingToken is either a service nextToken or a resume token of a truncated run."""
    try:
        data = json.loads(base64.b64decode(token.encode(), validate=True))
        if isinstance(data, dict) and "boto_truncate_amount" in data:
            return data.get("nextToken"), int(data["boto_truncate_amount"])
    except (ValueError, TypeError):
        pass
    return token, 0


class _Plan:
    """The bookkeeping shared by the sync and async page iterators."""

    def __init__(self, operation: str, result_key: str, kwargs: dict[str, Any]) -> None:
        self.operation = operation
        self.result_key = result_key
        config = dict(kwargs.pop("PaginationConfig", None) or {})
        unknown = set(config) - {"MaxItems", "PageSize", "StartingToken"}
        if unknown:
            raise ValidationException(
                {"Error": {"Code": "ValidationException", "Message": f"Unknown PaginationConfig keys: {sorted(unknown)}"}},
                operation,
            )
        self.kwargs = kwargs
        self.max_items: int | None = config.get("MaxItems")
        if config.get("PageSize") is not None:
            self.kwargs["maxResults"] = config["PageSize"]
        self.token: str | None = None
        self.skip = 0
        if config.get("StartingToken"):
            self.token, self.skip = _decode_starting(config["StartingToken"], operation)
        self.seen = 0
        self.resume_token: str | None = None
        self.done = False

    def request(self) -> dict[str, Any]:
        req = dict(self.kwargs)
        if self.token is not None:
            req["nextToken"] = self.token
        return req

    def accept(self, page: dict[str, Any]) -> dict[str, Any]:
        """Trims a page to MaxItems and the skip of a resume token; decides whether to go on."""
        items = list(page.get(self.result_key, []))
        requested_token = self.token
        skipped = 0
        if self.skip:
            skipped = self.skip
            items = items[self.skip :]
            self.skip = 0
        next_token = page.get("nextToken")
        if self.max_items is not None and self.seen + len(items) >= self.max_items:
            keep = self.max_items - self.seen
            truncated = len(items) > keep
            items = items[:keep]
            self.done = True
            if truncated:
                self.resume_token = _encode_resume(requested_token, skipped + keep)
            elif next_token:
                self.resume_token = next_token
        elif not next_token:
            self.done = True
        self.seen += len(items)
        self.token = next_token
        out = dict(page)
        out[self.result_key] = items
        if self.done:
            out.pop("nextToken", None)
        return out

    def full(self, pages: list[dict[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {self.result_key: [it for p in pages for it in p[self.result_key]]}
        if self.resume_token:
            result["NextToken"] = self.resume_token
        return result


class PageIterator:
    def __init__(self, call: Callable[[str, dict[str, Any]], dict[str, Any]], plan: _Plan) -> None:
        self._call = call
        self._plan = plan

    @property
    def resume_token(self) -> str | None:
        return self._plan.resume_token

    def __iter__(self) -> Iterator[dict[str, Any]]:
        plan = self._plan
        while not plan.done:
            yield plan.accept(self._call(plan.operation, plan.request()))

    def build_full_result(self) -> dict[str, Any]:
        return self._plan.full(list(self))


class Paginator:
    """``client.get_paginator(name)``: ``paginate(**kwargs)`` yields pages."""

    def __init__(self, call: Callable[[str, dict[str, Any]], dict[str, Any]], name: str) -> None:
        self._call = call
        self._operation, self._result_key = PAGINATED[name]

    def paginate(self, **kwargs: Any) -> PageIterator:
        return PageIterator(self._call, _Plan(self._operation, self._result_key, kwargs))


class AsyncPageIterator:
    def __init__(self, call: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]], plan: _Plan) -> None:
        self._call = call
        self._plan = plan

    @property
    def resume_token(self) -> str | None:
        return self._plan.resume_token

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        plan = self._plan
        while not plan.done:
            yield plan.accept(await self._call(plan.operation, plan.request()))

    async def build_full_result(self) -> dict[str, Any]:
        return self._plan.full([p async for p in self])


class AsyncPaginator:
    """The async client's paginator: ``async for page in paginator.paginate(**kwargs)``."""

    def __init__(self, call: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]], name: str) -> None:
        self._call = call
        self._operation, self._result_key = PAGINATED[name]

    def paginate(self, **kwargs: Any) -> AsyncPageIterator:
        return AsyncPageIterator(self._call, _Plan(self._operation, self._result_key, kwargs))
