"""Sessions written by langgraph-checkpoint-aws's BedrockSessionSaver (the replaced saver, run here over
our embedded store through its own code) load with our saver, and the thread continues under it."""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

pytest.importorskip("langgraph_checkpoint_aws")

from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.types import Command, interrupt  # noqa: E402
from langgraph_checkpoint_aws.checkpoint.bedrock_sessions import BedrockSessionSaver as OldSaver  # noqa: E402

from bedrock_sessions import BedrockSessionSaver, SessionClient  # noqa: E402
from bedrock_sessions.saver import decode_step  # noqa: E402


class State(TypedDict):
    items: Annotated[list, operator.add]


def linear_graph() -> StateGraph:
    g = StateGraph(State)
    g.add_node("a", lambda s: {"items": ["a"]})
    g.add_node("b", lambda s: {"items": ["b"]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    return g


RUNS: list[str] = []


def approval_graph() -> StateGraph:
    """Two parallel branches; one pauses for approval."""

    def fast(s: State) -> dict[str, Any]:
        RUNS.append("fast")
        return {"items": ["fast"]}

    def ask(s: State) -> dict[str, Any]:
        RUNS.append("ask")
        answer = interrupt({"question": "approve?", "items": list(s["items"])})
        return {"items": [f"answer:{answer}"]}

    g = StateGraph(State)
    g.add_node("fast", fast)
    g.add_node("ask", ask)
    g.add_node("done", lambda s: {"items": ["done"]})
    g.add_edge(START, "fast")
    g.add_edge(START, "ask")
    g.add_edge(["fast", "ask"], "done")
    g.add_edge("done", END)
    return g


@pytest.fixture
def client(tmp_path: Path) -> SessionClient:
    c = SessionClient.local(str(tmp_path / "legacy.db"))
    yield c
    c.close()


def _snapshot(app: Any, cfg: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(s.config["configurable"]["checkpoint_id"], s.values, s.next, s.metadata.get("step")) for s in app.get_state_history(cfg)]


def test_old_sessions_load_and_the_thread_continues(client: SessionClient) -> None:
    sid = client.create_session()["sessionId"]
    cfg = {"configurable": {"thread_id": sid}}
    old_app = linear_graph().compile(checkpointer=OldSaver(client=client))
    old_app.invoke({"items": ["t1"]}, cfg)
    old_app.invoke({"items": ["t2"]}, cfg)
    old_history = _snapshot(old_app, cfg)

    # The steps really are the replaced saver's layout.
    summaries = client.list_invocation_steps(sessionIdentifier=sid, maxResults=1000)["invocationStepSummaries"]
    first = summaries[-1]
    step = client.get_invocation_step(
        sessionIdentifier=sid, invocationIdentifier=first["invocationId"], invocationStepId=first["invocationStepId"]
    )["invocationStep"]
    decoded = decode_step(step["payload"])
    assert decoded is not None and decoded["layout"] == "langgraph-checkpoint-aws"

    ours = BedrockSessionSaver(client=client)
    app = linear_graph().compile(checkpointer=ours)
    assert app.get_state(cfg).values == {"items": ["t1", "a", "b", "t2", "a", "b"]}
    assert _snapshot(app, cfg) == old_history

    app.invoke({"items": ["t3"]}, cfg)
    assert app.get_state(cfg).values["items"] == ["t1", "a", "b", "t2", "a", "b", "t3", "a", "b"]
    history = list(app.get_state_history(cfg))
    assert len(history) == len(old_history) + 4
    # Our checkpoints record their parents, back into the old ones.
    newest_four = history[:4]
    assert all(s.parent_config is not None for s in newest_four)
    assert newest_four[-1].parent_config["configurable"]["checkpoint_id"] == old_history[0][0]
    # The old saver's own checkpoints have no parents: it never stored them.
    assert all(s.parent_config is None for s in history[4:])


def test_interrupt_paused_by_old_saver_resumes_under_ours(client: SessionClient) -> None:
    RUNS.clear()
    sid = client.create_session()["sessionId"]
    cfg = {"configurable": {"thread_id": sid}}
    old_app = approval_graph().compile(checkpointer=OldSaver(client=client))
    old_app.invoke({"items": ["start"]}, cfg)
    assert sorted(RUNS) == ["ask", "fast"]
    # (The replaced saver's own get_state here is unreliable: it reads only the newest write step, so the
    # completed "fast" branch's write is lost in some runs — its defect 1. Ours reads every write step.)

    app = approval_graph().compile(checkpointer=BedrockSessionSaver(client=client))
    state = app.get_state(cfg)
    assert state.next == ("ask",)
    assert state.interrupts and state.interrupts[0].value["question"] == "approve?"
    RUNS.clear()
    result = app.invoke(Command(resume="yes"), cfg)
    # The completed branch's write was read from the old saver's write steps: "fast" did not run again.
    assert RUNS == ["ask"]
    # The same story on LangGraph's InMemorySaver gives this exact state.
    reference = approval_graph().compile(checkpointer=InMemorySaver())
    ref_cfg = {"configurable": {"thread_id": "reference"}}
    reference.invoke({"items": ["start"]}, ref_cfg)
    assert result == reference.invoke(Command(resume="yes"), ref_cfg)
    assert result["items"] == ["start", "answer:yes", "fast", "done"]


def test_old_sessions_read_by_the_async_methods(client: SessionClient) -> None:
    sid = client.create_session()["sessionId"]
    cfg = {"configurable": {"thread_id": sid}}
    linear_graph().compile(checkpointer=OldSaver(client=client)).invoke({"items": ["x"]}, cfg)
    saver = BedrockSessionSaver(client=client)

    async def read() -> tuple[Any, list[Any]]:
        tup = await saver.aget_tuple(cfg)
        return tup, [t async for t in saver.alist(cfg)]

    tup, listed = asyncio.run(read())
    assert tup is not None and tup.checkpoint["channel_values"]["items"] == ["x", "a", "b"]
    assert [t.config["configurable"]["checkpoint_id"] for t in listed] == [
        t.config["configurable"]["checkpoint_id"] for t in saver.list(cfg)
    ]
    assert len(listed) == 4
