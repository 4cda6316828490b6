"""Data written in layout li1 by the LlamaIndex stores before their engine moved to Rust keeps loading.

``data/li1_store.db`` was written by the Python implementation of commit 88bea87 (``data/make_li1_store.py``
writes it again from git history): a Memory key over several generations (a 12-step quota and an idle gap past
the idle timeout), archived and deleted messages, images as image blocks, an event split over steps, a
BaseChatStore key with insertions and deletions, a key that is a session id, and saved workflows (a multi-step
context, a tombstone, a run across sessions). ``data/li1_expected.json`` is what that implementation read back."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from _li_support import msg, text_of

from bedrock_sessions import SessionClient
from bedrock_sessions.llama_index import SessionChatStore, SessionDBChatStore, SessionWorkflowStore

DATA = Path(__file__).resolve().parent / "data"
OPTS = dict(max_steps_per_session=12, max_step_bytes=65536, snapshot_every=4)


@pytest.fixture()
def old_store(tmp_path: Path) -> tuple[SessionClient, dict[str, Any]]:
    db = tmp_path / "li1_store.db"
    shutil.copy(DATA / "li1_store.db", db)
    expected = json.loads((DATA / "li1_expected.json").read_text())
    assert expected["layout"] == "li1"
    return SessionClient.local(db, max_steps_per_session=12, max_step_bytes=65536), expected


def test_chat_logs_written_before_load_the_same(old_store: tuple[SessionClient, dict[str, Any]]) -> None:
    client, expected = old_store

    async def main() -> None:
        store = SessionDBChatStore(client, **OPTS)
        entries = await store.get_entries("ana")
        assert [[i, s.value, m.model_dump(mode="json")] for i, s, m in entries] == expected["db:ana"]
        assert await store.get_keys() == expected["db:keys"]

    asyncio.run(main())
    chat = SessionChatStore(client, namespace="chat", **OPTS)
    assert [m.model_dump(mode="json") for m in chat.get_messages("bob")] == expected["chat:bob"]
    sid = expected["chat:sid"]
    assert [m.model_dump(mode="json") for m in chat.get_messages(sid)] == expected["chat:sid:messages"]
    assert chat.session_of(sid) == sid
    assert sorted(chat.get_keys()) == expected["chat:keys"]


def test_workflows_saved_before_load_the_same(old_store: tuple[SessionClient, dict[str, Any]]) -> None:
    client, expected = old_store
    wf = SessionWorkflowStore(client, max_step_bytes=65536)
    for run in ("r1", "r2", "r3"):
        assert wf.load_dict("ana", run) == expected[f"wf:{run}"]


def test_keys_written_before_go_on(old_store: tuple[SessionClient, dict[str, Any]]) -> None:
    """The new engine continues the old logs: new messages land after the old ones, across further generations,
    and a fresh reader sees both."""
    client, expected = old_store

    async def main() -> None:
        store = SessionDBChatStore(client, **OPTS)
        for i in range(20):
            await store.add_message("ana", msg(f"new {i}"))
        fresh = SessionDBChatStore(client, **OPTS)
        entries = await fresh.get_entries("ana")
        old = expected["db:ana"]
        assert [[i, s.value, m.model_dump(mode="json")] for i, s, m in entries[: len(old)]] == old
        assert [text_of(m) for _, _, m in entries[len(old):]] == [f"new {i}" for i in range(20)]
        assert [e[0] for e in entries[len(old):]] == list(range(old[-1][0] + 1, old[-1][0] + 21))

    asyncio.run(main())
    wf = SessionWorkflowStore(client, max_step_bytes=65536)
    wf.save("ana", "r1", {"state": {"n": 3}})
    assert SessionWorkflowStore(client, max_step_bytes=65536).load_dict("ana", "r1") == {"state": {"n": 3}}
    assert wf.load_dict("ana", "r2") is None
