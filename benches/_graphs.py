"""The graphs the benchmarks run, their inputs and the values they must end with.

Everything is deterministic (no clocks, no randomness), so every saver must end with the same state: the
benchmarks compare these values across savers to catch a fast-but-wrong run.
"""

from __future__ import annotations

import base64
import hashlib
import operator
import random
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

WINDOW = 12  # messages kept by the linear graph's state (a bounded chat window)
FANOUT = 8  # parallel Send tasks per turn of the fan-out graph


_WORDS = (
    "the a an and or but if then so because while with without for from to in on at by of about over under "
    "shoe shoes size sizes trail road running walking hiking boot boots sneaker sole grip cushion heel toe "
    "width narrow wide fit fits comfortable light heavy waterproof breathable mesh leather rubber foam price "
    "cost euro euros discount order orders cart checkout payment card delivery shipping return returns refund "
    "stock available color black white blue red green grey brown model brand new old best better good great "
    "customer assistant user question answer help please thanks would could should can will may might need "
    "want like prefer recommend suggest compare choose pick find search show list add remove update confirm "
    "today tomorrow week weekend morning evening day days time fast slow long short easy hard rain snow mud "
    "rock path city park race marathon training daily casual sport outdoor indoor summer winter spring autumn"
).split()


def text(tag: str, n: int) -> str:
    """``n`` characters of word salad derived from ``tag``: a stand-in for a message or a document that
    compresses about like English text (no artificial repetition to flatter compression)."""
    rng = random.Random(hashlib.sha256(tag.encode()).digest())
    words: list[str] = []
    length = 0
    while length < n:
        w = rng.choice(_WORDS)
        words.append(w)
        length += len(w) + 1
    return " ".join(words)[:n]


# --------------------------------------------------------------------------- linear: 3 nodes, a chat window
def _window(old: list[str], new: list[str]) -> list[str]:
    return (old + new)[-WINDOW:]


class LinearState(TypedDict, total=False):
    turn: int
    messages: Annotated[list[str], _window]


def _retrieve(s: LinearState) -> dict[str, Any]:
    return {"messages": [text(f"doc:{s.get('turn', 0)}", 300)]}


def _think(s: LinearState) -> dict[str, Any]:
    return {"messages": [text(f"think:{s.get('turn', 0)}:{len(s.get('messages', []))}", 300)]}


def _answer(s: LinearState) -> dict[str, Any]:
    turn = s.get("turn", 0) + 1
    return {"turn": turn, "messages": [text(f"answer:{turn}", 300)]}


def linear_graph() -> Any:
    g: Any = StateGraph(LinearState)
    g.add_node("retrieve", _retrieve)
    g.add_node("think", _think)
    g.add_node("answer", _answer)
    g.add_edge(START, "retrieve")
    g.add_edge("retrieve", "think")
    g.add_edge("think", "answer")
    g.add_edge("answer", END)
    return g


def linear_input(i: int) -> dict[str, Any]:
    return {"messages": [text(f"user:{i}", 300)]}


CHECKPOINTS_PER_LINEAR_TURN = 5  # input (-1), then steps 0..3


def linear_expected(turns: int) -> dict[str, Any]:
    """The state after ``turns`` turns on a fresh thread, computed without LangGraph."""
    messages: list[str] = []
    turn = 0
    for i in range(turns):
        messages = _window(messages, linear_input(i)["messages"])
        messages = _window(messages, _retrieve({"turn": turn})["messages"])
        messages = _window(messages, _think({"turn": turn, "messages": messages})["messages"])
        out = _answer({"turn": turn})
        turn = out["turn"]
        messages = _window(messages, out["messages"])
    return {"turn": turn, "messages": messages}


# --------------------------------------------------------------------------- fan-out: 8 Send tasks per turn
class FanState(TypedDict, total=False):
    turn: int
    results: Annotated[list[str], operator.add]
    total: int


def _plan(s: FanState) -> dict[str, Any]:
    return {"turn": s.get("turn", 0) + 1}


def _route(s: FanState) -> list[Send]:
    return [Send("work", {"turn": s["turn"], "k": k}) for k in range(FANOUT)]


def _work(arg: dict[str, Any]) -> dict[str, Any]:
    return {"results": [f"{arg['turn']}:{arg['k']}:" + text(f"work:{arg['turn']}:{arg['k']}", 200)]}


def _join(s: FanState) -> dict[str, Any]:
    return {"total": len(s.get("results", []))}


def fanout_graph() -> Any:
    g: Any = StateGraph(FanState)
    g.add_node("plan", _plan)
    g.add_node("work", _work)
    g.add_node("join", _join)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", _route, ["work"])
    g.add_edge("work", "join")
    g.add_edge("join", END)
    return g


FANOUT_INPUT: dict[str, Any] = {"results": []}


def fanout_expected(turns: int) -> dict[str, Any]:
    results = [_work({"turn": t, "k": k})["results"][0] for t in range(1, turns + 1) for k in range(FANOUT)]
    return {"turn": turns, "results": sorted(results), "total": turns * FANOUT}


def normalize_fanout(values: dict[str, Any]) -> dict[str, Any]:
    """Parallel tasks' results in a canonical order (the order of parallel writes is not what we check)."""
    return {"turn": values.get("turn"), "results": sorted(values.get("results", [])), "total": values.get("total")}


# --------------------------------------------------------------------------- large states for put
def big_docs(megabytes: float, seed: int) -> list[str]:
    """About ``megabytes`` MB of distinct 1 KB strings (a retrieval context, say)."""
    rng = random.Random(seed)
    return [base64.b64encode(rng.randbytes(768)).decode() for _ in range(max(1, int(megabytes * 1024)))]


def digest(obj: Any) -> str:
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]
