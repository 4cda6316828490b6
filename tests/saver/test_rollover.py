"""Threads outlive their sessions: a session that is full (the step quota), EXPIRED (idle) or ENDED moves the thread
on to a new session, its next generation, and LangGraph sees one thread.

* Every LangGraph scenario (Send fan-out, subgraphs, interrupts pending at a rollover, replay and fork from
  checkpoints generations back, errors and retries...) with a quota small enough to roll over every few supersteps,
  on every saver kind, sync and async: the record (outputs, states, full histories with parents and pending writes)
  is identical to ``InMemorySaver``'s.
* Idle expiry (``ManualClock``) and a session ended through the session API: the thread continues.
* A thread whose id is a session id (no thread index): full sessions roll over through the server; an EXPIRED one
  is refused with an error that names ``continue_thread``, which carries the thread on under a new id.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _saver_harness import assert_same_record
from _saver_kinds import ENCRYPTED_SCENARIOS, encrypted_serde, open_driver
from _saver_scenarios import SCENARIOS
from langgraph.checkpoint.memory import InMemorySaver

from bedrock_sessions import BedrockSessionSaver, ManualClock, SessionClient
from bedrock_sessions.server import LocalServer

pytestmark = pytest.mark.timeout(120)

# Small enough that the scenarios roll over (most several times), large enough to hold a generation's seeds (a
# fan-out's seeds carry the pending writes of every task). Two scenarios write too few steps to roll over.
SMALL_QUOTA = 8
QUOTA = {"send_fanout": 14}
TOO_SHORT_TO_ROLL_OVER = {"rich_values", "odd_thread_ids"}
# Savers that batch writes (group commit, deferred mode) write fewer steps: there only the longer scenarios roll over.
BATCHING = {"bedrock-grouped", "bedrock-deferred", "bedrock-http"}
# Every saver of ours. bedrock-http's session-kept thread index lives under the same tiny quota: the index moves on
# to new sessions too.
OURS = ["bedrock-memory", "bedrock-sqlite", "bedrock-grouped", "bedrock-deferred", "bedrock-at-rest", "bedrock-http"]
# Over HTTP, the harness's check of a 600-superstep thread (get_tuple by id of each of ~3,000 checkpoints, each
# looking back through the generations) takes minutes with a generation every few supersteps: a larger quota there
# (still dozens of rollovers).
KIND_QUOTA = {("long_thread", "bedrock-http"): 64}


def _sessions(factory: Any) -> list[dict[str, Any]]:
    """Every session of the saver's store, read through the session API."""
    if factory.kind == "bedrock-memory":
        client = factory._shared
    elif factory.kind == "bedrock-http":
        client = factory._shared[0].client
    elif factory.kind == "bedrock-at-rest":
        from _support import suite_keyring

        client = SessionClient.local(str(factory.tmp_path / "s.db"), keyring=suite_keyring(default=True))
    else:
        client = SessionClient.local(str(factory.tmp_path / "s.db"))
    out = []
    for page in client.get_paginator("list_sessions").paginate():
        for s in page["sessionSummaries"]:
            out.append(client.get_session(sessionIdentifier=s["sessionId"]))
    return out


@pytest.mark.parametrize("kind", OURS)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenarios_across_rollovers_match_in_memory_saver(name: str, kind: str, mode: str, tmp_path: Path,
                                                          reference_record: Any) -> None:
    expected = reference_record(name, mode)
    serde = encrypted_serde() if name in ENCRYPTED_SCENARIOS else None
    quota = KIND_QUOTA.get((name, kind), QUOTA.get(name, SMALL_QUOTA))
    with open_driver(kind, mode, tmp_path, serde, {"max_steps_per_session": quota}) as (drv, factory):
        SCENARIOS[name](drv)
        got = drv.rec.normalized()
        sessions = _sessions(factory)
    assert_same_record(expected, got)
    # The scenario did roll over: later generations name their predecessors.
    later = [s for s in sessions if int(s["sessionMetadata"].get("langgraph:generation", "0")) > 0]
    if kind not in BATCHING:
        assert bool(later) != (name in TOO_SHORT_TO_ROLL_OVER), f"{name}: {len(sessions)} sessions"
    for s in later:
        previous = s["sessionMetadata"]["langgraph:previous"].split()
        assert len(previous) == min(100, int(s["sessionMetadata"]["langgraph:generation"]))


# ---------------------------------------------------------------- the 3-node graph, many turns, one thread
def _three_nodes() -> Any:
    from _lg_graphs import three_nodes

    return three_nodes()


def _turns(graph: Any, reference: Any, cfg: Any, turns: range) -> None:
    for i in turns:
        out = graph.invoke({"items": [f"u{i}"]}, cfg)
        assert out == reference.invoke({"items": [f"u{i}"]}, cfg)


def _same_history(graph: Any, reference: Any, cfg: Any) -> list[Any]:
    got = list(graph.get_state_history(cfg))
    want = list(reference.get_state_history(cfg))

    def shape(h: list[Any]) -> list[Any]:
        return [(s.values, s.next, s.metadata, s.tasks and [(t.name, t.error) for t in s.tasks]) for s in h]

    assert shape(got) == shape(want)
    ids = [s.config["configurable"]["checkpoint_id"] for s in got]
    assert len(set(ids)) == len(ids), "a checkpoint listed twice"
    parents = [s.parent_config and s.parent_config["configurable"]["checkpoint_id"] for s in got]
    assert parents[:-1] == ids[1:] and parents[-1] is None, "parents link across generations"
    return got


def test_many_turns_with_the_default_quota_on_a_file(tmp_path: Path) -> None:
    """Past the turn where a 3-node graph used to die (111, with the service's 1000 steps per session)."""
    turns = 400
    client = SessionClient.local(str(tmp_path / "long.db"), durability="normal")
    graph = _three_nodes().compile(checkpointer=BedrockSessionSaver(client=client))
    reference = _three_nodes().compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "bob"}}
    _turns(graph, reference, cfg, range(turns))
    history = _same_history(graph, reference, cfg)
    assert len(history) == 5 * turns
    assert len(client.list_sessions(maxResults=100)["sessionSummaries"]) >= 3
    # A checkpoint two generations back loads by id, with its values.
    oldest = history[-2]
    again = graph.get_state(oldest.config)
    assert again.values == oldest.values and again.config == oldest.config


def test_idle_expiry_and_an_ended_session_move_the_thread_on(tmp_path: Path) -> None:
    clock = ManualClock(start=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    client = SessionClient.local(str(tmp_path / "idle.db"), clock=clock, idle_timeout=3600)
    saver = BedrockSessionSaver(client=client)
    graph = _three_nodes().compile(checkpointer=saver)
    reference = _three_nodes().compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "ana"}}
    _turns(graph, reference, cfg, range(2))
    seen = set()
    for period in range(5):
        clock.advance(7200)  # two hours idle: the session reads as EXPIRED
        (sid,) = {s["sessionId"] for s in client.list_sessions()["sessionSummaries"]
                  if s["sessionStatus"] == "ACTIVE"} or {None}
        assert sid is None, "the idle session must have expired"
        _turns(graph, reference, cfg, range(10 + period, 11 + period))
        seen.add(graph.get_state(cfg).config["configurable"]["checkpoint_id"])
    # Someone ends the thread's current session through the session API: the next turn moves on again.
    active = [s for s in client.list_sessions()["sessionSummaries"] if s["sessionStatus"] == "ACTIVE"]
    assert len(active) == 1
    client.end_session(sessionIdentifier=active[0]["sessionId"])
    _turns(graph, reference, cfg, range(20, 22))
    _same_history(graph, reference, cfg)
    assert len(client.list_sessions()["sessionSummaries"]) == 7  # the first, five after idle hours, one after the end


def test_async_api_rolls_over_too(tmp_path: Path) -> None:
    client = SessionClient.local(str(tmp_path / "async.db"), max_steps_per_session=10)
    graph = _three_nodes().compile(checkpointer=BedrockSessionSaver(client=client))
    reference = _three_nodes().compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "async-bob"}}

    async def main() -> tuple[list[Any], list[Any]]:
        for i in range(12):
            assert await graph.ainvoke({"items": [i]}, cfg) == await reference.ainvoke({"items": [i]}, cfg)
        return ([s async for s in graph.aget_state_history(cfg)], [s async for s in reference.aget_state_history(cfg)])

    got, want = asyncio.run(main())
    assert [s.values for s in got] == [s.values for s in want]
    assert len(client.list_sessions(maxResults=100)["sessionSummaries"]) > 5


def test_thread_operations_span_the_chain(tmp_path: Path) -> None:
    """copy_thread, prune and delete_thread over every generation."""
    client = SessionClient.local(str(tmp_path / "ops.db"), max_steps_per_session=12)
    saver = BedrockSessionSaver(client=client)
    graph = _three_nodes().compile(checkpointer=saver)
    src = {"configurable": {"thread_id": "src"}}
    for i in range(6):
        graph.invoke({"items": [i]}, src)
    history = list(graph.get_state_history(src))
    assert len(history) == 30
    saver.copy_thread("src", "dst")
    dst = {"configurable": {"thread_id": "dst"}}
    copied = list(graph.get_state_history(dst))
    assert [s.values for s in copied] == [s.values for s in history]
    assert [s.config["configurable"]["checkpoint_id"] for s in copied] == [
        s.config["configurable"]["checkpoint_id"] for s in history]
    saver.prune(["src"], strategy="keep_latest")
    assert [s.values for s in graph.get_state_history(src)] == [history[0].values]
    graph.invoke({"items": ["after prune"]}, src)
    saver.delete_thread("dst")
    assert list(graph.get_state_history(dst)) == []
    live = {s["sessionId"] for s in client.list_sessions(maxResults=100)["sessionSummaries"]}
    # What is left: the pruned source thread only (one generation, or two if its next turn filled it).
    assert 1 <= len(live) <= 2


# ---------------------------------------------------------------- threads whose id is a session id (no index)
@contextlib.contextmanager
def _server_saver(tmp_path: Path, **options: Any) -> Iterator[tuple[LocalServer, BedrockSessionSaver]]:
    with LocalServer(str(tmp_path / "server.db"), **options) as server:
        saver = BedrockSessionSaver(endpoint_url=server.endpoint_url, region_name="us-east-1",
                                    aws_access_key_id="x", aws_secret_access_key="y")
        yield server, saver


def test_session_id_thread_rolls_over_a_full_session_through_the_server(tmp_path: Path) -> None:
    with _server_saver(tmp_path, max_steps_per_session=20) as (server, saver):
        thread = saver.create_thread()  # the replaced saver's contract: the thread id is a session id
        graph = _three_nodes().compile(checkpointer=saver)
        reference = _three_nodes().compile(checkpointer=InMemorySaver())
        cfg = {"configurable": {"thread_id": thread}}
        _turns(graph, reference, cfg, range(15))
        _same_history(graph, reference, cfg)
        first = server.client.get_session(sessionIdentifier=thread)
        assert first["sessionMetadata"]["langgraph:next"]  # where readers find its successor
        # Another process (a fresh saver) finds the newest generation from the thread id alone.
        other = BedrockSessionSaver(endpoint_url=server.endpoint_url, region_name="us-east-1",
                                    aws_access_key_id="x", aws_secret_access_key="y")
        assert other.get_tuple(cfg).checkpoint["id"] == graph.get_state(cfg).config["configurable"]["checkpoint_id"]


def test_expired_session_id_thread_names_the_way_forward(tmp_path: Path) -> None:
    clock = ManualClock(start=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    with _server_saver(tmp_path, clock=clock) as (server, saver):
        thread = saver.create_thread()
        graph = _three_nodes().compile(checkpointer=saver)
        cfg = {"configurable": {"thread_id": thread}}
        graph.invoke({"items": ["hello"]}, cfg)
        clock.advance(7200)
        with pytest.raises(Exception) as info:
            graph.invoke({"items": ["after lunch"]}, cfg)
        assert "continue_thread" in str(info.value) and thread in str(info.value)
        new_thread = saver.continue_thread(thread)
        assert new_thread != thread
        new_cfg = {"configurable": {"thread_id": new_thread}}
        out = graph.invoke({"items": ["after lunch"]}, new_cfg)
        assert out["items"] == ["hello", "plan", "act", "reply", "after lunch", "plan", "act", "reply"]
        assert len(list(graph.get_state_history(new_cfg))) == 10


def test_deferred_mode_rolls_over(tmp_path: Path) -> None:
    client = SessionClient.local(str(tmp_path / "deferred.db"), max_steps_per_session=8)
    saver = BedrockSessionSaver(client=client, deferred=True)
    graph = _three_nodes().compile(checkpointer=saver)
    reference = _three_nodes().compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "deferred-bob"}}
    _turns(graph, reference, cfg, range(12))
    saver.flush()
    _same_history(graph, reference, cfg)
    assert len(client.list_sessions(maxResults=100)["sessionSummaries"]) > 3


def test_aws_sdk_backend_with_a_session_kept_index_rolls_over(tmp_path: Path) -> None:
    """Through the local server and the AWS SDK for Rust, any thread id, the index kept in a session."""
    with LocalServer(str(tmp_path / "http.db"), max_steps_per_session=30) as server:
        index = server.client.create_session()["sessionId"]
        client = SessionClient.bedrock(endpoint_url=server.endpoint_url, region_name="us-east-1",
                                       aws_access_key_id="x", aws_secret_access_key="y", thread_index=index)
        graph = _three_nodes().compile(checkpointer=BedrockSessionSaver(client=client))
        reference = _three_nodes().compile(checkpointer=InMemorySaver())
        cfg = {"configurable": {"thread_id": "any string, not a session id"}}
        _turns(graph, reference, cfg, range(12))
        _same_history(graph, reference, cfg)
        assert len(server.client.list_sessions(maxResults=100)["sessionSummaries"]) > 3
        # Another process (a new client and saver) finds the newest generation through the index.
        other = BedrockSessionSaver(client=SessionClient.bedrock(
            endpoint_url=server.endpoint_url, region_name="us-east-1", aws_access_key_id="x",
            aws_secret_access_key="y", thread_index=index))
        assert other.get_tuple(cfg).checkpoint["id"] == graph.get_state(cfg).config["configurable"]["checkpoint_id"]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("where", ["embedded", "server"])
def test_two_thousand_turns_on_one_thread_with_the_default_quotas(where: str, tmp_path: Path) -> None:
    """The issue's measure: 2,000 turns of the 3-node graph on one thread (about 18 generations of 1,000 steps),
    every turn succeeds, and the history holds every checkpoint of every turn, parents linked."""
    turns = 2000
    with contextlib.ExitStack() as stack:
        if where == "embedded":
            saver = BedrockSessionSaver(client=stack.enter_context(SessionClient.memory()))
            thread = "bob"
            count = saver.sessions
        else:
            server = stack.enter_context(LocalServer(str(tmp_path / "server.db"), durability="normal"))
            saver = BedrockSessionSaver(endpoint_url=server.endpoint_url, region_name="us-east-1",
                                        aws_access_key_id="x", aws_secret_access_key="y")
            thread = saver.create_thread()
            count = server.client
        graph = _three_nodes().compile(checkpointer=saver)
        cfg = {"configurable": {"thread_id": thread}}
        for i in range(turns):
            assert graph.invoke({"items": [i]}, cfg)["items"][-4:] == [i, "plan", "act", "reply"]
        history = list(graph.get_state_history(cfg))
        assert len(history) == 5 * turns
        assert history[0].values["items"] == [x for i in range(turns) for x in (i, "plan", "act", "reply")]
        ids = [s.config["configurable"]["checkpoint_id"] for s in history]
        assert [s.parent_config and s.parent_config["configurable"]["checkpoint_id"] for s in history] == [
            *ids[1:], None]
        sessions = [s for page in count.get_paginator("list_sessions").paginate() for s in page["sessionSummaries"]]
        # 1,000 steps a session: 9 per turn embedded; group commit shares steps over HTTP, so fewer generations there.
        assert len(sessions) >= (18 if where == "embedded" else 10)


# Two processes take turns on one thread through one SQLite file (a lock file orders their turns, as two workers of
# an app behind a queue would): each keeps its own caches, so each meets the other's rollovers on its next write.
TURN_TAKER = """
import fcntl, sys
sys.path.insert(0, {tests!r})
from _lg_graphs import three_nodes
from bedrock_sessions import BedrockSessionSaver, SessionClient

path, lock, name, turns = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client = SessionClient.local(path, max_steps_per_session=20)
graph = three_nodes().compile(checkpointer=BedrockSessionSaver(client=client))
cfg = {{"configurable": {{"thread_id": "shared"}}}}
for i in range(turns):
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        graph.invoke({{"items": [name + str(i)]}}, cfg)
        fcntl.flock(f, fcntl.LOCK_UN)
client.close()
"""


def test_two_processes_drive_one_thread_across_rollovers(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    db, lock, turns = str(tmp_path / "shared.db"), str(tmp_path / "turns.lock"), 15
    script = TURN_TAKER.format(tests=tests)
    procs = [subprocess.Popen([sys.executable, "-c", script, db, lock, name, str(turns)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for name in ("a", "b")]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-2000:]
    client = SessionClient.local(db)
    graph = _three_nodes().compile(checkpointer=BedrockSessionSaver(client=client))
    cfg = {"configurable": {"thread_id": "shared"}}
    items = graph.get_state(cfg).values["items"]
    inputs = [x for x in items if x not in ("plan", "act", "reply")]
    # No turn lost: every input of both processes, once, each followed by its three nodes.
    assert sorted(inputs) == sorted(f"{n}{i}" for n in "ab" for i in range(turns))
    assert items == [x for i in inputs for x in (i, "plan", "act", "reply")]
    history = list(graph.get_state_history(cfg))
    assert len(history) == 5 * 2 * turns
    # One chain: each later generation names the one before it, and the chain holds every session.
    sessions = {s["sessionId"]: client.get_session(sessionIdentifier=s["sessionId"])["sessionMetadata"]
                for s in client.list_sessions(maxResults=100)["sessionSummaries"]}
    by_generation = sorted(sessions.items(), key=lambda kv: int(kv[1].get("langgraph:generation", 0)))
    assert [int(md.get("langgraph:generation", 0)) for _, md in by_generation] == list(range(len(sessions)))
    for (prev, _), (_, md) in zip(by_generation, by_generation[1:]):
        assert md["langgraph:previous"].split()[0] == prev
    assert len(sessions) > 5
    client.close()


@pytest.mark.parametrize("indexed", [False, True])
def test_a_reader_over_the_network_sees_where_another_process_moved_the_thread(tmp_path: Path, indexed: bool) -> None:
    """Saver B caches the thread's session, saver A (another process's caches) then moves the thread on several
    times: B's next read is of the newest generation, not a stale one (a turn built on it would fork the thread)."""
    with LocalServer(str(tmp_path / "readers.db"), max_steps_per_session=20) as server:
        index = server.client.create_session()["sessionId"] if indexed else None

        def saver() -> BedrockSessionSaver:
            extra = {"thread_index": index} if indexed else {}
            return BedrockSessionSaver(client=SessionClient.bedrock(
                endpoint_url=server.endpoint_url, region_name="us-east-1", aws_access_key_id="x",
                aws_secret_access_key="y", **extra))

        a, b = saver(), saver()
        thread = "shared-thread" if indexed else a.create_thread()
        cfg = {"configurable": {"thread_id": thread}}
        graph_a, graph_b = (_three_nodes().compile(checkpointer=s) for s in (a, b))
        graph_b.invoke({"items": ["b0"]}, cfg)
        for i in range(8):
            graph_a.invoke({"items": [f"a{i}"]}, cfg)
        assert graph_b.get_state(cfg).values == graph_a.get_state(cfg).values
        graph_b.invoke({"items": ["b1"]}, cfg)
        assert graph_a.get_state(cfg).values["items"][-8:] == ["a7", "plan", "act", "reply", "b1", "plan", "act",
                                                               "reply"]
