"""The thread index kept in sessions (``thread_index=<session id>``) on the Bedrock backend through the local server:
the index itself moves on to a new session when one is full, and an expired index is a clear error."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from _lg_graphs import three_nodes

from bedrock_sessions import BedrockSessionSaver, SessionClient
from bedrock_sessions.server import LocalServer

pytestmark = pytest.mark.timeout(300)

KEYS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret", "region_name": "us-east-1"}
NEXT_INDEX = "bedrock-sessions:next-index"


def bedrock(server: LocalServer, index: str | None) -> SessionClient:
    return SessionClient.bedrock(endpoint_url=server.endpoint_url, thread_index=index, **KEYS)


def index_chain(c: SessionClient, first: str) -> list[str]:
    chain = [first]
    while NEXT_INDEX in (meta := c.get_session(sessionIdentifier=chain[-1])["sessionMetadata"]):
        chain.append(meta[NEXT_INDEX])
    return chain


def test_the_index_moves_on_when_its_session_is_full(tmp_path: Path) -> None:
    # Eight steps per session: the index's sessions fill after a few threads, the threads' after two turns.
    with LocalServer(str(tmp_path / "s.db"), host="127.0.0.1", max_steps_per_session=8) as server:
        admin = bedrock(server, None)
        first = admin.create_session()["sessionId"]
        graphs = [three_nodes().compile(checkpointer=BedrockSessionSaver(client=bedrock(server, first))) for _ in range(2)]
        threads = [f"user {n} / ünïcode" for n in range(12)]
        for turn in range(4):
            for n, t in enumerate(threads):
                out = graphs[(turn + n) % 2].invoke({"items": [turn]}, {"configurable": {"thread_id": t}})
                assert out["items"][-4:] == [turn, "plan", "act", "reply"]
        chain = index_chain(admin, first)
        # 12 bindings, then a binding and a claim per rollover of each thread: far more than one session holds.
        assert len(chain) >= 6, chain
        # A third client (another process) finds every thread, with its whole history across generations.
        reader = three_nodes().compile(checkpointer=BedrockSessionSaver(client=bedrock(server, first)))
        for t in threads:
            cfg: Any = {"configurable": {"thread_id": t}}
            assert reader.get_state(cfg).values["items"] == [x for i in range(4) for x in (i, "plan", "act", "reply")]
            assert len(list(reader.get_state_history(cfg))) == 4 * 5


def test_an_expired_index_says_so_and_names_the_ways_forward(tmp_path: Path) -> None:
    idle = 1.0
    with LocalServer(str(tmp_path / "s.db"), host="127.0.0.1", idle_timeout=idle) as server:
        admin = bedrock(server, None)
        first = admin.create_session()["sessionId"]
        graph = three_nodes().compile(checkpointer=BedrockSessionSaver(client=bedrock(server, first)))
        graph.invoke({"items": [0]}, {"configurable": {"thread_id": "early"}})
        time.sleep(idle + 0.5)
        fresh = three_nodes().compile(checkpointer=BedrockSessionSaver(client=bedrock(server, first)))
        with pytest.raises(Exception, match=r"thread index session .* is EXPIRED.*dynamodb:<table>") as e:
            fresh.invoke({"items": [1]}, {"configurable": {"thread_id": "late"}})
        assert type(e.value).__name__ == "ConflictException"
        # What it holds stays readable, and nothing was created for the refused thread.
        assert fresh.get_state({"configurable": {"thread_id": "early"}}).values["items"] == [0, "plan", "act", "reply"]
        sessions = [s for page in admin.get_paginator("list_sessions").paginate() for s in page["sessionSummaries"]]
        assert len(sessions) == 2  # the index and the early thread's session
