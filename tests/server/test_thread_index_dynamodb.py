"""The DynamoDB thread index on the Bedrock backend (the AWS SDK for Rust), through the local server, against a real
DynamoDB emulator (moto's server, from PyPI) that these tests start on 127.0.0.1 and stop.

* any thread id string (unicode, slashes, 2,048 bytes), read back by another client: one table item per thread;
* 5,000 threads, each bound once, and read back from a fresh client;
* a thread continued after it sat idle past the idle timeout (the index has no idle expiry): it moves on through a
  conditional update of its item;
* two clients driving one thread across rollovers (a quota of a few steps): one chain, no checkpoint lost; two clients
  creating the same new threads at once: one session per thread;
* delete_thread removes the item; bad table names, too-long thread ids and an unreachable DynamoDB give clear errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from _lg_graphs import three_nodes

from bedrock_sessions import AsyncBedrockSessionSaver, AsyncSessionClient, BedrockSessionSaver, SessionClient
from bedrock_sessions.server import LocalServer

pytestmark = pytest.mark.timeout(300)

KEYS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret", "region_name": "us-east-1"}

# moto's server in a child process, on a free port of 127.0.0.1; it prints the port and serves until stdin closes.
_MOTO = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@pytest.fixture(scope="module")
def dynamodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-c", _MOTO], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "moto's server did not start within 60 s"
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(Exception):
            proc.stdin.close()  # type: ignore[union-attr]
        proc.stdout.close()  # type: ignore[union-attr]
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture
def table() -> str:
    """A new table for each test (created by the index on first use)."""
    return f"threads-{uuid.uuid4().hex[:12]}"


def dynamodb(url: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=url, **KEYS)


def items(url: str, table: str) -> dict[str, dict[str, Any]]:
    """Every item of the table, by thread id, read with boto3 (not through our code)."""
    out: dict[str, dict[str, Any]] = {}
    for page in dynamodb(url).get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            out[item["thread_id"]["S"]] = {k: next(iter(v.values())) for k, v in item.items()}
    return out


def client(server: LocalServer, url: str, table: str, cls: Any = SessionClient) -> Any:
    return cls.bedrock(
        endpoint_url=server.endpoint_url, thread_index=f"dynamodb:{table}", dynamodb_endpoint_url=url, **KEYS
    )


def all_sessions(c: SessionClient) -> list[dict[str, Any]]:
    out = []
    for page in c.get_paginator("list_sessions").paginate():
        for s in page["sessionSummaries"]:
            out.append(c.get_session(sessionIdentifier=s["sessionId"]))
    return out


def history(graph: Any, thread_id: str) -> list[tuple[str, Any, Any]]:
    cfg = {"configurable": {"thread_id": thread_id}}
    return [
        (s.config["configurable"]["checkpoint_id"], s.values, s.parent_config and s.parent_config["configurable"]["checkpoint_id"])
        for s in graph.get_state_history(cfg)
    ]


def test_any_thread_id_is_bound_once_and_read_by_another_client(tmp_path: Path, dynamodb_url: str, table: str) -> None:
    thread_ids = ["bob", "ünï/cødé thread · 🧵", "a b/c?d=e&f#g", "x" * 2048]
    with LocalServer(str(tmp_path / "s.db"), host="127.0.0.1") as server:
        writer = client(server, dynamodb_url, table)
        graph = three_nodes().compile(checkpointer=BedrockSessionSaver(client=writer))
        for t in thread_ids:
            for i in range(3):
                graph.invoke({"items": [i]}, {"configurable": {"thread_id": t}})
        # Another client (another process would do the same) finds every thread through the table.
        reader = three_nodes().compile(checkpointer=BedrockSessionSaver(client=client(server, dynamodb_url, table)))
        for t in thread_ids:
            h = history(reader, t)
            assert len(h) == 3 * 5, t
            assert h == history(graph, t)
            assert h[0][1] == {"items": [0, "plan", "act", "reply", 1, "plan", "act", "reply", 2, "plan", "act", "reply"]}
        # The saver's own arguments name the index too (as the replaced saver's constructor is used).
        by_args = BedrockSessionSaver(
            endpoint_url=server.endpoint_url, thread_index=f"dynamodb:{table}", dynamodb_endpoint_url=dynamodb_url, **KEYS
        )
        assert history(three_nodes().compile(checkpointer=by_args), "bob") == history(graph, "bob")
        with pytest.raises(ValueError, match="thread_index= belongs to the client"):
            BedrockSessionSaver(client=writer, thread_index=f"dynamodb:{table}")
        stored = items(dynamodb_url, table)
        assert set(stored) == set(thread_ids)
        sessions = {s["sessionId"]: s for s in all_sessions(writer)}
        assert len(sessions) == len(thread_ids)
        for t, item in stored.items():
            assert item["session_id"] in sessions
            assert item["generation"] == "0"
            assert sessions[item["session_id"]]["sessionMetadata"].get("langgraph:thread_id") == t


@pytest.mark.timeout(900)
def test_five_thousand_threads(tmp_path: Path, dynamodb_url: str, table: str) -> None:
    """Each thread gets one checkpoint (``update_state``: a lookup, a session, a conditional put in the table, a step),
    then a fresh client reads every thread's state back through the table."""
    n = 5000
    thread_ids = [f"customer-{i:05d}/{uuid.uuid4()}" for i in range(n)]

    async def each(c: AsyncSessionClient, work: Any) -> list[Any]:
        graph = three_nodes().compile(checkpointer=AsyncBedrockSessionSaver(client=c))
        sem = asyncio.Semaphore(32)

        async def one(t: str) -> Any:
            async with sem:
                return await work(graph, {"configurable": {"thread_id": t}}, t)

        return await asyncio.gather(*(one(t) for t in thread_ids))

    async def write(graph: Any, cfg: Any, t: str) -> None:
        await graph.aupdate_state(cfg, {"items": [t]})

    async def read(graph: Any, cfg: Any, t: str) -> Any:
        return (await graph.aget_state(cfg)).values

    with LocalServer(str(tmp_path / "s.db"), host="127.0.0.1") as server:
        start = time.monotonic()
        asyncio.run(each(client(server, dynamodb_url, table, AsyncSessionClient), write))
        wrote = time.monotonic() - start
        values = asyncio.run(each(client(server, dynamodb_url, table, AsyncSessionClient), read))
        assert values == [{"items": [t]} for t in thread_ids]
        stored = items(dynamodb_url, table)
        assert set(stored) == set(thread_ids)
        assert len({i["session_id"] for i in stored.values()}) == n
        print(f"5,000 threads through the DynamoDB index: {wrote:.1f} s to write, {time.monotonic() - start - wrote:.1f} s to read")


def test_thread_continues_after_idle_past_the_timeout(tmp_path: Path, dynamodb_url: str, table: str) -> None:
    idle = 1.5
    with LocalServer(str(tmp_path / "s.db"), host="127.0.0.1", idle_timeout=idle) as server:
        c = client(server, dynamodb_url, table)
        graph = three_nodes().compile(checkpointer=BedrockSessionSaver(client=c))
        cfg = {"configurable": {"thread_id": "sleepy thread"}}
        graph.invoke({"items": [0]}, cfg)
        first = items(dynamodb_url, table)["sleepy thread"]["session_id"]
        time.sleep(idle + 0.5)  # the session and the index both sit idle past the timeout
        assert c.get_session(sessionIdentifier=first)["sessionStatus"] == "EXPIRED"
        # A new client (a new process after the pause) continues the thread.
        later = three_nodes().compile(checkpointer=BedrockSessionSaver(client=client(server, dynamodb_url, table)))
        out = later.invoke({"items": [1]}, cfg)
        assert out == {"items": [0, "plan", "act", "reply", 1, "plan", "act", "reply"]}
        item = items(dynamodb_url, table)["sleepy thread"]
        assert item["session_id"] != first and item["generation"] == "1"
        h = history(later, "sleepy thread")
        assert len(h) == 10
        assert [p for _, _, p in h] == [cp for cp, _, _ in h[1:]] + [None]  # parents linked across generations
        # The old session was left as it was (EXPIRED), the new one names it as its predecessor.
        new = c.get_session(sessionIdentifier=item["session_id"])
        assert new["sessionMetadata"]["langgraph:previous"] == first


def test_two_clients_drive_one_thread_across_rollovers(tmp_path: Path, dynamodb_url: str, table: str) -> None:
    with LocalServer(str(tmp_path / "s.db"), host="127.0.0.1", max_steps_per_session=8) as server:
        graphs = [
            three_nodes().compile(checkpointer=BedrockSessionSaver(client=client(server, dynamodb_url, table)))
            for _ in range(2)
        ]
        cfg = {"configurable": {"thread_id": "shared"}}
        expected: list[Any] = []
        for turn in range(12):
            out = graphs[turn % 2].invoke({"items": [turn]}, cfg)
            expected += [turn, "plan", "act", "reply"]
            assert out == {"items": expected}
        item = items(dynamodb_url, table)["shared"]
        assert int(item["generation"]) >= 4, item
        h0, h1 = history(graphs[0], "shared"), history(graphs[1], "shared")
        assert h0 == h1 and len(h0) == 12 * 5
        # One chain: every session of the server is a generation of this thread, listed by the newest.
        c = client(server, dynamodb_url, table)
        sessions = all_sessions(c)
        newest = c.get_session(sessionIdentifier=item["session_id"])
        chain = [newest["sessionId"], *newest["sessionMetadata"]["langgraph:previous"].split()]
        assert sorted(chain) == sorted(s["sessionId"] for s in sessions)
        assert int(newest["sessionMetadata"]["langgraph:generation"]) == int(item["generation"])


def test_two_clients_create_the_same_threads_at_once(tmp_path: Path, dynamodb_url: str, table: str) -> None:
    thread_ids = [f"race-{i}" for i in range(40)]

    async def race(server: LocalServer) -> None:
        savers = [AsyncBedrockSessionSaver(client=client(server, dynamodb_url, table, AsyncSessionClient)) for _ in range(2)]
        graphs = [three_nodes().compile(checkpointer=s) for s in savers]
        # Both clients start each thread at the same moment (different checkpoint ids, one thread).
        await asyncio.gather(
            *(g.aupdate_state({"configurable": {"thread_id": t}}, {"items": [k]}) for t in thread_ids for k, g in enumerate(graphs))
        )

    with LocalServer(str(tmp_path / "s.db"), host="127.0.0.1") as server:
        asyncio.run(race(server))
        stored = items(dynamodb_url, table)
        assert set(stored) == set(thread_ids)
        # The loser of each race dropped its own session: one session per thread, the one bound.
        c = client(server, dynamodb_url, table)
        live = [s for s in all_sessions(c) if s["sessionStatus"] == "ACTIVE"]
        assert sorted(s["sessionId"] for s in live) == sorted(i["session_id"] for i in stored.values())
        graph = three_nodes().compile(checkpointer=BedrockSessionSaver(client=c))
        for t in thread_ids:
            assert len(history(graph, t)) == 2, t  # both clients' checkpoints, in the one session


def test_delete_thread_removes_its_item(tmp_path: Path, dynamodb_url: str, table: str) -> None:
    with LocalServer(str(tmp_path / "s.db"), host="127.0.0.1", max_steps_per_session=8) as server:
        c = client(server, dynamodb_url, table)
        saver = BedrockSessionSaver(client=c)
        graph = three_nodes().compile(checkpointer=saver)
        for t in ("keep", "drop"):
            for i in range(4):  # several generations
                graph.invoke({"items": [i]}, {"configurable": {"thread_id": t}})
        saver.delete_thread("drop")
        assert set(items(dynamodb_url, table)) == {"keep"}
        assert graph.get_state({"configurable": {"thread_id": "drop"}}).values == {}
        assert all(s["sessionMetadata"].get("langgraph:thread_id") == "keep" for s in all_sessions(c))
        # The thread id can start over.
        assert graph.invoke({"items": [9]}, {"configurable": {"thread_id": "drop"}}) == {"items": [9, "plan", "act", "reply"]}


def test_clear_errors(tmp_path: Path, dynamodb_url: str, table: str) -> None:
    with LocalServer(str(tmp_path / "s.db"), host="127.0.0.1") as server:
        with pytest.raises(OSError, match="DynamoDB table name has 3 to 255 characters"):
            client(server, dynamodb_url, "no spaces allowed")
        with pytest.raises(OSError, match=f"thread index table {table}.*(connect|reach|dispatch)"):
            SessionClient.bedrock(
                endpoint_url=server.endpoint_url, thread_index=f"dynamodb:{table}",
                dynamodb_endpoint_url="http://127.0.0.1:9", max_attempts=1, **KEYS,
            )
        c = client(server, dynamodb_url, table)
        graph = three_nodes().compile(checkpointer=BedrockSessionSaver(client=c))
        too_long = "y" * 2049
        with pytest.raises(Exception, match="needs an id of 1 to 2048 bytes") as e:
            graph.invoke({"items": [0]}, {"configurable": {"thread_id": too_long}})
        assert "yyyy" in str(e.value)
        # Nothing was left behind: no session, no item.
        assert all_sessions(c) == [] and items(dynamodb_url, table) == {}
