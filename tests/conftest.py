"""Fixtures: every behaviour test runs against each store kind x each door.

* store kinds: ``memory`` (``SessionClient.memory()``) and ``sqlite`` (a real SQLite file in ``tmp_path``).
  A new kind (e.g. ``server``, an HTTP backend) is added with one entry in ``STORE_FACTORIES``.
* doors: ``sync`` (``SessionClient``) and ``async`` (``AsyncSessionClient`` behind ``AsyncDoor``, an adapter
  with the synchronous method names that runs each coroutine on one event loop owned by the fixture).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from _support import OPERATIONS  # noqa: E402

from bedrock_sessions import AsyncSessionClient, SessionClient  # noqa: E402

STORE_KINDS = ("memory", "sqlite")
DOORS = ("sync", "async")


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("timeout"):
        # Without pytest-timeout the marks are inert (and must not warn: warnings are errors here).
        config.addinivalue_line("markers", "timeout(seconds): per-test time limit (pytest-timeout)")


# ---------------------------------------------------------------- store factories
# A factory takes the client class of the door, the test's tmp_path, an ExitStack for its own cleanup
# (a server kind would stop its server there) and the client options (clock, idle_timeout,
# max_steps_per_session, max_step_bytes, default_page_size, region, account_id), and returns an open client.

StoreFactory = Callable[[type, Path, contextlib.ExitStack, dict[str, Any]], Any]

_file_numbers = itertools.count()


def _open_memory(cls: type, tmp_path: Path, stack: contextlib.ExitStack, options: dict[str, Any]) -> Any:
    return cls.memory(**options)


def _open_sqlite(cls: type, tmp_path: Path, stack: contextlib.ExitStack, options: dict[str, Any]) -> Any:
    path = tmp_path / f"store-{next(_file_numbers)}.db"
    return cls.local(str(path), **options)


STORE_FACTORIES: dict[str, StoreFactory] = {
    "memory": _open_memory,
    "sqlite": _open_sqlite,
}

DOOR_CLASSES: dict[str, type] = {"sync": SessionClient, "async": AsyncSessionClient}


def open_store(kind: str, door: str, tmp_path: Path, stack: contextlib.ExitStack, **options: Any) -> Any:
    """A raw client (SessionClient or AsyncSessionClient) of store ``kind``."""
    return STORE_FACTORIES[kind](DOOR_CLASSES[door], tmp_path, stack, options)


# ---------------------------------------------------------------- the async door as a sync object
async def _collect_pages(page_iterator: Any) -> list[dict[str, Any]]:
    return [page async for page in page_iterator]


class _AsyncPageIteratorDoor:
    def __init__(self, page_iterator: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._it = page_iterator
        self._loop = loop

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._loop.run_until_complete(_collect_pages(self._it)))

    def build_full_result(self) -> dict[str, Any]:
        result = self._it.build_full_result()
        assert inspect.isawaitable(result), "the async paginator's build_full_result must be awaitable"
        return self._loop.run_until_complete(result)


class _AsyncPaginatorDoor:
    def __init__(self, paginator: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._paginator = paginator
        self._loop = loop

    def paginate(self, **kwargs: Any) -> _AsyncPageIteratorDoor:
        return _AsyncPageIteratorDoor(self._paginator.paginate(**kwargs), self._loop)


class AsyncDoor:
    """``AsyncSessionClient`` with the synchronous method names of ``SessionClient``."""

    def __init__(self, aclient: AsyncSessionClient, loop: asyncio.AbstractEventLoop) -> None:
        self._aclient = aclient
        self._loop = loop

    @property
    def exceptions(self) -> Any:
        return self._aclient.exceptions

    @property
    def meta(self) -> Any:
        return self._aclient.meta

    def __getattr__(self, name: str) -> Any:
        if name not in OPERATIONS:
            raise AttributeError(name)
        method = getattr(self._aclient, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            awaitable = method(*args, **kwargs)
            assert inspect.isawaitable(awaitable), f"{name} of the async client must return an awaitable"
            return self._loop.run_until_complete(awaitable)

        return call

    def can_paginate(self, name: str) -> bool:
        return self._aclient.can_paginate(name)

    def get_paginator(self, name: str) -> _AsyncPaginatorDoor:
        return _AsyncPaginatorDoor(self._aclient.get_paginator(name), self._loop)

    def close(self) -> None:
        self._loop.run_until_complete(self._aclient.close())

    def __enter__(self) -> AsyncDoor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- fixtures
@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=DOORS)
def door(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def open_raw(store_kind: str, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``open_raw(door, **options)``: a raw client of the current store kind (closed at teardown)."""
    with contextlib.ExitStack() as stack:

        def open_(door: str, **options: Any) -> Any:
            raw = open_store(store_kind, door, tmp_path, stack, **options)
            if door == "sync":
                stack.callback(raw.close)
            else:
                stack.callback(lambda: asyncio.run(raw.close()))
            return raw

        yield open_


@pytest.fixture
def make_client(store_kind: str, door: str, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``make_client(**options)``: a new store of the current kind seen through the current door, with the
    synchronous method names either way. Each call opens a new, empty store."""
    with contextlib.ExitStack() as stack:
        loop: asyncio.AbstractEventLoop | None = None

        def make(**options: Any) -> Any:
            nonlocal loop
            raw = open_store(store_kind, door, tmp_path, stack, **options)
            if door == "sync":
                stack.callback(raw.close)
                return raw
            if loop is None:
                loop = asyncio.new_event_loop()
                stack.callback(loop.close)  # registered first: runs after every client is closed
            client = AsyncDoor(raw, loop)
            stack.callback(client.close)
            return client

        yield make


@pytest.fixture
def client(make_client: Callable[..., Any]) -> Any:
    """A client with default options, 4 ways: {memory, sqlite} x {sync, async}."""
    return make_client()
