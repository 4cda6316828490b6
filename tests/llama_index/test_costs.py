"""Requests per chat turn on the Bedrock backend, counted by the local server (LocalServer.stats()).

The target: a Memory chat turn costs at most two requests. Memory reads the active messages after each add and again
before calling the LLM: a turn is 2 writes + 3 reads (a FunctionAgent turn: 2 + 4). Two requests are the two writes;
a read that confirms the cache with the store costs one ListInvocationSteps. So:

* ``max_staleness=0`` (the default: every read confirms): 5 requests (FunctionAgent: 6) — exact, cross-process.
* ``max_staleness>0``: reads within that many seconds of the last confirmation use the cache (a successful put
  confirms: its step id is the next sequence number, refused if another writer took it): 2 requests a turn.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from _li_support import Backend, msg, text_of
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import MockLLM
from llama_index.core.memory import ChatMemoryBuffer, Memory

from bedrock_sessions.llama_index import SessionChatStore, SessionDBChatStore


def _requests(backend: Backend) -> int:
    assert backend.server is not None
    return int(backend.server.stats()["requests"])


def _reset(backend: Backend) -> None:
    assert backend.server is not None
    backend.server.reset_stats()


async def _memory_turn(mem: Memory, i: int) -> None:
    await mem.aput(msg(f"question {i}"))
    await mem.aget()
    await mem.aput(msg(f"answer {i}", role="assistant"))


@pytest.mark.parametrize(("max_staleness", "expected"), [(0.0, 5), (30.0, 2)])
def test_memory_turn_requests(max_staleness: float, expected: int, make_backend: Any) -> None:
    backend = make_backend("bedrock")

    async def main() -> list[int]:
        store = SessionDBChatStore(backend.client(), max_staleness=max_staleness, snapshot_every=8)
        mem = Memory.from_defaults(session_id="ana", chat_store=store, token_limit=100_000)
        await _memory_turn(mem, 0)  # the key's first turn creates its session and invocation
        counts = []
        for i in range(1, 20):  # covers snapshots (a full state every 8 steps): still one put each
            _reset(backend)
            await _memory_turn(mem, i)
            counts.append(_requests(backend))
        assert len(await mem.aget_all()) == 40
        return counts

    counts = asyncio.run(main())
    assert counts == [expected] * len(counts)


def test_chat_engine_turn_over_memory_costs_two_requests(make_backend: Any) -> None:
    backend = make_backend("bedrock")

    async def main() -> None:
        store = SessionDBChatStore(backend.client(), max_staleness=30.0)
        mem = Memory.from_defaults(session_id="ana", chat_store=store, token_limit=100_000)
        engine = SimpleChatEngine.from_defaults(llm=MockLLM(), memory=mem)
        await engine.achat("hello")
        for i in range(5):
            _reset(backend)
            await engine.achat(f"turn {i}")
            assert _requests(backend) == 2
        assert [text_of(m) for m in (await mem.aget_all())[-2:]][0] == "turn 4"

    asyncio.run(main())


# FunctionAgent is a workflow and a pydantic model: llama-index-workflows lists its steps with inspect.getmembers(),
# which reads pydantic's deprecated attributes (__fields__, __fields_set__, model_fields and model_computed_fields on
# the instance): PydanticDeprecatedSince20/211, raised from the stdlib's inspect module. Third-party, unavoidable here:
# exactly those (DeprecationWarnings attributed to inspect) are ignored in this test.
@pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")
@pytest.mark.parametrize(("max_staleness", "expected"), [(0.0, 6), (30.0, 2)])
def test_function_agent_turn_requests(max_staleness: float, expected: int, make_backend: Any) -> None:
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.llms.mock import MockFunctionCallingLLM

    backend = make_backend("bedrock")

    def scripted(messages: list[ChatMessage], **kwargs: Any) -> ChatMessage:
        names = [n for m in messages for n in re.findall(r"my name is (\w+)", m.content or "", re.I)]
        if "name?" in (messages[-1].content or ""):
            return ChatMessage(role="assistant", content=f"You are {names[-1]}." if names else "No idea.")
        return ChatMessage(role="assistant", content="Noted.")

    async def main() -> None:
        store = SessionDBChatStore(backend.client(), max_staleness=max_staleness)
        mem = Memory.from_defaults(session_id="ana", chat_store=store, token_limit=100_000)
        agent = FunctionAgent(llm=MockFunctionCallingLLM(response_generator=scripted), tools=[])
        await agent.run("My name is Ana", memory=mem)
        _reset(backend)
        await agent.run("hello", memory=mem)
        assert _requests(backend) == expected
        _reset(backend)
        assert str(await agent.run("What is my name?", memory=mem)) == "You are Ana."
        assert _requests(backend) == expected

    asyncio.run(main())


@pytest.mark.parametrize(("max_staleness", "expected"), [(0.0, 3), (30.0, 2)])
def test_chat_memory_buffer_turn_requests(max_staleness: float, expected: int, make_backend: Any) -> None:
    """ChatMemoryBuffer reads once a turn (get), writes twice (put user, put assistant); sync engine."""
    backend = make_backend("bedrock")
    store = SessionChatStore(backend.client(), max_staleness=max_staleness)
    mem = ChatMemoryBuffer.from_defaults(chat_store=store, chat_store_key="ana", token_limit=100_000)
    engine = SimpleChatEngine.from_defaults(llm=MockLLM(), memory=mem)
    engine.chat("hello")
    for i in range(4):
        _reset(backend)
        engine.chat(f"turn {i}")
        assert _requests(backend) == expected
    assert len(store.get_messages("ana")) == 10


def test_archiving_adds_one_put(make_backend: Any) -> None:
    """When Memory flushes old messages to ARCHIVED, the turn pays one more put (archive_oldest_messages)."""
    backend = make_backend("bedrock")

    async def main() -> list[int]:
        store = SessionDBChatStore(backend.client(), max_staleness=30.0)
        mem = Memory.from_defaults(session_id="ana", chat_store=store, token_limit=60, token_flush_size=10)
        counts = []
        for i in range(8):
            _reset(backend)
            await _memory_turn(mem, i)
            counts.append(_requests(backend))
        archived = await store.count_messages("ana", status=None) - await store.count_messages("ana")
        assert archived > 0
        return counts

    counts = asyncio.run(main())
    assert counts[0] > 2  # the first turn creates the session
    assert set(counts[1:]) <= {2, 3} and 3 in counts[1:]


def test_cold_read_is_bounded_by_the_snapshot_interval(make_backend: Any) -> None:
    """A process that has never seen the key: one index lookup (with the index chain's freshness check), one listing,
    then the steps since the newest full state, fetched concurrently (at most snapshot_every of them)."""
    backend = make_backend("bedrock")

    async def main() -> None:
        writer = SessionDBChatStore(backend.client(), snapshot_every=6)
        for i in range(23):
            await writer.add_message("ana", msg(f"m{i}"))
        for n in range(23, 26):
            reader = SessionDBChatStore(backend.client(), snapshot_every=6)
            _reset(backend)
            assert len(await reader.get_messages("ana")) == n
            ops = backend.server.stats()["operations"]  # type: ignore[union-attr]
            assert ops.get("ListInvocationSteps", 0) == 2  # the thread index's lookup, then the key's log
            assert 1 <= ops.get("GetInvocationStep", 0) <= 6
            # Sent alongside the lookup: has the index moved on to a newer session (once a second per process)?
            assert ops.get("GetSession", 0) == 1
            assert set(ops) == {"ListInvocationSteps", "GetInvocationStep", "GetSession"}
            await writer.add_message("ana", msg("more"))

    asyncio.run(main())


def test_staleness_is_a_trade(make_backend: Any) -> None:
    """With max_staleness, a read may miss another process's write made within that window; the default never
    does. Writes are never lost either way (a put on a stale cache is refused and retried)."""
    backend = make_backend("bedrock")

    async def main() -> None:
        relaxed = SessionDBChatStore(backend.client(), max_staleness=3600.0)
        strict = SessionDBChatStore(backend.client())
        other = SessionDBChatStore(backend.client())
        await relaxed.add_message("k", msg("a"))
        assert len(await strict.get_messages("k")) == 1
        await other.add_message("k", msg("b"))
        assert [text_of(m) for m in await strict.get_messages("k")] == ["a", "b"]
        assert [text_of(m) for m in await relaxed.get_messages("k")] == ["a"]  # within its window: cached
        await relaxed.add_message("k", msg("c"))  # its put finds the seq taken, reads on, retries
        assert [text_of(m) for m in await relaxed.get_messages("k")] == ["a", "b", "c"]
        assert [text_of(m) for m in await strict.get_messages("k")] == ["a", "b", "c"]

    asyncio.run(main())
