"""The LangGraph saver on a store encrypted at rest, and under retention (docs/encryption.md): a graph's state is not in
the SQLite file, its WAL or its index, and reads back whole; a thread past retention is gone and erased from the
file; delete_thread erases; LangGraph's EncryptedSerializer and encryption at rest together. (Every LangGraph scenario
also runs on the encrypted store: the ``bedrock-at-rest`` saver of ``_saver_kinds.py``.)
"""

from __future__ import annotations

import asyncio
import operator
import sys
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

pytest.importorskip("langgraph")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _at_rest import KEY_A, T0, encodings, found, new_material, write_keyring  # noqa: E402
from _lg_graphs import three_nodes  # noqa: E402
from _saver_kinds import encrypted_serde  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402

from bedrock_sessions import AsyncSessionClient, BedrockSessionSaver, ManualClock, SessionClient  # noqa: E402

pytestmark = pytest.mark.timeout(120)

SECRET = "USER-SAID-my-card-is-4970-1234-5678-9012-and-I-live-at-12-rue-des-lilas"
DAY = 86_400.0


class Chat(TypedDict):
    messages: Annotated[list[str], operator.add]


def chat_graph() -> StateGraph:
    """One node that answers with the user's words quoted (the state holds them twice)."""
    g = StateGraph(Chat)
    g.add_node("answer", lambda s: {"messages": [f"ANSWER-quoting: {s['messages'][-1]}"]})
    g.add_edge(START, "answer")
    g.add_edge("answer", END)
    return g


def needles() -> list[bytes]:
    """The user's words, raw and base64-encoded (the saver stores serialized state as base64 in JSON records)."""
    return encodings(SECRET.encode()) + encodings(b"ANSWER-quoting")


@pytest.fixture
def ring(tmp_path: Path) -> Path:
    return write_keyring(tmp_path / "k.json", {KEY_A: new_material()}, default=KEY_A)


def cfg(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def test_a_graphs_state_is_sealed_and_reads_back(tmp_path: Path, ring: Path) -> None:
    db = tmp_path / "s.db"
    with SessionClient.local(db, keyring=ring) as client:
        graph = chat_graph().compile(checkpointer=BedrockSessionSaver(client=client))
        out = graph.invoke({"messages": [SECRET]}, cfg("ana"))
        assert out["messages"][-1] == f"ANSWER-quoting: {SECRET}"
        assert found(db, needles()) == []
        # The 3-node graph of the benchmarks too.
        three = three_nodes().compile(checkpointer=BedrockSessionSaver(client=client))
        three.invoke({"items": [SECRET + "-three"]}, cfg("bo"))
        assert found(db, encodings((SECRET + "-three").encode())) == []
    assert found(db, needles()) == []
    # Another process's view (a new client with the keyring): the whole history, intact.
    with SessionClient.local(db, keyring=ring) as client:
        graph = chat_graph().compile(checkpointer=BedrockSessionSaver(client=client))
        history = list(graph.get_state_history(cfg("ana")))
        assert history[0].values["messages"] == [SECRET, f"ANSWER-quoting: {SECRET}"]
        assert len(history) == 3
        # The thread continues.
        graph.invoke({"messages": ["and size 42"]}, cfg("ana"))
        assert graph.get_state(cfg("ana")).values["messages"][-1] == "ANSWER-quoting: and size 42"
    # Without the keyring the thread is refused, not read as empty.
    with SessionClient.local(db) as client:
        graph = chat_graph().compile(checkpointer=BedrockSessionSaver(client=client))
        with pytest.raises(client.exceptions.AccessDeniedException, match=KEY_A):
            graph.get_state(cfg("ana"))
    # The control: without encryption the scan finds the state.
    clear = tmp_path / "clear.db"
    with SessionClient.local(clear) as client:
        chat_graph().compile(checkpointer=BedrockSessionSaver(client=client)).invoke({"messages": [SECRET]}, cfg("a"))
        assert found(clear, needles()) != []


def test_async_saver_on_an_encrypted_store(tmp_path: Path, ring: Path) -> None:
    db = tmp_path / "s.db"

    async def main() -> None:
        async with AsyncSessionClient.local(db, keyring=ring) as client:
            graph = chat_graph().compile(checkpointer=BedrockSessionSaver(client=client))
            await graph.ainvoke({"messages": [SECRET]}, cfg("ana"))
            state = await graph.aget_state(cfg("ana"))
            assert state.values["messages"][0] == SECRET

    asyncio.run(main())
    assert found(db, needles()) == []


def test_threads_past_retention_are_gone_and_erased(tmp_path: Path, ring: Path) -> None:
    db = tmp_path / "s.db"
    clock = ManualClock(start=T0)
    with SessionClient.local(db, keyring=ring, clock=clock, retention_days=30) as client:
        graph = chat_graph().compile(checkpointer=BedrockSessionSaver(client=client))
        graph.invoke({"messages": [SECRET]}, cfg("old"))
        clock.advance(20 * DAY)
        graph.invoke({"messages": ["KEPT-thread-message"]}, cfg("kept"))
        clock.advance(11 * DAY)
        # Day 31: "old" was last written 31 days ago: LangGraph sees no such thread; "kept" is whole.
        assert graph.get_state(cfg("old")).values == {}
        assert graph.get_state(cfg("kept")).values["messages"][0] == "KEPT-thread-message"
        assert client.sweep() == 1
        assert found(db, needles()) == []
        # The thread id can start again, as a new thread.
        graph.invoke({"messages": ["again"]}, cfg("old"))
        assert graph.get_state(cfg("old")).values["messages"] == ["again", "ANSWER-quoting: again"]


def test_delete_thread_erases_it_from_the_file(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with SessionClient.local(db) as client:
        saver = BedrockSessionSaver(client=client)
        graph = chat_graph().compile(checkpointer=saver)
        graph.invoke({"messages": [SECRET]}, cfg("gone"))
        graph.invoke({"messages": ["KEPT-thread-message"]}, cfg("kept"))
        assert found(db, needles()) != []
        saver.delete_thread("gone")
        # A clear store: the plaintext is zeroed, the WAL truncated (the other thread's answer is quoted alike).
        assert found(db, encodings(SECRET.encode())) == []
        assert found(db, encodings(b"KEPT-thread-message")) != []


def test_encrypted_serializer_and_encryption_at_rest_together(tmp_path: Path, ring: Path) -> None:
    db = tmp_path / "s.db"
    with SessionClient.local(db, keyring=ring) as client:
        graph = chat_graph().compile(checkpointer=BedrockSessionSaver(client=client, serde=encrypted_serde()))
        graph.invoke({"messages": [SECRET]}, cfg("ana"))
        assert graph.get_state(cfg("ana")).values["messages"][0] == SECRET
    assert found(db, needles()) == []
    # Opened with the keyring but the wrong serializer key: the store opens the records, LangGraph's layer refuses.
    with SessionClient.local(db, keyring=ring) as client:
        from _saver_kinds import WRONG_KEY

        graph = chat_graph().compile(checkpointer=BedrockSessionSaver(client=client, serde=encrypted_serde(WRONG_KEY)))
        with pytest.raises(Exception):  # noqa: B017 (pycryptodome's ValueError: MAC check failed)
            graph.get_state(cfg("ana"))
