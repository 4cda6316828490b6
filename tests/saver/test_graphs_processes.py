"""A LangGraph thread shared by processes through one SQLite file (``BedrockSessionSaver`` on ``SessionClient.local``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from _saver_harness import Hits
from _saver_scenarios import build_chat, cfg

pytestmark = pytest.mark.timeout(60)

HERE = os.path.dirname(os.path.abspath(__file__))

# One chat turn in a fresh interpreter, on the store file argv[1]: prints the turn's messages as JSON.
CHILD = """
import json, sys
sys.path.insert(0, {here!r})
from langchain_core.messages import HumanMessage
from bedrock_sessions import BedrockSessionSaver, SessionClient
from _saver_harness import Hits
from _saver_scenarios import build_chat, cfg

path, thread, text, msg_id = sys.argv[1:5]
client = SessionClient.local(path)
graph = build_chat(Hits()).compile(checkpointer=BedrockSessionSaver(client=client))
out = graph.invoke({{"messages": [HumanMessage(text, id=msg_id)]}}, cfg(thread))
print(json.dumps([m.content for m in out["messages"]]))
client.close()
""".format(here=HERE)


def run_child_turn(path: Path, thread: str, text: str, msg_id: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", CHILD, str(path), thread, text, msg_id],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"child failed:\n{proc.stderr}"
    return json.loads(proc.stdout)


def test_a_turn_in_another_process_is_seen_here(tmp_path: Path) -> None:
    from bedrock_sessions import BedrockSessionSaver, SessionClient

    path = tmp_path / "shared.db"
    assert run_child_turn(path, "mp-1", "from the child", "h1") == ["from the child", "1: heard from the child"]

    with SessionClient.local(str(path)) as client:
        graph = build_chat(Hits()).compile(checkpointer=BedrockSessionSaver(client=client))
        out = graph.invoke({"messages": [HumanMessage("from the parent", id="h2")]}, cfg("mp-1"))
        assert [m.content for m in out["messages"]] == [
            "from the child",
            "1: heard from the child",
            "from the parent",
            "2: heard from the child | from the parent",
        ]
        hist: list[Any] = list(graph.get_state_history(cfg("mp-1")))
        assert [s.metadata["step"] for s in hist] == [4, 3, 2, 1, 0, -1]
        assert hist[3].parent_config is not None and hist[2].parent_config["configurable"]["checkpoint_id"] == (
            hist[3].config["configurable"]["checkpoint_id"]
        )

        # A third turn in another process while this client still has the file open, then read here again.
        third = run_child_turn(path, "mp-1", "child again", "h3")
        assert third[-1] == "3: heard from the child | from the parent | child again"
        state = graph.get_state(cfg("mp-1"))
        assert [m.id for m in state.values["messages"]] == ["h1", "ai-1", "h2", "ai-2", "h3", "ai-3"]
        assert len(list(graph.get_state_history(cfg("mp-1")))) == 9
