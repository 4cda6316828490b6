#!/usr/bin/env python
"""LlamaIndex memory: our SessionDBChatStore against LlamaIndex's own SQLAlchemyChatStore (SQLite through aiosqlite),
in one process run.

    python benches/llama_memory.py                     # about a minute on 2 cores
    python benches/llama_memory.py --quick             # everything small (a smoke test)
    python benches/llama_memory.py --json li.json

Workloads, each store on a fresh key, warm-up excluded:

- ``get_messages``: the messages of a key holding ``--messages`` of them, read by a store that has not seen the key
  (cold: a new store object on the same database each time, as a new process would) and by the writer (warm);
- ``memory turn``: a turn of LlamaIndex's ``Memory`` (the user's message put, the memory read, the answer put).

Stores: ``sqlalchemy`` (the peer: a SQLite file), and ours on the embedded store (``ours-file``, ``ours-memory``) and
on the Bedrock backend through the local server (``ours-http``, 127.0.0.1, ``--latency-ms`` added to each request).
With ``--before REV`` (default: the commit before the stores' engine moved to the Rust core; ``--before ""`` skips
it), the same three again with the Python implementation of that commit (``before-file``...), taken from git
history (``benches/_li_before.py``), so that before and after are measured in one run.
Ratios are ours / sqlalchemy (below 1 is faster). Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory import Memory
from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore

import bedrock_sessions
from bedrock_sessions import SessionClient
from bedrock_sessions.llama_index import SessionDBChatStore
from bedrock_sessions.server import LocalServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _li_before  # noqa: E402

SIZES = {"default": {"messages": 200, "reads": 20, "turns": 50}, "quick": {"messages": 20, "reads": 3, "turns": 5}}
STORES = ("sqlalchemy", "ours-file", "ours-memory", "ours-http")
BEFORE_STORES = ("before-file", "before-memory", "before-http")


def message(i: int) -> ChatMessage:
    role = "user" if i % 2 == 0 else "assistant"
    return ChatMessage(role=role, content=f"message {i}: " + "lorem ipsum dolor sit amet " * 8)


class Stores:
    """Opens each kind of store; a second store object on the same data for cold reads."""

    def __init__(self, tmp: str, latency_ms: float, before: str) -> None:
        self.tmp = tmp
        self.before = before
        self.server = LocalServer(os.path.join(tmp, "server.db"), host="127.0.0.1", latency=latency_ms / 1000)
        self.server.start()
        self.memory_client = SessionClient.memory()
        self.index_session = ""
        self._sqlalchemy: list[SQLAlchemyChatStore] = []

    def _http_client(self) -> SessionClient:
        args = dict(endpoint_url=self.server.endpoint_url, region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE",
                    aws_secret_access_key="secret")
        if not self.index_session:
            self.index_session = SessionClient.bedrock(**args).create_session()["sessionId"]
        return SessionClient.bedrock(thread_index=self.index_session, **args)

    def open(self, kind: str) -> Any:
        cls: Any = SessionDBChatStore
        if kind.startswith("before-"):
            cls = _li_before.load(self.before).SessionDBChatStore
            kind = "ours-" + kind.removeprefix("before-")
        if kind == "sqlalchemy":
            uri = "sqlite+aiosqlite:///" + os.path.join(self.tmp, "sqlalchemy.db")
            store = SQLAlchemyChatStore(table_name="llama_index_memory", async_database_uri=uri)
            self._sqlalchemy.append(store)
            return store
        if kind == "ours-file":
            return cls(SessionClient.local(os.path.join(self.tmp, "ours.db")))
        if kind == "ours-memory":
            return cls(self.memory_client)
        return cls(self._http_client())

    async def aclose(self) -> None:
        for s in self._sqlalchemy:
            if s._async_engine is not None:
                await s._async_engine.dispose()
        self.server.stop()


async def timed(n: int, op: Callable[[int], Awaitable[Any]]) -> list[float]:
    await op(-1)  # warm-up
    out = []
    for i in range(n):
        t = time.perf_counter()
        await op(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


async def bench(kind: str, stores: Stores, size: dict[str, int]) -> dict[str, float]:
    key = f"bench-{kind}-{time.monotonic_ns()}"
    writer = stores.open(kind)
    msgs = [message(i) for i in range(size["messages"])]
    for m in msgs:
        await writer.add_message(key, m)

    async def cold(_: int) -> None:
        got = await stores.open(kind).get_messages(key)
        assert len(got) == len(msgs), (kind, len(got))

    async def warm(_: int) -> None:
        got = await writer.get_messages(key)
        assert len(got) == len(msgs), (kind, len(got))

    mem = Memory.from_defaults(session_id=key + "-memory", chat_store=stores.open(kind), token_limit=1_000_000)

    async def turn(i: int) -> None:
        await mem.aput(ChatMessage(role="user", content=f"question {i}"))
        await mem.aget()
        await mem.aput(ChatMessage(role="assistant", content=f"answer {i}"))

    out = {}
    for name, n, op in (("get_messages cold", size["reads"], cold), ("get_messages warm", size["reads"], warm),
                        ("memory turn", size["turns"], turn)):
        times = await timed(n, op)
        out[name] = statistics.median(times)
    assert len(await mem.aget_all()) == 2 * (size["turns"] + 1)
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    size = SIZES["quick" if args.quick else "default"]
    with tempfile.TemporaryDirectory() as tmp:
        stores = Stores(tmp, args.latency_ms, args.before)
        kinds = list(STORES)
        if args.before:
            try:
                _li_before.load(args.before)
                kinds += BEFORE_STORES
            except OSError as e:
                print(f"no before figures: {e}", file=sys.stderr)
        try:
            results = {kind: await bench(kind, stores, size) for kind in kinds}
        finally:
            await stores.aclose()
    return {"sizes": size, "latency_ms": args.latency_ms, "median_ms": results}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--json")
    p.add_argument("--before", default=_li_before.BEFORE, help="git revision of the Python implementation ('' skips)")
    args = p.parse_args()
    report = asyncio.run(main_async(args))
    report["machine"] = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
                         "bedrock_sessions": bedrock_sessions.__file__}
    med = report["median_ms"]
    print(f"{report['sizes']['messages']} messages; median ms per operation; ratio = ours / sqlalchemy")
    kinds = list(med)
    print(f"{'operation':<20}" + "".join(f"{k:>14}" for k in kinds))
    for op in med["sqlalchemy"]:
        print(f"{op:<20}" + "".join(f"{med[k][op]:>14.2f}" for k in kinds))
        print(f"{'  ratio':<20}" + "".join(f"{med[k][op] / med['sqlalchemy'][op]:>14.2f}" for k in kinds))
    if "before-file" in med:
        print("after / before, below 1: the Rust engine is faster")
        print(f"{'operation':<20}" + "".join(f"{k:>14}" for k in ("file", "memory", "http")))
        for op in med["sqlalchemy"]:
            print(f"{op:<20}" + "".join(
                f"{med['ours-' + k][op] / med['before-' + k][op]:>14.2f}" for k in ("file", "memory", "http")))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
