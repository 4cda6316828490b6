"""Savers of the LangGraph scenario tests, and running a scenario on one of them.

Savers (``kind``):
* ``reference``: LangGraph's ``InMemorySaver`` (both doors); every other saver's record must equal its record.
* ``stock-sqlite``: LangGraph's ``SqliteSaver`` (sync) / ``AsyncSqliteSaver`` (async) on ``:memory:``. A control: a
  second, independent implementation that must also match the reference, so a harness that only fits
  ``InMemorySaver``'s quirks would show here.
* ``bedrock-memory`` / ``bedrock-sqlite``: ``BedrockSessionSaver`` over ``SessionClient.memory()`` /
  ``SessionClient.local(<file>)``, the savers under test (one class, sync and async methods).
* ``bedrock-grouped``: the file store with group commit forced on (writes that meet in flight share a batch step; off
  by default on embedded stores).
* ``bedrock-deferred``: the file store with ``deferred=True`` (calls return once queued; reads wait for the queue).
* ``bedrock-at-rest``: the file store encrypted at rest (a keyring with a default key: every session sealed).
* ``bedrock-http``: the Rust SDK backend through a ``LocalServer`` on 127.0.0.1 with 1 ms added per request (group
  commit on, as against Bedrock), with a thread index kept in a session.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _saver_harness import Driver
from _saver_scenarios import ENCRYPTED_SCENARIOS, SCENARIOS

AES_KEY = b"0123456789abcdef"
WRONG_KEY = b"fedcba9876543210"
MODES = ("sync", "async")
SAVERS_UNDER_TEST = ("stock-sqlite", "bedrock-memory", "bedrock-sqlite", "bedrock-grouped", "bedrock-deferred",
                     "bedrock-at-rest", "bedrock-http")


def encrypted_serde(key: bytes = AES_KEY) -> Any:
    from langgraph.checkpoint.serde.encrypted import EncryptedSerializer

    return EncryptedSerializer.from_pycryptodome_aes(key=key)


class SaverFactory:
    """Opens savers of one kind; ``reopen`` gives a new saver on the same storage (another client for a file)."""

    persistent = True  # reopen sees the same data

    def __init__(self, kind: str, mode: str, tmp_path: Path, stack: contextlib.ExitStack,
                 loop: asyncio.AbstractEventLoop | None, store_options: dict[str, Any] | None = None) -> None:
        self.store_options = dict(store_options or {})
        self.kind = kind
        self.mode = mode
        self.tmp_path = tmp_path
        self.stack = stack
        self.loop = loop
        self._shared: Any = None

    def _bedrock(self) -> tuple[Any, Any]:
        from bedrock_sessions import BedrockSessionSaver, SessionClient

        return BedrockSessionSaver, SessionClient

    def open(self, serde: Any = None) -> Any:
        kw = {} if serde is None else {"serde": serde}
        if self.kind == "reference":
            from langgraph.checkpoint.memory import InMemorySaver

            return InMemorySaver(**kw)
        if self.kind == "stock-sqlite":
            if self.mode == "sync":
                from langgraph.checkpoint.sqlite import SqliteSaver

                if self._shared is None:
                    self._shared = sqlite3.connect(":memory:", check_same_thread=False)
                    self.stack.callback(self._shared.close)
                return SqliteSaver(self._shared, **kw)
            import aiosqlite
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

            assert self.loop is not None
            if self._shared is None:
                self._shared = self.loop.run_until_complete(aiosqlite.connect(":memory:"))
                conn = self._shared
                self.stack.callback(lambda: self.loop.run_until_complete(conn.close()))  # type: ignore[union-attr]
            shared = self._shared

            async def make() -> Any:  # it binds the running loop
                return AsyncSqliteSaver(shared, **kw)

            return self.loop.run_until_complete(make())
        saver_cls, client_cls = self._bedrock()
        if self.kind == "bedrock-memory":
            if self._shared is None:
                self._shared = client_cls.memory(**self.store_options)
                self.stack.callback(self._shared.close)
            return saver_cls(client=self._shared, **kw)
        if self.kind in ("bedrock-sqlite", "bedrock-grouped", "bedrock-deferred", "bedrock-at-rest"):
            options = dict(self.store_options)
            if self.kind == "bedrock-at-rest":
                from _support import suite_keyring

                options.setdefault("keyring", suite_keyring(default=True))
            client = client_cls.local(str(self.tmp_path / "s.db"), **options)
            self.stack.callback(client.close)
            saver = saver_cls(client=client, deferred=self.kind == "bedrock-deferred", **kw)
            if self.kind == "bedrock-grouped":
                from bedrock_sessions import _core

                saver._native = _core.NativeSaver(saver._native_client, group_commit=True)
            return saver
        if self.kind == "bedrock-http":
            from bedrock_sessions.server import LocalServer

            if self._shared is None:
                store = client_cls.memory(**self.store_options)
                server = LocalServer(store, latency=0.001).start()
                self.stack.callback(store.close)
                self.stack.callback(server.stop)
                self._shared = (server, server.client.create_session()["sessionId"])
            server, index = self._shared
            client = client_cls.bedrock(endpoint_url=server.endpoint_url, region_name="us-east-1",
                                        aws_access_key_id="x", aws_secret_access_key="y", thread_index=index)
            self.stack.callback(client.close)
            return saver_cls(client=client, **kw)
        raise ValueError(self.kind)

    reopen = open


@contextlib.contextmanager
def open_driver(kind: str, mode: str, tmp_path: Path, serde: Any = None,
                store_options: dict[str, Any] | None = None) -> Iterator[tuple[Driver, SaverFactory]]:
    with contextlib.ExitStack() as stack:
        loop = None
        if mode == "async":
            loop = asyncio.new_event_loop()

            def close_loop() -> None:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
                loop.close()

            stack.callback(close_loop)  # registered first: runs last
        factory = SaverFactory(kind, mode, tmp_path, stack, loop, store_options)
        saver = factory.open(serde)
        yield Driver(saver, mode, loop), factory


# Store options of our savers per scenario. The embedded store enforces the service's quota of 1000 steps
# per session by default (so a thread meets it locally as on Bedrock); the long thread needs ~1200 steps, so it
# moves on to a second session (test_rollover.py runs every scenario with a quota of a few steps).
SCENARIO_STORE_OPTIONS: dict[str, dict[str, Any]] = {}


def run_scenario(name: str, kind: str, mode: str, tmp_path: Path) -> list[Any]:
    serde = encrypted_serde() if name in ENCRYPTED_SCENARIOS else None
    with open_driver(kind, mode, tmp_path, serde, SCENARIO_STORE_OPTIONS.get(name)) as (drv, _):
        SCENARIOS[name](drv)
        return drv.rec.normalized()
