"""How async methods reach each backend, the cheapest way that never stalls the event loop.

- ``memory``: in the calling coroutine. A call is a few map operations under a lock (microseconds), as cheap as
  the InMemorySaver's methods; a thread hop would cost ten times the call.
- ``local`` (a SQLite file): reads in the calling coroutine too (tens of microseconds with the GIL released; WAL
  readers never wait for a writer), writes on a pool thread: a commit waits for the disk, or for another
  process's write lock, and the event loop must not.
- ``bedrock``: the core's own future (the AWS SDK's async I/O on the core's runtime, no thread per call).

Used by the saver's async methods, :class:`~bedrock_sessions.AsyncSessionClient` and the LlamaIndex stores.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

Door = Literal["inline", "threads", "native"]

DOORS: dict[str, Door] = {"memory": "inline", "local": "threads", "bedrock": "native"}

# Operations that only read: on a file they run in the calling coroutine.
READ_OPERATIONS = frozenset(
    {"GetSession", "ListSessions", "ListInvocations", "GetInvocationStep", "ListInvocationSteps", "ListTagsForResource"}
)


def door_of(native_client: Any) -> Door:
    return DOORS[native_client.backend]


class _StoreThreads:
    """The threads on which async methods write to SQLite files: one pool per process, made on first use and made
    anew in a forked child (a pool's threads do not survive fork)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = -1
        self._executor: ThreadPoolExecutor | None = None

    def executor(self) -> ThreadPoolExecutor:
        pid = os.getpid()
        if self._pid != pid or self._executor is None:
            with self._lock:
                if self._pid != pid or self._executor is None:
                    # SQLite writes one transaction at a time per file; a few threads cover several files.
                    self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bedrock-sessions-store")
                    self._pid = pid
        return self._executor


STORE_THREADS = _StoreThreads()


async def on_store_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on a store thread, awaited."""
    return await asyncio.get_running_loop().run_in_executor(STORE_THREADS.executor(), functools.partial(fn, *args))


async def run(door: Door, read: bool, method: Callable[..., Any], *args: Any) -> Any:
    """``method(*args)``, a native call, through ``door``; ``read``: the call only reads (on a file it then runs in the
    calling coroutine). Over the network it is the call's native future (``asynchronous=True``)."""
    if door == "inline" or (door == "threads" and read):
        return method(*args)
    if door == "threads":
        return await on_store_thread(method, *args)
    return await method(*args, asynchronous=True)


async def call(native_client: Any, door: Door, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """One session API operation through the door of its backend."""
    if door == "native":
        return await native_client.call_async(operation, params)
    return await run(door, operation in READ_OPERATIONS, native_client.call, operation, params)
