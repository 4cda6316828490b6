"""Entry point of the subprocesses of the cross-process tests: ``python _li_child.py <mode> <json args>``.

Modes: ``phase`` (all of the following in one process: interpreter start-up costs two seconds), ``memory`` (chat turns through a real ``Memory`` over SessionDBChatStore), ``buffer`` (turns through a sync
``SimpleChatEngine`` with a ``ChatMemoryBuffer`` over SessionChatStore), ``workflow-start`` (runs a human-in-the-loop
workflow until it asks, saves it, exits), ``workflow-resume`` (loads it, answers, prints the result). Each prints one
JSON line on stdout.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, CompletionResponse, LLMMetadata
from llama_index.core.llms.custom import CustomLLM
from workflows import Context, Workflow, step
from workflows.events import HumanResponseEvent, InputRequiredEvent, StartEvent, StopEvent

from bedrock_sessions import SessionClient


class RememberingLLM(CustomLLM):
    """A scripted LLM: answers with what the user said so far, as it sees it in its prompt."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata()

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        said = re.findall(r"^user: (.*)$", prompt, re.M)
        return CompletionResponse(text=f"you said {len(said)} things, last: {said[-1] if said else '-'}")

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        raise NotImplementedError


class Ask(InputRequiredEvent):
    question: str


class Answer(HumanResponseEvent):
    answer: str


class ApprovalFlow(Workflow):
    """Prepares an order, asks a human to approve it, then places it (or not)."""

    @step
    async def prepare(self, ctx: Context, ev: StartEvent) -> Ask:
        await ctx.store.set("order", {"item": ev.item, "price": ev.price})
        return Ask(question=f"approve {ev.item} for {ev.price} EUR?")

    @step
    async def place(self, ctx: Context, ev: Answer) -> StopEvent:
        order = await ctx.store.get("order")
        verdict = "placed" if ev.answer == "yes" else "cancelled"
        return StopEvent(result=f"{order['item']} ({order['price']} EUR): {verdict}")


def open_client(spec: dict[str, Any]) -> SessionClient:
    spec = dict(spec)
    kind = spec.pop("kind")
    if kind == "file":
        return SessionClient.local(spec["path"])
    return SessionClient.bedrock(**spec)


def dump_entries(entries: list[tuple[int, Any, ChatMessage]]) -> list[list[Any]]:
    return [[i, st.value, m.role.value, m.content] for i, st, m in entries]


async def memory_mode(a: dict[str, Any]) -> Any:
    from llama_index.core.chat_engine import SimpleChatEngine
    from llama_index.core.memory import Memory

    from bedrock_sessions.llama_index import SessionDBChatStore

    store = SessionDBChatStore(open_client(a["backend"]))
    mem = Memory.from_defaults(session_id=a["key"], chat_store=store, token_limit=a["token_limit"], token_flush_size=20)
    before = dump_entries(await store.get_entries(a["key"]))
    engine = SimpleChatEngine.from_defaults(llm=RememberingLLM(), memory=mem)
    replies = [str(await engine.achat(text)) for text in a["say"]]
    return {"before": before, "replies": replies, "after": dump_entries(await store.get_entries(a["key"]))}


def buffer_mode(a: dict[str, Any]) -> Any:
    from llama_index.core.chat_engine import SimpleChatEngine
    from llama_index.core.memory import ChatMemoryBuffer

    from bedrock_sessions.llama_index import SessionChatStore

    store = SessionChatStore(open_client(a["backend"]))
    before = [m.content for m in store.get_messages(a["key"])]
    mem = ChatMemoryBuffer.from_defaults(chat_store=store, chat_store_key=a["key"], token_limit=a["token_limit"])
    engine = SimpleChatEngine.from_defaults(llm=RememberingLLM(), memory=mem)
    replies = [str(engine.chat(text)) for text in a["say"]]
    return {"before": before, "replies": replies, "after": [m.content for m in store.get_messages(a["key"])]}


async def workflow_start(a: dict[str, Any]) -> Any:
    from bedrock_sessions.llama_index import SessionWorkflowStore

    store = SessionWorkflowStore(open_client(a["backend"]))
    wf = ApprovalFlow(timeout=30)
    handler = wf.run(item=a["item"], price=a["price"])
    question = None
    async for ev in handler.stream_events():
        if isinstance(ev, Ask):
            question = ev.question
            await store.asave(a["key"], a["run"], handler.ctx)
            break
    await handler.cancel_run()
    return {"question": question}


async def workflow_resume(a: dict[str, Any]) -> Any:
    from bedrock_sessions.llama_index import SessionWorkflowStore

    store = SessionWorkflowStore(open_client(a["backend"]))
    wf = ApprovalFlow(timeout=30)
    ctx = await store.aload(a["key"], a["run"], wf)
    handler = wf.run(ctx=ctx)
    handler.ctx.send_event(Answer(answer=a["answer"]))
    return {"result": await handler}


async def phase(a: dict[str, Any]) -> Any:
    """One process's share of the cross-process tests: chat turns through Memory and through ChatMemoryBuffer, then
    the workflow runs (started in phase 1, resumed in phase 2)."""
    out: dict[str, Any] = {"memory": await memory_mode({**a["memory"], "backend": a["backend"]})}
    out["buffer"] = await asyncio.to_thread(buffer_mode, {**a["buffer"], "backend": a["backend"]})
    runs = []
    for run in a["runs"]:
        if "answer" in run:
            runs.append(await workflow_resume({**run, "backend": a["backend"]}))
        else:
            runs.append(await workflow_start({**run, "backend": a["backend"]}))
    out["runs"] = runs
    return out


def main() -> None:
    mode, args = sys.argv[1], json.loads(sys.argv[2])
    if mode == "phase":
        out = asyncio.run(phase(args))
    elif mode == "memory":
        out = asyncio.run(memory_mode(args))
    elif mode == "buffer":
        out = buffer_mode(args)
    elif mode == "workflow-start":
        out = asyncio.run(workflow_start(args))
    elif mode == "workflow-resume":
        out = asyncio.run(workflow_resume(args))
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
