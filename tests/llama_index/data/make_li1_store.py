"""Writes ``li1_store.db`` and ``li1_expected.json`` with the LlamaIndex stores as they were before their engine
moved to Rust (``python/bedrock_sessions/llama_index.py`` of commit 88bea87, from git history: ``benches/_li_before.py``), so that the
test ``test_li1_data.py`` checks that data they wrote keeps loading. Run from the repository's root::

    python tests/llama_index/data/make_li1_store.py

Needs the git history and the package installed (``maturin develop``)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _li_support import JPEG, msg, png, rich_messages  # noqa: E402
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, TextBlock  # noqa: E402

import bedrock_sessions  # noqa: E402
from bedrock_sessions import ManualClock, SessionClient  # noqa: E402

sys.path.insert(0, str(HERE.parent.parent.parent / "benches"))
from _li_before import BEFORE as OLD_COMMIT  # noqa: E402
from _li_before import load as old_module  # noqa: E402


def image_message(i: int) -> ChatMessage:
    return ChatMessage(role="user", blocks=[TextBlock(text=f"look {i}"), ImageBlock(image=png(i)), ImageBlock(image=JPEG)])


def main() -> None:
    li = old_module()
    db = HERE / "li1_store.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    clock = ManualClock()
    opts = dict(max_steps_per_session=12, max_step_bytes=65536, clock=clock)
    client = SessionClient.local(db, **opts)
    store_opts = dict(max_steps_per_session=12, max_step_bytes=65536, snapshot_every=4)
    expected: dict[str, object] = {"layout": "li1", "written_by": OLD_COMMIT}

    async def db_store() -> None:
        store = li.SessionDBChatStore(client, clock=clock, **store_opts)
        for i in range(30):
            m = image_message(i) if i % 5 == 0 else msg(f"message {i}", role="user" if i % 2 else "assistant")
            await store.add_message("ana", m)
            if i == 17:
                clock.advance(2 * 3600)  # an idle gap: the generation expires, the key moves on
        await store.archive_oldest_messages("ana", 5)
        await store.delete_message("ana", 7)
        await store.add_messages("ana", rich_messages())
        await store.add_message("ana", msg("y" * 70_000))  # an event split over several steps
        entries = await store.get_entries("ana")
        expected["db:ana"] = [[i, s.value, m.model_dump(mode="json")] for i, s, m in entries]
        expected["db:keys"] = await store.get_keys()

    asyncio.run(db_store())

    chat = li.SessionChatStore(client, namespace="chat", clock=clock, **store_opts)
    chat.set_messages("bob", [msg("one"), msg("two")])
    chat.add_message("bob", msg("zero"), idx=0)
    chat.add_message("bob", image_message(99))
    chat.delete_last_message("bob")
    chat.add_message("bob", msg("three"))
    chat.set_messages("empty", [])
    sid = client.create_session(sessionMetadata={"app": "shoes"})["sessionId"]
    chat.add_message(sid, msg("in the caller's session"))
    expected["chat:bob"] = [m.model_dump(mode="json") for m in chat.get_messages("bob")]
    expected["chat:sid"] = sid
    expected["chat:sid:messages"] = [m.model_dump(mode="json") for m in chat.get_messages(sid)]
    expected["chat:keys"] = sorted(chat.get_keys())

    wf = li.SessionWorkflowStore(client, clock=clock, max_step_bytes=65536)
    wf.save("ana", "r1", {"state": {"n": 1}})
    clock.advance(1)
    wf.save("ana", "r1", {"state": {"n": 2}, "big": "z" * 70_000})
    wf.save("ana", "r2", {"state": {"n": 3}})
    wf.delete("ana", "r2")
    for i in range(12):  # past the step quota: the workflow sessions move on
        clock.advance(1)
        wf.save("ana", "r3", {"i": i})
    expected["wf:r1"] = wf.load_dict("ana", "r1")
    expected["wf:r2"] = wf.load_dict("ana", "r2")
    expected["wf:r3"] = wf.load_dict("ana", "r3")
    client.close()

    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("VACUUM")
    con.close()
    (HERE / "li1_expected.json").write_text(json.dumps(expected, ensure_ascii=False) + "\n")
    print(db, os.path.getsize(db), "bytes;", bedrock_sessions.__file__)


if __name__ == "__main__":
    main()
