"""SessionWorkflowStore in one process: a paused workflow resumes from its stored context; the newest save of a run
wins; runs and keys are independent; a deleted run loads as None; large contexts span steps; expired or full
sessions are replaced (a human may answer hours later)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _li_child import Answer, ApprovalFlow, Ask
from _li_support import Backend

from bedrock_sessions import ManualClock
from bedrock_sessions.llama_index import SessionWorkflowStore


async def _pause(store: SessionWorkflowStore, key: str, run: str, item: str) -> str:
    wf = ApprovalFlow(timeout=30)
    handler = wf.run(item=item, price=10)
    async for ev in handler.stream_events():
        if isinstance(ev, Ask):
            await store.asave(key, run, handler.ctx)
            break
    await handler.cancel_run()
    return ev.question


async def _resume(store: SessionWorkflowStore, key: str, run: str, answer: str) -> str:
    wf = ApprovalFlow(timeout=30)
    ctx = await store.aload(key, run, wf)
    assert ctx is not None
    handler = wf.run(ctx=ctx)
    handler.ctx.send_event(Answer(answer=answer))
    return str(await handler)


def test_pause_and_resume(li_backend: Backend) -> None:
    async def main() -> None:
        store = SessionWorkflowStore(li_backend.async_client())
        assert await _pause(store, "ana", "r1", "boots") == "approve boots for 10 EUR?"
        await _pause(store, "ana", "r2", "socks")
        await _pause(store, "bob", "r1", "laces")
        other = SessionWorkflowStore(li_backend.client())  # another "process"
        assert await _resume(other, "ana", "r2", "yes") == "socks (10 EUR): placed"
        assert await _resume(other, "ana", "r1", "no") == "boots (10 EUR): cancelled"
        assert await _resume(other, "bob", "r1", "yes") == "laces (10 EUR): placed"
        assert await other.aload("ana", "r3", ApprovalFlow()) is None

    asyncio.run(main())


def test_newest_save_wins_and_delete(li_backend: Backend) -> None:
    store = SessionWorkflowStore(li_backend.client())
    for i in range(5):
        store.save("k", "run", {"version": 2, "n": i})
    assert store.load_dict("k", "run") == {"version": 2, "n": 4}
    assert SessionWorkflowStore(li_backend.client()).load_dict("k", "run") == {"version": 2, "n": 4}
    store.delete("k", "run")
    assert store.load_dict("k", "run") is None
    store.save("k", "run", {"version": 2, "n": 5})
    assert store.load_dict("k", "run") == {"version": 2, "n": 5}
    with pytest.raises(TypeError):
        store.save("k", "run", {"not json": object()})


def test_large_context_spans_steps(make_backend: Any) -> None:
    backend = make_backend("bedrock", max_step_bytes=65536)
    store = SessionWorkflowStore(backend.client(), max_step_bytes=65536)
    big = {"version": 2, "blob": "é" * 100_000, "items": list(range(5000))}
    store.save("k", "run", big)
    assert SessionWorkflowStore(backend.client()).load_dict("k", "run") == big


@pytest.mark.parametrize("kind", ["memory", "bedrock"])
def test_expired_and_full_sessions_are_replaced(kind: str, make_backend: Any) -> None:
    clock = ManualClock()
    backend = make_backend(kind, clock=clock, max_steps_per_session=4)
    store = SessionWorkflowStore(backend.client(), clock=clock)
    store.save("k", "a", {"n": 1})
    store.save("k", "b", {"n": 1})
    clock.advance(1800)
    if kind == "bedrock":  # keep the thread index alive (see test_layout)
        backend.admin.update_session(sessionIdentifier=backend.index, sessionMetadata={"purpose": "thread index"})
    clock.advance(1900)  # the human answers after an hour: the key's session has expired
    store.save("k", "a", {"n": 2})
    for i in range(3, 10):  # four steps a session: these fill more
        store.save("k", "a", {"n": i})
    reader = SessionWorkflowStore(backend.client(), clock=clock)
    assert reader.load_dict("k", "a") == {"n": 9}
    assert reader.load_dict("k", "b") == {"n": 1}  # only in the first session: found there
