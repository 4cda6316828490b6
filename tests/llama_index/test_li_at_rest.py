"""The LlamaIndex stores on an embedded store encrypted at rest and under retention (docs/encryption.md): chat messages
(text and image blocks) and a paused workflow's context are not in the SQLite file, its WAL or its index; they read
back whole; a chat past retention is gone from the store and erased from the file.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _at_rest import KEY_A, T0, encodings, found, new_material, write_keyring  # noqa: E402
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, TextBlock  # noqa: E402
from llama_index.core.memory import Memory  # noqa: E402

from bedrock_sessions import ManualClock, SessionClient  # noqa: E402
from bedrock_sessions.llama_index import SessionChatStore, SessionDBChatStore  # noqa: E402

SECRET = "CHAT-my-passport-number-is-12AB34567-please-remember-it"
IMAGE = os.urandom(50_000)
DAY = 86_400.0


def needles() -> list[bytes]:
    return encodings(SECRET.encode()) + encodings(IMAGE[2000:2060])


def messages() -> list[ChatMessage]:
    return [
        ChatMessage(role="user", content=SECRET),
        ChatMessage(role="user", blocks=[TextBlock(text="this shoe?"), ImageBlock(image=IMAGE, image_mimetype="image/png")]),
    ]


@pytest.fixture
def ring(tmp_path: Path) -> Path:
    return write_keyring(tmp_path / "k.json", {KEY_A: new_material()}, default=KEY_A)


def test_chat_store_messages_are_sealed_and_read_back(tmp_path: Path, ring: Path) -> None:
    db = tmp_path / "s.db"
    store = SessionChatStore.local(db, keyring=ring)
    store.set_messages("ana", messages())
    assert found(db, needles()) == []
    again = SessionChatStore.local(db, keyring=ring)
    got = again.get_messages("ana")
    assert got[0].content == SECRET
    assert got[1].blocks[1].resolve_image().read() == IMAGE
    assert again.get_keys() == ["ana"]
    # The control: the same messages without encryption are found by the scan.
    clear = tmp_path / "clear.db"
    SessionChatStore.local(clear).set_messages("ana", messages())
    assert found(clear, needles()) != []


def test_memory_on_an_encrypted_db_chat_store(tmp_path: Path, ring: Path) -> None:
    db = tmp_path / "s.db"

    async def main() -> None:
        store = SessionDBChatStore.local(db, keyring=ring)
        memory = Memory.from_defaults(session_id="ana", chat_store=store)
        await memory.aput_messages(messages())
        assert found(db, needles()) == []
        reopened = Memory.from_defaults(session_id="ana", chat_store=SessionDBChatStore.local(db, keyring=ring))
        got = await reopened.aget_all()
        assert got[0].content == SECRET

    asyncio.run(main())
    assert found(db, needles()) == []


def test_a_chat_past_retention_is_gone_and_erased(tmp_path: Path, ring: Path) -> None:
    db = tmp_path / "s.db"
    clock = ManualClock(start=T0)
    client = SessionClient.local(db, keyring=ring, clock=clock, retention_days=7)
    store = SessionChatStore(client=client)
    store.set_messages("old", messages())
    clock.advance(3 * DAY)
    store.set_messages("kept", [ChatMessage(role="user", content="KEPT-chat")])
    clock.advance(5 * DAY)
    # Day 8: "old" was written 8 days ago.
    fresh = SessionChatStore(client=client)
    assert fresh.get_messages("old") == []
    assert [m.content for m in fresh.get_messages("kept")] == ["KEPT-chat"]
    assert client.sweep() >= 1
    assert found(db, needles()) == []
    assert fresh.get_keys() == ["kept"]
    client.close()
