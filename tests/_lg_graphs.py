"""Small LangGraph graphs shared by the saver tests (import after ``pytest.importorskip("langgraph")``)."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    items: Annotated[list, operator.add]


def three_nodes() -> StateGraph:
    """plan -> act -> reply, each appending its name: 5 checkpoints and 4 put_writes per turn."""
    g = StateGraph(State)
    for name in ("plan", "act", "reply"):
        g.add_node(name, lambda s, name=name: {"items": [name]})
    g.add_edge(START, "plan")
    g.add_edge("plan", "act")
    g.add_edge("act", "reply")
    g.add_edge("reply", END)
    return g


def stored_steps(client: Any, sid: str) -> list[list[dict[str, Any]]]:
    """The saver's records in a session, read through the session API: one list per step (a batch step holds
    several records, any other step one)."""
    from bedrock_sessions.saver import decode_step

    out = []
    for page in client.get_paginator("list_invocation_steps").paginate(sessionIdentifier=sid):
        for s in page["invocationStepSummaries"]:
            step = client.get_invocation_step(
                sessionIdentifier=sid, invocationIdentifier=s["invocationId"], invocationStepId=s["invocationStepId"]
            )["invocationStep"]
            decoded = decode_step(step["payload"])
            assert decoded is not None, "a step of the saver's session is not LangGraph state"
            out.append(decoded["records"] if decoded["kind"] == "batch" else [decoded])
    return out


def record_counts(steps: list[list[dict[str, Any]]]) -> dict[str, int]:
    """Checkpoints and writes records among stored steps."""
    out = {"checkpoint": 0, "writes": 0}
    for step in steps:
        for r in step:
            out[r["kind"]] += 1
    return out
