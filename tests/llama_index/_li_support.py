"""Shared helpers of the LlamaIndex suite: backends, message builders, normalisation, the reference stores."""

from __future__ import annotations

import base64
import contextlib
import os
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

from llama_index.core.base.llms.types import (
    AudioBlock,
    ChatMessage,
    DocumentBlock,
    ImageBlock,
    TextBlock,
    ToolCallBlock,
)

from bedrock_sessions import AsyncSessionClient, SessionClient
from bedrock_sessions.server import LocalServer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def png(seed: int = 0, size: int = 2) -> bytes:
    """A small valid PNG (distinct per seed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes([(seed * 7 + x * 13 + y) % 256 for x in range(size * 3)]) for y in range(size))
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + bytes(range(64)) + b"\xff\xd9"


def msg(text: str, role: str = "user", **kwargs: Any) -> ChatMessage:
    return ChatMessage(role=role, content=text, **kwargs)


def rich_messages() -> list[ChatMessage]:
    """Messages with every kind of block LlamaIndex has, and awkward content."""
    return [
        ChatMessage(role="system", content="You are a shoe assistant. Ünïcödé ✓ 日本語"),
        ChatMessage(role="user", blocks=[TextBlock(text="this one?"), ImageBlock(image=png(1), image_mimetype="image/png")]),
        ChatMessage(role="user", blocks=[ImageBlock(image=png(2)), ImageBlock(image=JPEG), TextBlock(text="two photos")]),
        ChatMessage(role="user", blocks=[ImageBlock(image=b"not an image at all", image_mimetype="image/bmp")]),
        ChatMessage(role="user", blocks=[ImageBlock(url="https://example.com/shoe.png")]),
        ChatMessage(
            role="assistant",
            blocks=[ToolCallBlock(tool_call_id="call-1", tool_name="search", tool_kwargs={"size": 42, "q": "trail"})],
            additional_kwargs={"tool_calls": [{"id": "call-1", "type": "function"}], "n": 1.5, "flag": None},
        ),
        ChatMessage(role="tool", content='{"results": ["Ridge Runner"]}', additional_kwargs={"tool_call_id": "call-1"}),
        ChatMessage(role="user", blocks=[AudioBlock(audio=b"RIFF....WAVEfmt ", format="wav")]),
        ChatMessage(role="user", blocks=[DocumentBlock(data=b"%PDF-1.4 tiny", document_mimetype="application/pdf")]),
        ChatMessage(role="assistant", content=""),
        ChatMessage(role="assistant", content="line1\nline2\t\"quoted\" \\ backslash \u2028 \U0001f45f"),
    ]


def dump(messages: Any) -> Any:
    """Comparable form of results: messages as their JSON dumps, recursively."""
    if isinstance(messages, ChatMessage):
        return messages.model_dump(mode="json")
    if isinstance(messages, (list, tuple)):
        return [dump(m) for m in messages]
    return messages


def text_of(m: ChatMessage) -> str:
    return "".join(b.text for b in m.blocks if isinstance(b, TextBlock))


class Backend:
    """One backing store, opened by ``kind``; ``client()`` gives a client of it (a new one each call where the
    backend allows it: a new client is another "process" of the same store)."""

    def __init__(self, kind: str, where: Path, stack: contextlib.ExitStack, **options: Any) -> None:
        self.kind = kind
        self.options = options
        self.server: LocalServer | None = None
        where.mkdir(parents=True, exist_ok=True)
        self.path = str(where / "store.db")
        if kind == "memory":
            self._shared = SessionClient.memory(**options)
        elif kind == "file":
            self._shared = SessionClient.local(self.path, **options)
        elif kind == "bedrock":
            # The server keeps its store in memory (faster); SessionClient.bedrock() reaches it over HTTP.
            self.server = stack.enter_context(LocalServer(SessionClient.memory(**options)))
            self.index = self.server.client.create_session(sessionMetadata={"purpose": "thread index"})["sessionId"]
            self._shared = self.client()
        else:
            raise ValueError(kind)

    def bedrock_args(self, thread_index: bool = True) -> dict[str, Any]:
        assert self.server is not None
        args: dict[str, Any] = dict(
            endpoint_url=self.server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            max_attempts=1,
        )
        if thread_index:
            args["thread_index"] = self.index
        return args

    def client(self) -> SessionClient:
        if self.kind == "memory":
            return self._shared
        if self.kind == "file":
            return SessionClient.local(self.path, **self.options)
        return SessionClient.bedrock(**self.bedrock_args())

    def async_client(self) -> AsyncSessionClient:
        return AsyncSessionClient(self.client()._native)

    @property
    def admin(self) -> SessionClient:
        """A client for inspecting the stored sessions (the server's own store on the bedrock backend)."""
        return self.server.client if self.server is not None else self._shared

    def child_args(self) -> dict[str, Any]:
        """How a subprocess opens this backend."""
        if self.kind == "file":
            return {"kind": "file", "path": self.path}
        if self.kind == "bedrock":
            return {"kind": "bedrock", **self.bedrock_args()}
        raise ValueError("the memory backend lives in one process")


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    env["PYTHONWARNINGS"] = "error"
    return env


PYTHON = sys.executable
