"""The scenarios: real LangGraph graphs driven through a ``Driver``. Each records what happened on ``drv.rec`` and asserts
facts of its own, so a bug shared by the reference and the saver under test still fails.

Message ids are given explicitly: ``add_messages`` would otherwise give id-less messages random uuid4 ids.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import operator
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.channels import DeltaChannel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, Send, interrupt
from pydantic import BaseModel

from _saver_harness import Driver, Hits


def cfg(thread: str, **configurable: Any) -> Any:
    return {"configurable": {"thread_id": thread, **configurable}}


class LogState(TypedDict):
    log: Annotated[list[str], operator.add]


# ================================================================ 1. multi-turn memory
class ChatState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    turns: int


def build_chat(hits: Hits) -> StateGraph:
    def bot(state: ChatState) -> dict[str, Any]:
        hits.hit("bot")
        heard = [str(m.content) for m in state["messages"] if m.type == "human"]
        n = len(heard)
        return {"messages": [AIMessage(content=f"{n}: heard " + " | ".join(heard), id=f"ai-{n}")], "turns": n}

    g = StateGraph(ChatState)
    g.add_node("bot", bot)
    g.add_edge(START, "bot")
    g.add_edge("bot", END)
    return g


CHAT_TURNS = ("hi", "my name is Ana", "what is my name?")


def multi_turn_memory(drv: Driver) -> None:
    hits = Hits()
    graph = drv.compile(build_chat(hits))
    thread = cfg("chat-1")
    for i, text in enumerate(CHAT_TURNS, 1):
        out = drv.rec.output(f"turn{i}", drv.invoke(graph, {"messages": [HumanMessage(text, id=f"h{i}")]}, thread))
        assert len(out["messages"]) == 2 * i
        assert out["turns"] == i
    # Another thread on the same saver: isolated from the first.
    other = drv.rec.output("other", drv.invoke(graph, {"messages": [HumanMessage("hello", id="o1")]}, cfg("chat-2")))
    assert [m.content for m in other["messages"]] == ["hello", "1: heard hello"]

    final = drv.rec.state("final", graph, thread)
    assert [m.content for m in final.values["messages"]] == [
        "hi",
        "1: heard hi",
        "my name is Ana",
        "2: heard hi | my name is Ana",
        "what is my name?",
        "3: heard hi | my name is Ana | what is my name?",
    ]
    assert [m.id for m in final.values["messages"]] == ["h1", "ai-1", "h2", "ai-2", "h3", "ai-3"]
    assert final.next == ()
    hist = drv.rec.history("history", graph, thread)
    # Each turn: an input checkpoint, one after __start__, one after bot.
    assert [s.metadata["step"] for s in hist] == [7, 6, 5, 4, 3, 2, 1, 0, -1]
    assert [s.metadata["source"] for s in hist] == ["loop", "loop", "input"] * 3
    assert len(drv.rec.history("other-history", graph, cfg("chat-2"))) == 3
    assert hits.snapshot() == {"bot": 4}

    # delete_thread forgets that thread only; the thread id can then start afresh.
    drv.delete_thread("chat-2")
    assert drv.history(graph, cfg("chat-2")) == []
    assert drv.get_tuple(cfg("chat-2")) is None
    assert len(drv.history(graph, thread)) == 9
    fresh = drv.rec.output("fresh", drv.invoke(graph, {"messages": [HumanMessage("anew", id="n1")]}, cfg("chat-2")))
    assert [m.content for m in fresh["messages"]] == ["anew", "1: heard anew"]
    drv.rec.history("fresh-history", graph, cfg("chat-2"))


# ================================================================ 2. interrupt() among parallel tasks
def build_fanout_interrupt(hits: Hits) -> StateGraph:
    def node(name: str) -> Any:
        def run(state: LogState) -> dict[str, Any]:
            hits.hit(name)
            return {"log": [name]}

        return run

    def asks(state: LogState) -> dict[str, Any]:
        hits.hit("asks")
        answer = interrupt({"question": "go on?", "seen": sorted(state["log"])})
        return {"log": [f"asks:{answer}"]}

    g = StateGraph(LogState)
    g.add_node("left", node("left"))
    g.add_node("right", node("right"))
    g.add_node("asks", asks)
    g.add_node("join", node("join"))
    for n in ("left", "right", "asks"):
        g.add_edge(START, n)
    g.add_edge(["left", "right", "asks"], "join")
    g.add_edge("join", END)
    return g


def build_two_askers(hits: Hits) -> StateGraph:
    def asker(name: str) -> Any:
        def run(state: LogState) -> dict[str, Any]:
            hits.hit(name)
            return {"log": [f"{name}:{interrupt(f'ask {name}?')}"]}

        return run

    g = StateGraph(LogState)
    g.add_node("p", asker("p"))
    g.add_node("q", asker("q"))
    g.add_edge(START, "p")
    g.add_edge(START, "q")
    g.add_edge("p", END)
    g.add_edge("q", END)
    return g


def interrupt_parallel(drv: Driver) -> None:
    hits = Hits()
    graph = drv.compile(build_fanout_interrupt(hits))
    thread = cfg("fan-1")
    out = drv.rec.output("first", drv.invoke(graph, {"log": ["x"]}, thread))
    (intr,) = out["__interrupt__"]
    assert intr.value == {"question": "go on?", "seen": ["x"]}
    assert hits.snapshot() == {"asks": 1, "left": 1, "right": 1}

    paused = drv.rec.state("paused", graph, thread)
    # next lists only the tasks with no stored writes: the finished branches' writes were saved.
    assert paused.next == ("asks",)
    by_name = {t.name: t for t in paused.tasks}
    assert by_name["left"].result == {"log": ["left"]} and by_name["right"].result == {"log": ["right"]}
    assert by_name["asks"].result is None and [i.value for i in by_name["asks"].interrupts] == [intr.value]
    assert [i.id for i in paused.interrupts] == [intr.id]
    drv.rec.history("paused-history", graph, thread)

    done = drv.rec.output("resumed", drv.invoke(graph, Command(resume="yes"), thread))
    # One superstep's writes are applied in task-path order (asks < left < right), whenever each task finished.
    assert done == {"log": ["x", "asks:yes", "left", "right", "join"]}
    # The completed branches did not run again; only the interrupted one did.
    assert drv.rec.fact("hits", hits.snapshot()) == {"asks": 2, "join": 1, "left": 1, "right": 1}
    hist = drv.rec.history("history", graph, thread)
    assert [s.metadata["step"] for s in hist] == [2, 1, 0, -1]
    # The paused checkpoint keeps the finished branches' writes, the interrupt and the resume value.
    channels = [(w[1], w[2]) for w in drv.get_tuple(hist[2].config).pending_writes]
    assert ("log", ["left"]) in channels and ("log", ["right"]) in channels and ("log", ["asks:yes"]) in channels
    assert ("__resume__", "yes") in channels  # the Command's resume value (null task id)
    assert ("__resume__", ["yes"]) in channels  # the resumed task's record of it
    assert any(c == "__interrupt__" for c, _ in channels)

    # Two branches interrupt in one superstep; resume them one at a time, by interrupt id.
    two = drv.compile(build_two_askers(hits))
    both = drv.invoke(two, {"log": ["x"]}, cfg("fan-2"))
    # The output lists a superstep's interrupts in the order the tasks stopped (a thread race, any saver): sorted.
    both["__interrupt__"] = sorted(both["__interrupt__"], key=lambda i: i.value)
    drv.rec.output("two-first", both)
    by_value = {i.value: i.id for i in both["__interrupt__"]}
    assert sorted(by_value) == ["ask p?", "ask q?"]
    one = drv.rec.output("two-resume-p", drv.invoke(two, Command(resume={by_value["ask p?"]: "P"}), cfg("fan-2")))
    assert [i.value for i in one["__interrupt__"]] == ["ask q?"]
    still = drv.rec.state("two-half", two, cfg("fan-2"))
    assert still.next == ("q",)
    end = drv.rec.output("two-resume-q", drv.invoke(two, Command(resume={by_value["ask q?"]: "Q"}), cfg("fan-2")))
    assert end == {"log": ["x", "p:P", "q:Q"]}
    assert hits["p"] == 2 and hits["q"] == 3
    drv.rec.history("two-history", two, cfg("fan-2"))


# ================================================================ 2b. an error among parallel tasks, then a retry
def build_fanout_error(hits: Hits, broken: dict[str, bool]) -> StateGraph:
    # A failing task makes LangGraph cancel its siblings that are still running, so "flaky" fails only once the
    # others have returned (and a moment later, for their writes to be handed to the saver): the run is deterministic.
    done = {"left": threading.Event(), "right": threading.Event()}

    def node(name: str) -> Any:
        def run(state: LogState) -> dict[str, Any]:
            hits.hit(name)
            if name in done:
                done[name].set()
            return {"log": [name]}

        return run

    def flaky(state: LogState) -> dict[str, Any]:
        hits.hit("flaky")
        if broken["flaky"]:
            assert all(e.wait(10) for e in done.values())
            time.sleep(0.2)
            raise RuntimeError("flaky is broken")
        return {"log": ["flaky"]}

    g = StateGraph(LogState)
    g.add_node("left", node("left"))
    g.add_node("right", node("right"))
    g.add_node("flaky", flaky)
    g.add_node("join", node("join"))
    for n in ("left", "right", "flaky"):
        g.add_edge(START, n)
    g.add_edge(["left", "right", "flaky"], "join")
    g.add_edge("join", END)
    return g


def error_then_retry(drv: Driver) -> None:
    hits = Hits()
    broken = {"flaky": True}
    graph = drv.compile(build_fanout_error(hits, broken))
    thread = cfg("err-1")
    with pytest.raises(RuntimeError, match="flaky is broken"):
        drv.invoke(graph, {"log": ["x"]}, thread)
    failed = drv.rec.state("failed", graph, thread)
    by_name = {t.name: t for t in failed.tasks}
    assert "flaky is broken" in repr(by_name["flaky"].error)
    assert by_name["left"].error is None and by_name["left"].result == {"log": ["left"]}
    drv.rec.history("failed-history", graph, thread)

    broken["flaky"] = False
    done = drv.rec.output("retried", drv.invoke(graph, None, thread))
    assert done == {"log": ["x", "flaky", "left", "right", "join"]}
    assert drv.rec.fact("hits", hits.snapshot()) == {"flaky": 2, "join": 1, "left": 1, "right": 1}
    drv.rec.history("history", graph, thread)


# ================================================================ 3. Send fan-out (map / reduce)
class MapState(TypedDict):
    items: list[int]
    results: Annotated[list[int], operator.add]
    total: int


def build_map(hits: Hits, ask: set[int]) -> StateGraph:
    def plan(state: MapState) -> dict[str, Any]:
        hits.hit("plan")
        return {}

    def route(state: MapState) -> list[Send]:
        return [Send("work", {"item": i}) for i in state["items"]]

    def work(arg: Any) -> dict[str, Any]:
        item = arg["item"]
        hits.hit(f"work{item}")
        if item in ask:
            factor = interrupt(f"factor for {item}?")
            return {"results": [item * factor]}
        return {"results": [item * item]}

    def reduce(state: MapState) -> dict[str, Any]:
        hits.hit("reduce")
        return {"total": sum(state["results"])}

    g = StateGraph(MapState)
    g.add_node("plan", plan)
    g.add_node("work", work)  # type: ignore[arg-type]  # a Send target gets the Send's arg, not the state
    g.add_node("reduce", reduce)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", route, ["work"])
    g.add_edge("work", "reduce")
    g.add_edge("reduce", END)
    return g


def send_fanout(drv: Driver) -> None:
    hits = Hits()
    items = list(range(1, 13))  # 12 workers: push paths 10 and 11 sort between 1 and 2 as strings
    graph = drv.compile(build_map(hits, ask={7}))
    plain = drv.compile(build_map(hits, ask=set()))
    out = drv.rec.output("plain", drv.invoke(plain, {"items": [1, 2, 3, 4, 5]}, cfg("map-1")))
    assert out == {"items": [1, 2, 3, 4, 5], "results": [1, 4, 9, 16, 25], "total": 55}
    hist = drv.rec.history("plain-history", plain, cfg("map-1"))
    fan = next(s for s in hist if s.next == ("work",) * 5)
    assert [t.result for t in fan.tasks] == [{"results": [i * i]} for i in (1, 2, 3, 4, 5)]

    first = drv.rec.output("asking", drv.invoke(graph, {"items": items}, cfg("map-2")))
    assert [i.value for i in first["__interrupt__"]] == ["factor for 7?"]
    drv.rec.state("asking-state", graph, cfg("map-2"))
    done = drv.rec.output("resumed", drv.invoke(graph, Command(resume=100), cfg("map-2")))
    expected = [i * 100 if i == 7 else i * i for i in items]
    assert done["results"] == expected and done["total"] == sum(expected)
    counts = drv.rec.fact("hits", hits.snapshot())
    assert counts["work7"] == 2
    assert all(counts[f"work{i}"] == (2 if i in (1, 2, 3, 4, 5) else 1) for i in items if i != 7)
    assert counts["reduce"] == 2 and counts["plan"] == 2
    drv.rec.history("asking-history", graph, cfg("map-2"))


# ================================================================ 4. subgraphs (namespaces), interrupt inside
def build_parent(hits: Hits) -> StateGraph:
    def node(name: str) -> Any:
        def run(state: LogState) -> dict[str, Any]:
            hits.hit(name)
            return {"log": [name]}

        return run

    def s2(state: LogState) -> dict[str, Any]:
        hits.hit("s2")
        answer = interrupt("sub asks")
        return {"log": [f"s2:{answer}"]}

    sub = StateGraph(LogState)
    sub.add_node("s1", node("s1"))
    sub.add_node("s2", s2)
    sub.add_node("s3", node("s3"))
    sub.add_edge(START, "s1")
    sub.add_edge("s1", "s2")
    sub.add_edge("s2", "s3")
    sub.add_edge("s3", END)

    parent = StateGraph(LogState)
    parent.add_node("prep", node("prep"))
    parent.add_node("sub", sub.compile())
    parent.add_node("post", node("post"))
    parent.add_edge(START, "prep")
    parent.add_edge("prep", "sub")
    parent.add_edge("sub", "post")
    parent.add_edge("post", END)
    return parent


def subgraphs(drv: Driver) -> None:
    hits = Hits()
    graph = drv.compile(build_parent(hits))
    thread = cfg("sub-1")
    out = drv.rec.output("first", drv.invoke(graph, {"log": ["x"]}, thread))
    assert [i.value for i in out["__interrupt__"]] == ["sub asks"]

    state = drv.rec.state("paused", graph, thread, subgraphs=True)
    assert state.next == ("sub",)
    (task,) = state.tasks
    sub_state = task.state
    assert isinstance(sub_state, type(state)), "subgraphs=True must give the subgraph's StateSnapshot"
    sub_ns = sub_state.config["configurable"]["checkpoint_ns"]
    assert sub_ns == f"sub:{task.id}"
    assert sub_state.next == ("s2",)
    assert sub_state.values == {"log": ["x", "prep", "s1"]}
    assert [i.value for i in sub_state.interrupts] == ["sub asks"]
    sub_hist = drv.rec.history("paused-sub-history", graph, cfg("sub-1", checkpoint_ns=sub_ns))
    assert [s.metadata["step"] for s in sub_hist] == [1, 0, -1]
    parent_hist = drv.rec.history("paused-history", graph, thread)
    # A subgraph checkpoint names its parent namespace's checkpoint.
    assert sub_hist[0].metadata["parents"] == {"": parent_hist[0].config["configurable"]["checkpoint_id"]}

    done = drv.rec.output("resumed", drv.invoke(graph, Command(resume="ok"), thread))
    # The subgraph returns its whole "log" (which started as the parent's), and the parent's reducer appends it.
    assert done == {"log": ["x", "prep", "x", "prep", "s1", "s2:ok", "s3", "post"]}
    assert drv.rec.fact("hits", hits.snapshot()) == {"post": 1, "prep": 1, "s1": 1, "s2": 2, "s3": 1}
    drv.rec.state("done", graph, thread, subgraphs=True)
    parent_hist = drv.rec.history("history", graph, thread)
    sub_hist = drv.rec.history("sub-history", graph, cfg("sub-1", checkpoint_ns=sub_ns))
    assert [s.metadata["step"] for s in sub_hist] == [3, 2, 1, 0, -1]
    assert sub_hist[0].values == {"log": ["x", "prep", "s1", "s2:ok", "s3"]}
    # saver.list without checkpoint_ns: every namespace of the thread; with it: that namespace only.
    everything = drv.rec.listing("list-all", drv.list(cfg("sub-1")), as_set=True)
    assert len(everything) == len(parent_hist) + len(sub_hist)
    only_sub = drv.rec.listing("list-sub", drv.list(cfg("sub-1", checkpoint_ns=sub_ns)))
    assert [t.checkpoint["id"] for t in only_sub] == [s.config["configurable"]["checkpoint_id"] for s in sub_hist]
    only_root = drv.list(cfg("sub-1", checkpoint_ns=""))
    assert len(only_root) == len(parent_hist)
    drv.delete_thread("sub-1")
    assert drv.list(cfg("sub-1")) == [] and drv.list(cfg("sub-1", checkpoint_ns=sub_ns)) == []

    # A subgraph compiled with checkpointer=True, called from a node: one history per thread under namespace "call",
    # kept across the parent's turns.
    class Memo(TypedDict):
        memo: Annotated[list[int], operator.add]

    def s_memo(state: Memo) -> dict[str, Any]:
        hits.hit("memo")
        return {"memo": [len(state.get("memo", []))]}

    memo_builder = StateGraph(Memo)
    memo_builder.add_node("remember", s_memo)
    memo_builder.add_edge(START, "remember")
    memo_builder.add_edge("remember", END)
    memo_graph = memo_builder.compile(checkpointer=True)

    def call(state: LogState) -> dict[str, Any]:
        return {"log": [f"memo={memo_graph.invoke({'memo': []})['memo']}"]}

    caller = StateGraph(LogState)
    caller.add_node("call", call)
    caller.add_edge(START, "call")
    caller.add_edge("call", END)
    outer = drv.compile(caller)
    for i in range(3):
        drv.rec.output(f"memo-turn{i}", drv.invoke(outer, {"log": [f"in{i}"]}, cfg("sub-2")))
    assert drv.get_state(outer, cfg("sub-2")).values["log"][-1] == "memo=[0, 1, 2]"
    memo_list = drv.rec.listing("memo-list", drv.list(cfg("sub-2", checkpoint_ns="call")))
    assert [t.metadata["step"] for t in memo_list] == [7, 6, 5, 4, 3, 2, 1, 0, -1]
    assert memo_list[0].checkpoint["channel_values"]["memo"] == [0, 1, 2]
    drv.rec.history("memo-outer-history", outer, cfg("sub-2"))


# ================================================================ 5. history ordering, parents, list options
def build_line(hits: Hits, names: Sequence[str] = ("a", "b", "c")) -> StateGraph:
    def node(name: str) -> Any:
        def run(state: LogState) -> dict[str, Any]:
            hits.hit(name)
            return {"log": [name]}

        return run

    g = StateGraph(LogState)
    prev = START
    for n in names:
        g.add_node(n, node(n))
        g.add_edge(prev, n)
        prev = n
    g.add_edge(prev, END)
    return g


def history_order(drv: Driver) -> None:
    hits = Hits()
    graph = drv.compile(build_line(hits))
    thread = cfg("hist-1", user="ana")
    drv.rec.output("turn1", drv.invoke(graph, {"log": ["x"]}, thread))
    drv.rec.output("turn2", drv.invoke(graph, {"log": ["y"]}, thread))
    hist = drv.rec.history("history", graph, thread)
    assert [s.metadata["step"] for s in hist] == [8, 7, 6, 5, 4, 3, 2, 1, 0, -1]
    assert [s.metadata["source"] for s in hist] == ["loop"] * 4 + ["input"] + ["loop"] * 4 + ["input"]
    assert all(s.metadata["user"] == "ana" for s in hist)
    ids = [s.config["configurable"]["checkpoint_id"] for s in hist]
    assert [s.parent_config["configurable"]["checkpoint_id"] for s in hist[:-1]] == ids[1:]
    assert hist[0].values == {"log": ["x", "a", "b", "c", "y", "a", "b", "c"]}
    assert hist[4].values == {"log": ["x", "a", "b", "c"]} and hist[4].next == ("__start__",)

    limited = drv.rec.history("limit3", graph, thread, full=False, limit=3)
    assert [s.config["configurable"]["checkpoint_id"] for s in limited] == ids[:3]
    before = drv.rec.history("before2", graph, thread, full=False, before=hist[2].config)
    assert [s.config["configurable"]["checkpoint_id"] for s in before] == ids[3:]
    before_lim = drv.rec.history("before2-limit2", graph, thread, full=False, before=hist[2].config, limit=2)
    assert [s.config["configurable"]["checkpoint_id"] for s in before_lim] == ids[3:5]
    inputs = drv.rec.history("filter-input", graph, thread, full=False, filter={"source": "input"})
    assert [s.config["configurable"]["checkpoint_id"] for s in inputs] == [ids[4], ids[9]]
    step2 = drv.rec.history("filter-step2", graph, thread, full=False, filter={"step": 2, "source": "loop"})
    assert [s.config["configurable"]["checkpoint_id"] for s in step2] == [ids[6]]
    assert len(drv.history(graph, thread, filter={"user": "ana"})) == 10
    assert drv.history(graph, thread, filter={"user": "bob"}) == []
    assert drv.history(graph, cfg("hist-nobody")) == []

    # Exact past checkpoint; the latest; list straight from the saver.
    past = drv.rec.state("past", graph, hist[6].config)
    assert past.values == {"log": ["x", "a", "b"]} and past.next == ("c",)
    assert drv.get_state(graph, thread).config["configurable"]["checkpoint_id"] == ids[0]
    drv.rec.listing("list-limit2", drv.list(thread, limit=2))
    drv.rec.listing("list-before-filter", drv.list(thread, before=hist[1].config, filter={"source": "loop"}, limit=3))
    assert hits.snapshot() == {"a": 2, "b": 2, "c": 2}


# ================================================================ 6. replay from a past checkpoint
def replay(drv: Driver) -> None:
    hits = Hits()
    graph = drv.compile(build_line(hits))
    thread = cfg("replay-1")
    drv.rec.output("run", drv.invoke(graph, {"log": ["x"]}, thread))
    hist = drv.rec.history("before-replay", graph, thread)
    past = next(s for s in hist if s.next == ("b",))
    assert past.values == {"log": ["x", "a"]}

    out = drv.rec.output("replayed", drv.invoke(graph, None, past.config))
    assert out == {"log": ["x", "a", "b", "c"]}
    assert drv.rec.fact("hits", hits.snapshot()) == {"a": 1, "b": 2, "c": 2}
    after = drv.rec.history("after-replay", graph, thread)
    assert len(after) > len(hist)
    # The new branch descends from the past checkpoint; the old branch is still there.
    by_id = {s.config["configurable"]["checkpoint_id"]: s for s in after}
    chain = [after[0]]
    while chain[-1].parent_config is not None:
        chain.append(by_id[chain[-1].parent_config["configurable"]["checkpoint_id"]])
    chain_ids = [s.config["configurable"]["checkpoint_id"] for s in chain]
    assert past.config["configurable"]["checkpoint_id"] in chain_ids
    assert hist[0].config["configurable"]["checkpoint_id"] not in chain_ids
    assert hist[0].config["configurable"]["checkpoint_id"] in by_id
    assert "fork" in [s.metadata["source"] for s in chain]
    latest = drv.rec.state("latest", graph, thread)
    assert latest.config["configurable"]["checkpoint_id"] == chain_ids[0]
    assert latest.values == {"log": ["x", "a", "b", "c"]}


# ================================================================ 7. fork with update_state, then continue
def fork(drv: Driver) -> None:
    hits = Hits()
    graph = drv.compile(build_line(hits))
    thread = cfg("fork-1")
    drv.rec.output("run", drv.invoke(graph, {"log": ["x"]}, thread))
    hist = drv.rec.history("before-fork", graph, thread)
    past = next(s for s in hist if s.next == ("b",))
    past_id = past.config["configurable"]["checkpoint_id"]

    fork_config = drv.rec.output("fork-config", drv.update_state(graph, past.config, {"log": ["edited"]}))
    fork_id = fork_config["configurable"]["checkpoint_id"]
    forked = drv.rec.state("forked", graph, fork_config)
    assert forked.values == {"log": ["x", "a", "edited"]}
    assert forked.next == ("b",)
    assert forked.metadata["source"] == "update"
    assert forked.parent_config["configurable"]["checkpoint_id"] == past_id
    # The fork is now the latest checkpoint of the thread.
    assert drv.get_state(graph, thread).config["configurable"]["checkpoint_id"] == fork_id

    out = drv.rec.output("continued", drv.invoke(graph, None, fork_config))
    assert out == {"log": ["x", "a", "edited", "b", "c"]}
    assert drv.rec.fact("hits", hits.snapshot()) == {"a": 1, "b": 2, "c": 2}
    # The original branch is intact.
    original = drv.rec.state("original-end", graph, hist[0].config)
    assert original.values == {"log": ["x", "a", "b", "c"]}
    after = drv.rec.history("after-fork", graph, thread)
    assert len(after) == len(hist) + 3  # the fork, then after b, after c

    # update_state on the latest checkpoint, as a node: the next step follows that node's edges.
    latest_edit = drv.rec.output(
        "as-node", drv.update_state(graph, thread, {"log": ["late"]}, as_node="b")
    )
    edited = drv.rec.state("as-node-state", graph, latest_edit)
    assert edited.next == ("c",) and edited.values["log"][-1] == "late"
    out2 = drv.rec.output("as-node-run", drv.invoke(graph, None, thread))
    assert out2 == {"log": ["x", "a", "edited", "b", "c", "late", "c"]}
    drv.rec.history("final", graph, thread)


# ================================================================ 8. durability modes
def build_ask_line(hits: Hits) -> StateGraph:
    def node(name: str) -> Any:
        def run(state: LogState) -> dict[str, Any]:
            hits.hit(name)
            return {"log": [name]}

        return run

    def ask(state: LogState) -> dict[str, Any]:
        hits.hit("ask")
        return {"log": [f"ask:{interrupt('ask?')}"]}

    g = StateGraph(LogState)
    g.add_node("a", node("a"))
    g.add_node("b", node("b"))
    g.add_node("ask", ask)
    g.add_node("c", node("c"))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "ask")
    g.add_edge("ask", "c")
    g.add_edge("c", END)
    return g


def durability(drv: Driver) -> None:
    lengths = {}
    for mode in ("sync", "async", "exit"):
        hits = Hits()
        graph = drv.compile(build_ask_line(hits))
        thread = cfg(f"dur-{mode}")
        first = drv.rec.output(f"{mode}-first", drv.invoke(graph, {"log": ["x"]}, thread, durability=mode))
        assert [i.value for i in first["__interrupt__"]] == ["ask?"]
        paused = drv.rec.state(f"{mode}-paused", graph, thread)
        assert paused.next == ("ask",) and paused.values == {"log": ["x", "a", "b"]}
        done = drv.rec.output(f"{mode}-done", drv.invoke(graph, Command(resume="go"), thread, durability=mode))
        assert done == {"log": ["x", "a", "b", "ask:go", "c"]}
        assert drv.rec.fact(f"{mode}-hits", hits.snapshot()) == {"a": 1, "ask": 2, "b": 1, "c": 1}
        hist = drv.rec.history(f"{mode}-history", graph, thread)
        lengths[mode] = len(hist)
        # A second turn on the same thread starts from the saved end state.
        again = drv.rec.output(f"{mode}-turn2", drv.invoke(graph, {"log": ["y"]}, thread, durability=mode))
        assert again["log"][:6] == ["x", "a", "b", "ask:go", "c", "y"]
        assert "__interrupt__" in again
    # input, after __start__, a, b (the interrupt), ask, c; "exit" saves only where each run stopped.
    assert lengths == {"sync": 6, "async": 6, "exit": 2}

    # "exit" and an error: what the failed run leaves is enough for a retry that skips the finished branches.
    hits = Hits()
    broken = {"flaky": True}
    graph = drv.compile(build_fanout_error(hits, broken))
    with pytest.raises(RuntimeError, match="flaky is broken"):
        drv.invoke(graph, {"log": ["x"]}, cfg("dur-exit-error"), durability="exit")
    drv.rec.history("exit-error-history", graph, cfg("dur-exit-error"))
    broken["flaky"] = False
    done = drv.rec.output("exit-error-retry", drv.invoke(graph, None, cfg("dur-exit-error"), durability="exit"))
    assert done == {"log": ["x", "flaky", "left", "right", "join"]}
    assert drv.rec.fact("exit-error-hits", hits.snapshot()) == {"flaky": 2, "join": 1, "left": 1, "right": 1}
    drv.rec.history("exit-error-final", graph, cfg("dur-exit-error"))


# ================================================================ 9. EncryptedSerializer (run with serde=)
def encrypted(drv: Driver) -> None:
    hits = Hits()
    chat = drv.compile(build_chat(hits))
    thread = cfg("enc-1")
    for i, text in enumerate(("secret one", "secret two"), 1):
        drv.rec.output(f"turn{i}", drv.invoke(chat, {"messages": [HumanMessage(text, id=f"h{i}")]}, thread))
    state = drv.rec.state("chat", chat, thread)
    assert [m.content for m in state.values["messages"]] == [
        "secret one",
        "1: heard secret one",
        "secret two",
        "2: heard secret one | secret two",
    ]
    drv.rec.history("chat-history", chat, thread)
    fan = drv.compile(build_fanout_interrupt(Hits()))
    drv.rec.output("fan-first", drv.invoke(fan, {"log": ["x"]}, cfg("enc-2")))
    drv.rec.history("fan-paused", fan, cfg("enc-2"))
    done = drv.rec.output("fan-done", drv.invoke(fan, Command(resume="s3cret"), cfg("enc-2")))
    assert "asks:s3cret" in done["log"]
    drv.rec.history("fan-history", fan, cfg("enc-2"))
    tags = drv.saver.serde.dumps_typed({"k": "v"})[0]
    assert tags.endswith("+aes"), f"the saver does not use the serde it was given: tag {tags!r}"


# ================================================================ 10. DeltaChannel (beta): state rebuilt from stored writes
def _concat(state: list[str], batches: Sequence[list[str]]) -> list[str]:
    out = list(state)
    for batch in batches:
        out.extend(batch)
    return out


class DeltaState(TypedDict):
    log: Annotated[list[str], DeltaChannel(_concat, snapshot_frequency=3)]


def delta_channel(drv: Driver) -> None:
    def node(name: str) -> Any:
        def run(state: DeltaState) -> dict[str, Any]:
            return {"log": [f"{name}{len(state['log'])}"]}

        return run

    g = StateGraph(DeltaState)
    for n in ("a", "b"):
        g.add_node(n, node(n))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    graph = drv.compile(g)
    thread = cfg("delta-1")
    outs = [drv.rec.output(f"turn{i}", drv.invoke(graph, {"log": [f"in{i}"]}, thread)) for i in range(1, 4)]
    assert outs[-1] == {"log": ["in1", "a1", "b2", "in2", "a4", "b5", "in3", "a7", "b8"]}
    hist = drv.rec.history("history", graph, thread)
    mid = next(s for s in hist if s.values.get("log") == ["in1", "a1", "b2", "in2", "a4"])
    assert mid.next == ("b",)
    fork_cfg = drv.rec.output("fork", drv.update_state(graph, mid.config, {"log": ["edit"]}, as_node="a"))
    out = drv.rec.output("forked-run", drv.invoke(graph, None, fork_cfg))
    assert out == {"log": ["in1", "a1", "b2", "in2", "a4", "edit", "b6"]}
    drv.rec.history("after-fork", graph, thread)


# ================================================================ 11. thread ids of any shape
ODD_THREAD_IDS = (
    "",
    "ünïcødé/thread 🙂",
    "t" * 300,
    "123e4567-e89b-12d3-a456-426614174000",  # looks like a session id
    "arn:aws:bedrock:us-east-1:123456789012:session/123e4567-e89b-12d3-a456-426614174000",  # and its ARN
    "UPPER",
    "upper",
    " spaced ",
    "semi;colon'quote\"",
)


def odd_thread_ids(drv: Driver) -> None:
    graph = drv.compile(build_chat(Hits()))
    for n, thread in enumerate(ODD_THREAD_IDS):
        drv.rec.output(f"thread{n}", drv.invoke(graph, {"messages": [HumanMessage(f"I am {n}", id=f"h{n}")]}, cfg(thread)))
    # Every thread sees only its own turn (no two of them share storage).
    for n, thread in enumerate(ODD_THREAD_IDS):
        state = drv.rec.state(f"state{n}", graph, cfg(thread))
        assert [m.content for m in state.values["messages"]] == [f"I am {n}", f"1: heard I am {n}"], repr(thread)
        assert len(drv.rec.history(f"history{n}", graph, cfg(thread))) == 3


# ================================================================ 12. rich values, through a with_allowlist copy
class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: int
    y: float


class Profile(BaseModel):
    name: str
    tags: list[str]


class RichState(TypedDict):
    point: Point
    profile: Profile
    color: Color
    when: dt.datetime
    day: dt.date
    wait: dt.timedelta
    ident: uuid.UUID
    raw: bytes
    tags: set[str]
    pair: tuple[int, str]
    nested: dict[str, Any]
    big: str
    trail: Annotated[list[str], operator.add]


RICH = {
    "point": Point(1, 2.5),
    "profile": Profile(name="Ana", tags=["vip"]),
    "color": Color.RED,
    "when": dt.datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc),
    "day": dt.date(2025, 1, 2),
    "wait": dt.timedelta(seconds=90),
    "ident": uuid.UUID(int=7),
    "raw": bytes(range(256)),
    "tags": {"a", "b"},
    "pair": (1, "one"),
    "nested": {"list": [1, None, True, 1.5, "x"], "empty": {}, "ünï": "🙂\x00nul"},
    "big": "0123456789abcdef" * 65536,  # 1 MiB
    "trail": ["start"],
}
ALLOWLIST = [("_saver_scenarios", "Point"), ("_saver_scenarios", "Profile"), ("_saver_scenarios", "Color")]


def rich_values(drv: Driver) -> None:
    def touch(state: RichState) -> dict[str, Any]:
        return {
            "point": Point(state["point"].x + 1, state["point"].y),
            "color": Color.BLUE,
            "tags": state["tags"] | {"c"},
            "trail": ["touched"],
        }

    g = StateGraph(RichState)
    g.add_node("touch", touch)
    g.add_edge(START, "touch")
    g.add_edge("touch", END)
    # LangGraph hands a checkpointer its with_allowlist() copy (a shallow copy); the copy and the original must
    # see one store. Write through the copy, read through the original (drv.get_tuple and `reader`).
    writer = g.compile(checkpointer=drv.saver.with_allowlist(ALLOWLIST))
    reader = drv.compile(g)
    out = drv.rec.output("run", drv.invoke(writer, RICH, cfg("rich-1")))
    state = drv.rec.state("state", reader, cfg("rich-1"))
    expected = {**RICH, "point": Point(2, 2.5), "color": Color.BLUE, "tags": {"a", "b", "c"}, "trail": ["start", "touched"]}
    for key, value in expected.items():
        assert out[key] == value, key
        # Stored values go through msgpack, which gives tuples back as lists (LangGraph's serializer, any saver).
        assert state.values[key] == (list(value) if isinstance(value, tuple) else value), key
    assert type(state.values["profile"]) is Profile and type(state.values["point"]) is Point
    assert type(state.values["when"]) is dt.datetime and state.values["when"].tzinfo is not None
    drv.rec.history("history", reader, cfg("rich-1"))


# ================================================================ 13. threads running at the same time on one saver
def concurrent_threads(drv: Driver) -> None:
    hits = Hits()
    fan = drv.compile(build_fanout_interrupt(hits))
    chat = drv.compile(build_chat(hits))
    n = 6
    calls: list[tuple[Any, Any, Any]] = [(fan, {"log": [f"x{i}"]}, cfg(f"par-fan-{i}")) for i in range(n)]
    calls += [(chat, {"messages": [HumanMessage(f"hi {i}", id=f"h{i}")]}, cfg(f"par-chat-{i}")) for i in range(n)]
    first = drv.invoke_many(calls)
    for i, out in enumerate(first):
        assert not isinstance(out, BaseException), out
        drv.rec.output(f"first{i}", out)
    resumed = drv.invoke_many(
        [(fan, Command(resume=f"r{i}"), cfg(f"par-fan-{i}")) for i in range(n)]
        + [(chat, {"messages": [HumanMessage(f"again {i}", id=f"h2-{i}")]}, cfg(f"par-chat-{i}")) for i in range(n)]
    )
    for i, out in enumerate(resumed):
        assert not isinstance(out, BaseException), out
        drv.rec.output(f"second{i}", out)
    for i in range(n):
        assert resumed[i] == {"log": [f"x{i}", f"asks:r{i}", "left", "right", "join"]}
        assert [m.content for m in resumed[n + i]["messages"]][-1] == f"2: heard hi {i} | again {i}"
        drv.rec.history(f"fan-history{i}", fan, cfg(f"par-fan-{i}"))
        drv.rec.history(f"chat-history{i}", chat, cfg(f"par-chat-{i}"))
    assert drv.rec.fact("hits", hits.snapshot()) == {"asks": 2 * n, "bot": 2 * n, "join": n, "left": n, "right": n}


# ================================================================ 14. a long thread (many supersteps)
class CountState(TypedDict):
    n: int
    seen: Annotated[list[int], operator.add]


LONG_STEPS = 600


def long_thread(drv: Driver) -> None:
    """600 supersteps in one run, then one more turn: a thread with ~1200 saver calls (puts + put_writes)."""

    def inc(state: CountState) -> dict[str, Any]:
        return {"n": state["n"] + 1, "seen": [state["n"]]}

    def more(state: CountState) -> str:
        return "inc" if state["n"] < LONG_STEPS else END

    g = StateGraph(CountState)
    g.add_node("inc", inc)
    g.add_edge(START, "inc")
    g.add_conditional_edges("inc", more, ["inc", END])
    graph = drv.compile(g)
    thread = {**cfg("long-1"), "recursion_limit": LONG_STEPS + 10}
    out = drv.rec.output("run", drv.invoke(graph, {"n": 0, "seen": []}, thread))
    assert out["n"] == LONG_STEPS and out["seen"] == list(range(LONG_STEPS))
    out2 = drv.rec.output("again", drv.invoke(graph, {"n": LONG_STEPS - 1}, thread))
    assert out2["n"] == LONG_STEPS and len(out2["seen"]) == LONG_STEPS + 1
    hist = drv.rec.history("history", graph, cfg("long-1"))
    assert len(hist) == 2 * (LONG_STEPS + 1) - LONG_STEPS + 3  # first run: input + 601; second: input + 2
    assert hist[0].metadata["step"] == LONG_STEPS + 3


SCENARIOS: dict[str, Any] = {
    "multi_turn_memory": multi_turn_memory,
    "interrupt_parallel": interrupt_parallel,
    "error_then_retry": error_then_retry,
    "send_fanout": send_fanout,
    "subgraphs": subgraphs,
    "history_order": history_order,
    "replay": replay,
    "fork": fork,
    "durability": durability,
    "encrypted": encrypted,
    "delta_channel": delta_channel,
    "odd_thread_ids": odd_thread_ids,
    "rich_values": rich_values,
    "concurrent_threads": concurrent_threads,
    "long_thread": long_thread,
}
# Scenarios that need the saver built with serde=EncryptedSerializer (reference and saver under test alike).
ENCRYPTED_SCENARIOS = {"encrypted"}
