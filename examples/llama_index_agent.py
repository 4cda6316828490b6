"""A LlamaIndex agent whose memory survives a process restart, kept in the embedded store (no AWS, no network).

The agent is a real ``FunctionAgent`` with a tool; its LLM is scripted (it answers from what it finds in the
conversation it is given), so it runs offline. Its ``Memory`` lives in ``SessionDBChatStore``: each user's messages are
a session of the store, so a new process picks the conversation up where the last one left it.

    python examples/llama_index_agent.py                     # two processes in turn; the second one remembers
    python examples/llama_index_agent.py --db agent.db --say "Hi, my name is Ana"
    python examples/llama_index_agent.py --db agent.db --say "What is my name?"    # a new process: it remembers

Against Amazon Bedrock, only the store changes: ``SessionDBChatStore.bedrock(region_name=..., thread_index=...)``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.memory import Memory

from bedrock_sessions.llama_index import SessionDBChatStore

STOCK = {("ridge runner", 42): 3, ("ridge runner", 43): 0, ("summit pro", 42): 1}


def check_stock(model: str, size: int) -> str:
    """How many pairs of a shoe model are in stock in a size."""
    n = STOCK.get((model.lower(), int(size)), 0)
    return f"{n} pair(s) of the {model} in size {size} in stock"


def scripted_llm(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
    """Stands in for a model: reads the conversation it is given (memory included) and answers."""
    last = messages[-1]
    text = last.content or ""
    if last.role == "tool":
        return ChatMessage(role="assistant", content=f"Good news: {text}.")
    if m := re.search(r"my name is (\w+)", text, re.I):
        return ChatMessage(role="assistant", content=f"Nice to meet you, {m.group(1)}!")
    if m := re.search(r"have the (.+?) in size (\d+)", text, re.I):
        call = ToolCallBlock(tool_call_id=f"call-{len(messages)}", tool_name="check_stock",
                             tool_kwargs={"model": m.group(1), "size": int(m.group(2))})
        return ChatMessage(role="assistant", blocks=[call])
    if "what is my name" in text.lower():
        said = " ".join(msg.content or "" for msg in messages if msg.role == "user")
        names = re.findall(r"my name is (\w+)", said, re.I)
        shoes = re.findall(r"have the (.+?) in size (\d+)", said, re.I)
        answer = f"You are {names[-1]}." if names else "You have not told me."
        if shoes:
            answer += f" You asked about the {shoes[-1][0]} in size {shoes[-1][1]}."
        return ChatMessage(role="assistant", content=answer)
    return ChatMessage(role="assistant", content="I can check shoe stock: ask me about a model and a size.")


async def one_turn(db: str, user: str, say: str) -> str:
    store = SessionDBChatStore.local(db)
    memory = Memory.from_defaults(session_id=user, chat_store=store, token_limit=4000)
    agent = FunctionAgent(
        llm=MockFunctionCallingLLM(response_generator=scripted_llm),
        tools=[check_stock],
        system_prompt="You are the shoe shop's assistant.",
    )
    response = await agent.run(say, memory=memory)
    remembered = await store.count_messages(user, status=None)
    print(f"[process {os.getpid()}] you: {say}")
    print(f"[process {os.getpid()}] agent: {response}")
    print(f"[process {os.getpid()}] ({remembered} messages in the memory of {user!r}, session {store.session_of(user)})")
    return str(response)


def demo() -> None:
    """Three processes in turn on one store file: the last one answers from what the first two were told."""
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "agent.db")
        for say in ("Hi, my name is Ana", "Do you have the Ridge Runner in size 42?", "What is my name?"):
            subprocess.run([sys.executable, __file__, "--db", db, "--say", say], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="the embedded store's file (created if missing)")
    parser.add_argument("--user", default="ana", help="whose conversation (the memory's session id)")
    parser.add_argument("--say", help="one message to the agent; without it, a demo runs three processes")
    args = parser.parse_args()
    if args.say is None:
        demo()
        return
    if args.db is None:
        parser.error("--say needs --db")
    asyncio.run(one_turn(args.db, args.user, args.say))


if __name__ == "__main__":
    main()
