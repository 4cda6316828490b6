"""Group commit (the default over a network backend) and deferred mode (opt-in), against real parts: the Rust SDK
backend through the local server on 127.0.0.1 (requests counted by the server), SQLite files read back by other clients
and other processes, real LangGraph graphs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("langgraph")

from langgraph.graph import END, START, StateGraph  # noqa: E402

from _lg_graphs import State, record_counts, stored_steps, three_nodes  # noqa: E402
from langgraph.types import Command, Send, interrupt  # noqa: E402

from bedrock_sessions import BedrockSessionSaver, SessionClient  # noqa: E402
from bedrock_sessions.exceptions import ServiceQuotaExceededException  # noqa: E402
from bedrock_sessions.server import LocalServer  # noqa: E402

KEYS = dict(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


def fan_out(n: int = 8) -> StateGraph:
    g = StateGraph(State)
    g.add_node("work", lambda s: {"items": [f"done:{s['items'][-1]}"]})
    g.add_node("join", lambda s: {"items": ["joined"]})
    g.add_conditional_edges(START, lambda s: [Send("work", {"items": [f"task{i}"]}) for i in range(n)], ["work"])
    g.add_edge("work", "join")
    g.add_edge("join", END)
    return g


def with_approval() -> StateGraph:
    g = StateGraph(State)
    g.add_node("ask", lambda s: {"items": [f"answer:{interrupt('ok?')}"]})
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    return g


def records(client: SessionClient, sid: str) -> tuple[int, dict[str, int]]:
    """(steps, records by kind) of a session, decoded through the session API."""
    steps = stored_steps(client, sid)
    return len(steps), record_counts(steps)


def test_parallel_writes_of_a_superstep_share_one_request() -> None:
    """Eight Send tasks finish while the first one's request is in flight (20 ms): the other seven, and the checkpoint
    that follows, go in one request. Every write is read back by a saver that wrote nothing."""
    with LocalServer(latency=0.02) as srv:
        sid = srv.client.create_session()["sessionId"]
        client = SessionClient.bedrock(endpoint_url=srv.endpoint_url, **KEYS)
        app = fan_out().compile(checkpointer=BedrockSessionSaver(client=client))
        cfg = {"configurable": {"thread_id": sid}}
        srv.reset_stats()
        out = app.invoke({"items": ["go"]}, cfg)
        puts = srv.stats()["operations"]["PutInvocationStep"]
        steps, recs = records(srv.client, sid)
        # 4 checkpoints (input, after START's Sends, after the tasks, after join) and 10 put_writes (START, 8 tasks,
        # join): 14 records.
        assert recs == {"checkpoint": 4, "writes": 10}, recs
        # One step per record would be 14. (One request more than steps: the session was not created by this saver, so
        # its first step meets a 404, creates the namespace's invocation and goes again.)
        assert steps <= 8 and puts == steps + 1, (steps, puts)
        other = fan_out().compile(checkpointer=BedrockSessionSaver(client=SessionClient.bedrock(
            endpoint_url=srv.endpoint_url, **KEYS)))
        assert other.get_state(cfg).values == out
        assert sorted(x for x in out["items"] if x.startswith("done:")) == [f"done:task{i}" for i in range(8)]
        history = list(other.get_state_history(cfg))
        assert len(history) == 4 and history[-1].values == {"items": []}
        client.close()


def test_deferred_calls_return_before_their_request_and_flush_stores_them(tmp_path: Path) -> None:
    """With one second added to every request, a deferred run returns long before its requests could have been made;
    another client sees nothing of the run until flush(), then everything."""
    with LocalServer(latency=1.0) as srv:
        sid = srv.client.create_session()["sessionId"]
        client = SessionClient.bedrock(endpoint_url=srv.endpoint_url, **KEYS)
        saver = BedrockSessionSaver(client=client, deferred=True)
        assert saver.deferred
        app = three_nodes().compile(checkpointer=saver)
        cfg = {"configurable": {"thread_id": sid}}
        assert app.get_state(cfg).values == {}  # resolves the thread (not timed)
        started = time.monotonic()
        app.invoke({"items": ["a"]}, cfg)
        returned = time.monotonic() - started
        # The run reads the latest checkpoint (one request: a second) and queues 9 records; storing them takes
        # several more requests of a second each (durable mode would wait for at least 5, one per checkpoint).
        assert returned < 2.5, returned
        saver.flush()
        steps, recs = records(srv.client, sid)
        assert recs == {"checkpoint": 5, "writes": 4}
        assert steps < 9
        reader = three_nodes().compile(checkpointer=BedrockSessionSaver(client=SessionClient.bedrock(
            endpoint_url=srv.endpoint_url, **KEYS)))
        assert reader.get_state(cfg).values == {"items": ["a", "plan", "act", "reply"]}
        client.close()


def test_deferred_reads_of_the_same_saver_wait_for_its_queue(tmp_path: Path) -> None:
    saver = BedrockSessionSaver.local(str(tmp_path / "d.db"), deferred=True)
    app = three_nodes().compile(checkpointer=saver)
    for turn in range(5):
        cfg = {"configurable": {"thread_id": "t"}}
        app.invoke({"items": [str(turn)]}, cfg)
        assert app.get_state(cfg).values["items"][-4:] == [str(turn), "plan", "act", "reply"]
    assert len(list(app.get_state_history({"configurable": {"thread_id": "t"}}))) == 5 * 5


def test_deferred_interrupt_is_stored_when_invoke_returns(tmp_path: Path) -> None:
    """An interrupt is a special write: stored (with everything queued before it) before the call returns, so another
    process can resume the thread at once."""
    db = str(tmp_path / "i.db")
    saver = BedrockSessionSaver.local(db, deferred=True)
    app = with_approval().compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": "approve-1"}}
    app.invoke({"items": ["start"]}, cfg)
    # No flush: a second client on the file (as another process would) sees the pause and resumes it.
    other = BedrockSessionSaver.local(db)
    resumed = with_approval().compile(checkpointer=other)
    state = resumed.get_state(cfg)
    assert state.next == ("ask",) and state.interrupts[0].value == "ok?"
    assert resumed.invoke(Command(resume="yes"), cfg) == {"items": ["start", "answer:yes"]}


def test_deferred_failure_is_raised_by_the_next_call_and_by_flush(tmp_path: Path) -> None:
    """A queued write that fails (here: a step quota too small for even a new generation's seed) is not lost
    silently."""
    saver = BedrockSessionSaver(client=SessionClient.local(str(tmp_path / "q.db"), max_steps_per_session=1),
                                deferred=True)
    app = three_nodes().compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": "small"}}
    with pytest.raises(ServiceQuotaExceededException) as err:
        for turn in range(20):
            app.invoke({"items": [str(turn)]}, cfg)
        saver.flush()
    assert "small" in str(err.value)


def test_deferred_queue_is_stored_at_interpreter_exit(tmp_path: Path) -> None:
    """A process that never calls flush() still stores its queue when it exits normally."""
    db = tmp_path / "exit.db"
    script = textwrap.dedent(f"""
        import operator
        from typing import Annotated, TypedDict
        from langgraph.graph import END, START, StateGraph
        from bedrock_sessions import BedrockSessionSaver

        class State(TypedDict):
            items: Annotated[list, operator.add]

        g = StateGraph(State)
        g.add_node("a", lambda s: {{"items": ["a"]}})
        g.add_edge(START, "a")
        g.add_edge("a", END)
        saver = BedrockSessionSaver.local({str(db)!r}, deferred=True)
        app = g.compile(checkpointer=saver)
        for i in range(30):
            app.invoke({{"items": [str(i)]}}, {{"configurable": {{"thread_id": "exit-1"}}}})
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    saver = BedrockSessionSaver.local(str(db))
    history = list(saver.list({"configurable": {"thread_id": "exit-1"}}))
    assert len(history) == 30 * 3
    latest = saver.get_tuple({"configurable": {"thread_id": "exit-1"}})
    assert latest is not None and latest.checkpoint["channel_values"]["items"][-2:] == ["29", "a"]


@pytest.mark.parametrize("deferred", [False, True], ids=["durable", "deferred"])
def test_async_doors_batch_too(deferred: bool) -> None:
    asyncio.run(_async_doors_batch_too(deferred))


async def _async_doors_batch_too(deferred: bool) -> None:
    """The async methods share the lanes: a fan-out through ainvoke reads back whole."""
    with LocalServer(latency=0.01) as srv:
        sid = srv.client.create_session()["sessionId"]
        client = SessionClient.bedrock(endpoint_url=srv.endpoint_url, **KEYS)
        saver = BedrockSessionSaver(client=client, deferred=deferred)
        app = fan_out().compile(checkpointer=saver)
        cfg = {"configurable": {"thread_id": sid}}
        out = await app.ainvoke({"items": ["go"]}, cfg)
        await saver.aflush()
        steps, recs = records(srv.client, sid)
        assert recs == {"checkpoint": 4, "writes": 10} and steps < 14, (steps, recs)
        fresh = fan_out().compile(checkpointer=BedrockSessionSaver(client=SessionClient.bedrock(
            endpoint_url=srv.endpoint_url, **KEYS)))
        assert (await fresh.aget_state(cfg)).values == out
        client.close()

