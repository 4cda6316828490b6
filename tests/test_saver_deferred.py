"""put_with_writes, as langgraph-checkpoint-aws's DeferredCheckpointSaver(batch_writes=True) drives it, and the
saver over the async session client."""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

deferred_mod = pytest.importorskip("langgraph_checkpoint_aws.checkpoint.deferred_saver")

from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.types import Command, interrupt  # noqa: E402

from bedrock_sessions import AsyncSessionClient, BedrockSessionSaver, SessionClient  # noqa: E402


class State(TypedDict):
    items: Annotated[list, operator.add]


def graph() -> StateGraph:
    def ask(s: State) -> dict[str, Any]:
        return {"items": [f"answer:{interrupt('ok?')}"]}

    g = StateGraph(State)
    g.add_node("a", lambda s: {"items": ["a"]})
    g.add_node("ask", ask)
    g.add_edge(START, "a")
    g.add_edge("a", "ask")
    g.add_edge("ask", END)
    return g


def test_deferred_batch_flush_uses_put_with_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ours = BedrockSessionSaver(client=SessionClient.local(str(tmp_path / "deferred.db")))
    assert isinstance(ours, deferred_mod.SyncBatchFlushable) and isinstance(ours, deferred_mod.AsyncBatchFlushable)
    calls: list[int] = []
    real = ours.put_with_writes

    def counting(*args: Any) -> Any:
        calls.append(len(args[4]))
        return real(*args)

    monkeypatch.setattr(ours, "put_with_writes", counting)
    deferred = deferred_mod.DeferredCheckpointSaver(ours, batch_writes=True)
    cfg = {"configurable": {"thread_id": "deferred"}}
    app = graph().compile(checkpointer=deferred)
    app.invoke({"items": ["x"]}, cfg)
    deferred.flush()
    assert calls and sum(calls) > 0, "the batch path with writes was taken"

    # A new process (a fresh saver on the same file) sees the flushed state and resumes the interrupt.
    fresh = graph().compile(checkpointer=BedrockSessionSaver(client=SessionClient.local(str(tmp_path / "deferred.db"))))
    state = fresh.get_state(cfg)
    assert state.next == ("ask",) and state.interrupts[0].value == "ok?"
    reference = graph().compile(checkpointer=InMemorySaver())
    ref_cfg = {"configurable": {"thread_id": "ref"}}
    reference.invoke({"items": ["x"]}, ref_cfg)
    assert fresh.invoke(Command(resume="yes"), cfg) == reference.invoke(Command(resume="yes"), ref_cfg)


def test_saver_over_the_async_client(tmp_path: Path) -> None:
    saver = BedrockSessionSaver(client=AsyncSessionClient.local(str(tmp_path / "async.db")))
    cfg = {"configurable": {"thread_id": "async-thread"}}

    async def run() -> Any:
        app = graph().compile(checkpointer=saver)
        await app.ainvoke({"items": ["x"]}, cfg)
        await app.ainvoke(Command(resume="yes"), cfg)
        return await app.aget_state(cfg), [s async for s in app.aget_state_history(cfg)]

    state, history = asyncio.run(run())
    assert state.values["items"] == ["x", "a", "answer:yes"]
    assert len(history) == 4 and history[-1].parent_config is None
    assert all(h.parent_config is not None for h in history[:-1])


def test_put_with_writes_stores_the_checkpoint_and_its_writes_in_one_step(tmp_path: Path) -> None:
    """DeferredCheckpointSaver(batch_writes=True) hands a checkpoint and the writes it buffered to put_with_writes: one
    step each time (a batch), read back whole by a saver that wrote nothing."""
    from _lg_graphs import stored_steps

    client = SessionClient.local(str(tmp_path / "pww.db"))
    ours = BedrockSessionSaver(client=client)
    deferred = deferred_mod.DeferredCheckpointSaver(ours, batch_writes=True)
    cfg = {"configurable": {"thread_id": "pww"}}
    graph().compile(checkpointer=deferred).invoke({"items": ["x"]}, cfg)
    deferred.flush()
    stored = stored_steps(client, ours._native.resolve_thread("pww"))
    steps, kinds = len(stored), [[r["kind"] for r in step] for step in stored]
    records = sum(len(k) for k in kinds)
    assert any(len(k) > 1 and k[0] == "checkpoint" for k in kinds), kinds
    assert steps < records, kinds
    fresh = graph().compile(checkpointer=BedrockSessionSaver(client=SessionClient.local(str(tmp_path / "pww.db"))))
    reference = graph().compile(checkpointer=InMemorySaver())
    ref_cfg = {"configurable": {"thread_id": "ref"}}
    reference.invoke({"items": ["x"]}, ref_cfg)
    assert fresh.get_state(cfg).values == reference.get_state(ref_cfg).values
    assert fresh.get_state(cfg).interrupts[0].value == "ok?"
