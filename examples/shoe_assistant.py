"""A shoe-shopping assistant built with LangGraph, its state kept by bedrock_sessions' BedrockSessionSaver.

The story: a few chat turns on one thread that remember the cart, a checkout that waits for a human's approval
(`interrupt()`), the thread's state history, a replay from a past checkpoint, a fork that takes another path,
and finally an auditor reading the raw session data back through the session API.

Runs offline and deterministically (a scripted chat model, an in-file catalogue, an embedded SQLite store):
    python examples/shoe_assistant.py [--db PATH]      (default: a temporary file, deleted at exit)
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from typing import Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import InjectedState, ToolNode
from langgraph.types import Command, interrupt

from bedrock_sessions import BedrockSessionSaver, SessionClient
from bedrock_sessions.saver import decode_step


def make_checkpointer(db_path: str) -> BedrockSessionSaver:
    """The one place that picks the checkpointer: LangGraph checkpoints kept as Bedrock sessions in the
    embedded store (one SQLite file). A thread is a session; any thread_id string works."""
    return BedrockSessionSaver(client=SessionClient.local(db_path))


# ----------------------------------------------------------------------------- the shop
CATALOGUE: dict[str, dict[str, Any]] = {  # sku -> product; prices in whole euros
    "TR-RIDGE": {"name": "Ridge Runner", "kind": "trail", "price": 89, "sizes": [40, 41, 42, 43, 44, 45]},
    "TR-SUMMIT": {"name": "Summit Pro", "kind": "trail", "price": 129, "sizes": [41, 42, 43, 44]},
    "CT-GLIDE": {"name": "City Glide", "kind": "city", "price": 75, "sizes": [38, 39, 40, 41, 42, 43, 44]},
    "RD-TEMPO": {"name": "Tempo Road", "kind": "road", "price": 110, "sizes": [39, 40, 41, 42, 43, 44, 45, 46]},
}


def merge_cart(current: dict[str, dict], update: dict[str, dict | None]) -> dict[str, dict]:
    """The cart's reducer: an update {sku: item} adds or replaces a line, {sku: None} removes it."""
    return {sku: item for sku, item in {**(current or {}), **update}.items() if item is not None}


class ShopState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    cart: Annotated[dict[str, dict], merge_cart]  # in graph state, so every checkpoint holds the cart
    order: dict | None  # set by the checkout node


def describe(cart: dict[str, dict]) -> str:
    if not cart:
        return "(empty)"
    lines = [f"{item['name']} size {item['size']} ({item['price']} EUR)" for item in cart.values()]
    return ", ".join(lines) + f"; total {sum(i['price'] for i in cart.values())} EUR"


# ----------------------------------------------------------------------------- tools
@tool
def search_catalogue(query: str, size: int) -> str:
    """Find shoes whose name or kind matches `query` and that come in EU size `size`."""
    hits = [
        f"{p['name']} ({sku}, {p['price']} EUR)"
        for sku, p in CATALOGUE.items()
        if query.lower() in (p["name"] + " " + p["kind"]).lower() and size in p["sizes"]
    ]
    return f"In size {size}: " + ("; ".join(hits) if hits else "nothing matches")


@tool
def add_to_cart(sku: str, size: int, tool_call_id: Annotated[str, InjectedToolCallId]) -> Command:
    """Put one pair of `sku` in EU size `size` in the cart."""
    product = CATALOGUE[sku]
    if size not in product["sizes"]:
        reply = ToolMessage(f"{product['name']} has no size {size}", tool_call_id=tool_call_id)
        return Command(update={"messages": [reply]})
    item = {"name": product["name"], "size": size, "price": product["price"]}
    reply = ToolMessage(f"Added {product['name']} size {size}.", tool_call_id=tool_call_id)
    # A tool updates the graph state by returning a Command: here the cart (through merge_cart) and its reply.
    return Command(update={"cart": {sku: item}, "messages": [reply]})


@tool
def remove_from_cart(sku: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> Command:
    """Take `sku` out of the cart."""
    reply = ToolMessage(f"Removed {sku}.", tool_call_id=tool_call_id)
    return Command(update={"cart": {sku: None}, "messages": [reply]})


@tool
def view_cart(state: Annotated[dict, InjectedState]) -> str:
    """Show what is in the cart (read from the graph state, not from a global)."""
    return "Your cart: " + describe(state.get("cart") or {})


TOOLS = [search_catalogue, add_to_cart, remove_from_cart, view_cart]


# ----------------------------------------------------------------------------- the scripted chat model
class ScriptedShopModel(BaseChatModel):
    """A deterministic stand-in for a real chat model: it reads the last message and answers with a tool call
    (for a user message) or a sentence (after a tool result). No network, no randomness."""

    @property
    def _llm_type(self) -> str:
        return "scripted-shop-model"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedShopModel:  # it knows its tools already
        return self

    def _generate(self, messages: list, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._reply(messages))])

    def _reply(self, messages: list) -> AIMessage:
        last = messages[-1]
        if isinstance(last, ToolMessage):  # a tool answered: put it into words for the shopper
            follow_up = {"search_catalogue": "Shall I add one to your cart?", "checkout": "Thank you for shopping!"}
            return AIMessage(content=f"{last.content} {follow_up.get(last.name or '', 'Anything else?')}")
        text = last.content.lower()
        size = int(m.group(1)) if (m := re.search(r"size (\d+)", text)) else 42
        sku = next((s for s, p in CATALOGUE.items() if p["name"].lower() in text), None)
        args: dict[str, Any] = {}
        if "check out" in text:
            name = "checkout"
        elif "remove" in text and sku:
            name, args = "remove_from_cart", {"sku": sku}
        elif "add" in text and sku:
            name, args = "add_to_cart", {"sku": sku, "size": size}
        elif "cart" in text:
            name = "view_cart"
        else:
            kind = next((k for k in ("trail", "road", "city") if k in text), text)
            name, args = "search_catalogue", {"query": kind, "size": size}
        # The call id depends only on the conversation so far: a replay produces the very same message.
        return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call_{len(messages)}"}])


MODEL = ScriptedShopModel().bind_tools(TOOLS)


# ----------------------------------------------------------------------------- the graph
def agent(state: ShopState) -> dict:
    return {"messages": [MODEL.invoke(state["messages"])]}


def route(state: ShopState) -> str:
    calls = getattr(state["messages"][-1], "tool_calls", None)
    if not calls:
        return END
    return "checkout" if calls[0]["name"] == "checkout" else "tools"


def checkout(state: ShopState) -> dict:
    """Ask a human before placing the order. interrupt() saves a checkpoint and stops the run; the run
    resumes here (the node starts again) when the graph is invoked with Command(resume=...)."""
    cart = state["cart"]
    total = sum(item["price"] for item in cart.values())
    lines = [f"{sku} size {item['size']}" for sku, item in cart.items()]
    decision = interrupt({"question": "Place this order?", "cart": lines, "total": total})
    # Code above interrupt() runs again on resume: keep it free of side effects.
    approved = bool(decision.get("approved"))
    order = {"status": "placed" if approved else "declined", "pairs": len(cart), "total": total}
    text = f"Order placed: {len(cart)} pairs, {total} EUR." if approved else "Order not placed: approval declined."
    request = state["messages"][-1]  # the agent's message that called the checkout tool: answer that call
    assert isinstance(request, AIMessage)
    return {"order": order, "messages": [ToolMessage(text, name="checkout", tool_call_id=request.tool_calls[0]["id"])]}


def build_graph(checkpointer: Any) -> Any:
    builder = StateGraph(ShopState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(TOOLS))
    builder.add_node("checkout", checkout)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["tools", "checkout", END])
    builder.add_edge("tools", "agent")
    builder.add_edge("checkout", "agent")
    return builder.compile(checkpointer=checkpointer)


# ----------------------------------------------------------------------------- the story
def short(ref: str | dict | None) -> str:
    """A checkpoint id, or a config that holds one, in short form: '#' and its last 8 hex digits."""
    if isinstance(ref, dict):
        ref = ref["configurable"]["checkpoint_id"]
    return f"#{ref[-8:]}" if ref else "-"


def show_new_messages(messages: list, since: int) -> None:
    for msg in messages[since:]:
        if isinstance(msg, HumanMessage):
            print(f"     user:      {msg.content}")
        elif isinstance(msg, AIMessage) and msg.tool_calls:
            for call in msg.tool_calls:
                args = ", ".join(f"{k}={v!r}" for k, v in call["args"].items())
                print(f"     tool call: {call['name']}({args})")
        elif isinstance(msg, ToolMessage):
            print(f"     tool:      {msg.content}")
        elif isinstance(msg, AIMessage):
            print(f"     assistant: {msg.content}")


TURNS = [
    "Do you have trail running shoes in size 42?",
    "Add the Ridge Runner in size 42 to my cart.",
    "Also add the City Glide, size 42.",
    "What is in my cart right now?",
]


def run(graph: Any, saver: Any) -> None:
    thread = {"configurable": {"thread_id": "shopper-ana"}}

    print("\n1. The assistant: a scripted chat model, tools search_catalogue / add_to_cart / remove_from_cart /")
    print(f"   view_cart, the cart in graph state; checkpointer {type(saver).__name__}, thread 'shopper-ana'")

    print("\n2. Four turns on one thread: the checkpointer remembers the cart between them")
    seen = 0
    for n, text in enumerate(TURNS, start=1):
        values = graph.invoke({"messages": [HumanMessage(text)]}, thread)
        print(f"   turn {n}")
        show_new_messages(values["messages"], seen)
        seen = len(values["messages"])
        print(f"     cart:      {describe(values['cart'])}")

    print("\n3. Checkout pauses for a human's approval (interrupt)")
    values = graph.invoke({"messages": [HumanMessage("Looks good, check out please.")]}, thread)
    show_new_messages(values["messages"], seen)
    pending = graph.get_state(thread)
    print(f"   paused before: {pending.next}")
    print(f"   pending interrupt: {pending.interrupts[0].value}")
    print('   resuming with Command(resume={"approved": True})')
    values = graph.invoke(Command(resume={"approved": True}), thread)
    show_new_messages(values["messages"], len(pending.values["messages"]))
    print(f"   order: {values['order']}")
    main_final = graph.get_state(thread).config  # remembered to compare with the fork later

    print("\n4. State history of the thread (newest first)")
    history = list(graph.get_state_history(thread))
    print(f"   {'step':>4}  {'source':<6}  {'next':<12}  cart  checkpoint  parent")
    for snap in history:
        step, source, nxt = snap.metadata["step"], snap.metadata["source"], ",".join(snap.next) or "-"
        cart = len(snap.values.get("cart", {}))
        print(f"   {step:>4}  {source:<6}  {nxt:<12}  {cart:>4}  {short(snap.config):<10}  {short(snap.parent_config)}")
    print(f"   {len(history)} checkpoints")

    print("\n5. Replay from a past checkpoint: turn 3, just before its add_to_cart tool call ran")
    past = next(s for s in history if s.next == ("tools",) and len(s.values["cart"]) == 1)
    print(f"   checkpoint {short(past.config)}: step {past.metadata['step']}, "
          f"next {past.next}, cart {describe(past.values['cart'])}")
    # invoke(None, config-with-checkpoint_id) runs again everything after that checkpoint, on a new branch.
    # stream_mode="updates" makes invoke return what each node wrote, so we can see what ran.
    updates = graph.invoke(None, past.config, stream_mode="updates")
    print(f"   ran again: {' -> '.join(node for update in updates for node in update)}")
    print(f"   cart after the replay: {describe(graph.get_state(thread).values['cart'])}")
    original = {s.config["configurable"]["checkpoint_id"] for s in history}
    replayed = [s for s in graph.get_state_history(thread)
                if s.config["configurable"]["checkpoint_id"] not in original]
    for snap in reversed(replayed):
        print(f"   new checkpoint {short(snap.config)}: step {snap.metadata['step']}, "
              f"source {snap.metadata['source']}, next {snap.next}")
    print(f"   the {len(history)} original checkpoints are untouched; the thread now ends on the replayed branch")

    print("\n6. Fork: before checkout, swap the Ridge Runner to size 43, then decline the order")
    before_checkout = next(s for s in history if s.next == ("checkout",))
    swapped = {**before_checkout.values["cart"]["TR-RIDGE"], "size": 43}
    fork = graph.update_state(before_checkout.config, {"cart": {"TR-RIDGE": swapped}}, as_node="agent")
    print(f"   update_state at {short(before_checkout.config)} -> "
          f"new checkpoint {short(fork)}")
    graph.invoke(None, fork)
    print(f"   the fork pauses again: {graph.get_state(thread).interrupts[0].value}")
    print('   resuming with Command(resume={"approved": False})')
    forked = graph.invoke(Command(resume={"approved": False}), thread)
    print(f"   assistant: {forked['messages'][-1].content}")
    for label, config in (("main branch", main_final), ("fork", graph.get_state(thread).config)):
        snap = graph.get_state(config)
        print(f"   {label:<11}  cart: {describe(snap.values['cart'])}  order: {snap.values['order']['status']}")


def audit(saver: BedrockSessionSaver) -> None:
    """Read the raw data back as an auditor would: plain session API calls on the same store, then
    decode_step() and saver.serde.loads_typed() to turn each stored step back into LangGraph values."""
    client = saver.sessions
    print("\n7. Audit: the raw session data, read back through the session API")
    sessions = client.list_sessions()["sessionSummaries"]
    print(f"   list_sessions: {len(sessions)} session(s)")
    for summary in sessions:
        sid = summary["sessionId"]
        metadata = client.get_session(sessionIdentifier=sid)["sessionMetadata"]
        print(f"   session {sid} ({summary['sessionStatus']}), metadata {dict(sorted(metadata.items()))}")
        pages = client.get_paginator("list_invocation_steps").paginate(sessionIdentifier=sid)
        summaries = [step for page in pages for step in page["invocationStepSummaries"]]  # newest first
        steps = []
        for s in summaries:
            step = client.get_invocation_step(
                sessionIdentifier=sid, invocationIdentifier=s["invocationId"], invocationStepId=s["invocationStepId"]
            )["invocationStep"]
            decoded = decode_step(step["payload"])  # None for a step that is not LangGraph state
            if decoded is not None:  # a batch step (writes grouped into one request) holds several records
                for record in decoded["records"] if decoded["kind"] == "batch" else [decoded]:
                    steps.append((step, record))
        checkpoints = sorted((d for _, d in steps if d["kind"] == "checkpoint"), key=lambda d: d["checkpoint_id"])
        writes = sorted((d for _, d in steps if d["kind"] == "writes"), key=lambda d: d["checkpoint_id"])
        invocations = len({s["invocationId"] for s in summaries})  # one invocation per checkpoint namespace
        print(f"   list_invocation_steps: {len(summaries)} steps in {invocations} invocation(s): "
              f"{len(checkpoints)} checkpoints, {len(writes)} writes records")
        latest = checkpoints[-1]  # the newest checkpoint (uuid6 ids sort by time), and its step as stored:
        newest = next(st for st, d in steps if d is latest)
        size = len(newest["payload"]["contentBlocks"][0]["text"])  # one text block: a JSON envelope
        print(f"   get_invocation_step (newest checkpoint): id {newest['invocationStepId']}, "
              f"{newest['invocationStepTime']:%H:%M:%S}, {size} bytes of JSON")
        print(f"     decode_step: kind {latest['kind']}, thread {latest['thread_id']!r}, "
              f"metadata {latest['metadata']}, channels {sorted(latest['channel_values'])}")

        # The cart stored in each checkpoint step, in the order they were written (uuid6 ids sort by time).
        print("   the cart in each checkpoint step, oldest first (serde.loads_typed of channel_values['cart']);")
        print("   consecutive steps with the same cart are grouped, with the source of the group's first checkpoint:")
        runs: list[list] = []  # [first step, last step, count, cart, source of the first]
        for d in checkpoints:
            typed = d["channel_values"].get("cart")
            cart = describe(saver.serde.loads_typed(typed) if typed else {})
            if runs and runs[-1][3] == cart and d["metadata"]["step"] == runs[-1][1] + 1:
                runs[-1][1:3] = [d["metadata"]["step"], runs[-1][2] + 1]
            else:
                runs.append([d["metadata"]["step"], d["metadata"]["step"], 1, cart, d["metadata"]["source"]])
        for first, last, count, cart, source in runs:
            print(f"     steps {first:>3}..{last:<3} {count:>2} x {source:<6}  {cart}")

        # Every approval is on record: the interrupt the checkout node raised and the human's answer.
        approvals: dict[str, dict] = {}  # checkpoint id -> what was asked and answered there
        for d in writes:
            for channel, _, typed in d["writes"]:
                value = saver.serde.loads_typed(typed)
                if channel == "__interrupt__":  # the Interrupt raised by the checkout node
                    approvals.setdefault(d["checkpoint_id"], {})["asked"] = value[0].value
                elif channel == "__resume__" and isinstance(value, dict):  # Command(resume=...)'s value
                    approvals.setdefault(d["checkpoint_id"], {})["answered"] = value
        print("   approvals found in the writes steps:")
        for checkpoint_id, approval in approvals.items():
            print(f"     checkpoint {short(checkpoint_id)}: asked {approval.get('asked')}")
            print(f"     {'':<20}answered {approval.get('answered')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="SQLite file of the embedded session store (default: a temporary file)")
    args = parser.parse_args()
    if args.db and os.path.exists(args.db):  # the story (and its output) starts from an empty store
        parser.error(f"{args.db} exists: pass a new file")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or os.path.join(tmp, "shoe-sessions.db")
        print(f"embedded session store: {path}")
        saver = make_checkpointer(path)
        with saver.sessions:  # closes the store at the end (before the temporary folder goes)
            run(build_graph(saver), saver)
            audit(saver)


if __name__ == "__main__":
    main()
