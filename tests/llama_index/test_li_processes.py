"""Across processes: a real Memory and a real ChatMemoryBuffer carry conversations from one process to the next, and
paused human-in-the-loop workflows saved by one process are resumed by another. On the embedded file store and on the
Bedrock backend (the subprocesses reach this test module's LocalServer over HTTP).

Each backend runs two subprocesses once (``phases``): the first talks, starts two workflow runs and exits; the second
continues the conversations and resumes the runs. The tests below check their reports and the store afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _li_support import HERE, PYTHON, Backend, child_env

from bedrock_sessions.llama_index import SessionChatStore, SessionDBChatStore, SessionWorkflowStore

CHILD = str(HERE / "_li_child.py")


def child(mode: str, **args: Any) -> Any:
    proc = subprocess.run(
        [PYTHON, CHILD, mode, json.dumps(args)], capture_output=True, text=True, timeout=60, env=child_env()
    )
    assert proc.returncode == 0, f"{mode} failed ({proc.returncode}):\\n{proc.stdout}\\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=["file", "bedrock"])
def phases(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Backend, Any, Any]]:
    with contextlib.ExitStack() as stack:
        backend = Backend(request.param, Path(tmp_path_factory.mktemp(f"procs-{request.param}")), stack)
        spec = backend.child_args()
        first = child(
            "phase",
            backend=spec,
            memory={"key": "ana", "token_limit": 120, "say": [f"first process {i}" for i in range(6)]},
            buffer={"key": "bob", "token_limit": 3000, "say": ["hello", "my size is 42"]},
            runs=[
                {"key": "ana", "run": "order-7", "item": "Ridge Runner", "price": 89},
                {"key": "ana", "run": "order-8", "item": "Summit Pro", "price": 129},
            ],
        )
        second = child(
            "phase",
            backend=spec,
            memory={"key": "ana", "token_limit": 120, "say": ["second process", "again"]},
            buffer={"key": "bob", "token_limit": 3000, "say": ["which size?"]},
            runs=[
                {"key": "ana", "run": "order-7", "answer": "yes"},
                {"key": "ana", "run": "order-8", "answer": "no"},
            ],
        )
        yield backend, first, second


def test_memory_conversation_continues_in_another_process(phases: tuple[Backend, Any, Any]) -> None:
    backend, first, second = phases
    first, second = first["memory"], second["memory"]
    assert first["before"] == []
    assert first["replies"][-1].endswith("last: first process 5")
    # Memory kept its FIFO under the token limit: the oldest messages are ARCHIVED, none lost
    statuses = [e[1] for e in first["after"]]
    assert len(statuses) == 12 and "archived" in statuses and statuses[-1] == "active"
    assert statuses == sorted(statuses, key=lambda s: s != "archived")
    assert second["before"] == first["after"]  # exactly what the first process left, ids and statuses included
    # The scripted LLM saw the first process's still-active user turns in its input, plus the new one
    n_active_user = sum(1 for e in first["after"] if e[1] == "active" and e[2] == "user")
    assert second["replies"][0] == f"you said {n_active_user + 1} things, last: second process"
    assert [e[0] for e in second["after"]] == list(range(1, 17))
    assert [e[3] for e in second["after"]][-4:] == ["second process", second["replies"][0], "again", second["replies"][1]]

    async def check() -> None:
        store = SessionDBChatStore(backend.client())
        assert [[i, st.value, m.role.value, m.content] for i, st, m in await store.get_entries("ana")] == second["after"]

    asyncio.run(check())


def test_chat_memory_buffer_conversation_continues_in_another_process(phases: tuple[Backend, Any, Any]) -> None:
    backend, first, second = phases
    first, second = first["buffer"], second["buffer"]
    assert first["before"] == [] and len(first["after"]) == 4
    assert second["before"] == first["after"]
    assert second["replies"] == ["you said 3 things, last: which size?"]
    assert second["after"] == first["after"] + ["which size?", second["replies"][0]]
    assert [m.content for m in SessionChatStore(backend.client()).get_messages("bob")] == second["after"]


def test_paused_workflow_resumes_in_another_process(phases: tuple[Backend, Any, Any]) -> None:
    backend, first, second = phases
    assert first["runs"] == [{"question": "approve Ridge Runner for 89 EUR?"}, {"question": "approve Summit Pro for 129 EUR?"}]
    assert second["runs"] == [{"result": "Ridge Runner (89 EUR): placed"}, {"result": "Summit Pro (129 EUR): cancelled"}]
    store = SessionWorkflowStore(backend.client())
    assert store.load_dict("ana", "order-7") is not None
    assert store.load_dict("ana", "order-9") is None and store.load_dict("nobody", "order-7") is None
