"""The chat stores: LlamaIndex's ``AsyncDBChatStore`` and ``BaseChatStore`` over a key's message log (the engine:
``src/llama/chat.rs``). Messages cross to the core as the JSON of ``model_dump(mode="json")`` and come back through
``model_validate``; everything else happens there."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from typing import Any, Optional, Union

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.storage.chat_store.base import BaseChatStore
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus

from .. import _core, _doors
from .._telemetry import traced
from ..client import SessionClient
from ._common import DEFAULT_MAX_STEP_BYTES, native_of, split_options

_ACTIVE = MessageStatus.ACTIVE.value


def _encode(messages: Sequence[ChatMessage]) -> list[str]:
    out = []
    for m in messages:
        if not isinstance(m, ChatMessage):
            raise TypeError(f"expected a ChatMessage, got {type(m).__name__}")
        out.append(m.model_dump_json())
    return out


def _message(item: tuple[int, str, str]) -> ChatMessage:
    """A fresh ChatMessage (nothing shared with the cache: callers may change what they get)."""
    return ChatMessage.model_validate(json.loads(item[2]))


def _messages(items: Optional[list[tuple[int, str, str]]]) -> list[ChatMessage]:
    return [_message(i) for i in items or []]


def _one(item: Optional[tuple[int, str, str]]) -> Optional[ChatMessage]:
    return None if item is None else _message(item)


def _on_key(self: Any, key: str | None = None, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The attributes of a method's span (``bedrock_sessions._telemetry``)."""
    return {"key": key, "namespace": self.namespace}


def _status_value(status: Optional[MessageStatus]) -> str | None:
    return None if status is None else MessageStatus(status).value


class _StoreMixin:
    """Construction and helpers shared by the two chat stores."""

    def __init__(self, client: Any = None, *, clock: Any = None, **data: Any) -> None:
        super().__init__(**data)  # the pydantic model of the LlamaIndex base: the options
        self._open(client, clock)

    @classmethod
    def class_name(cls) -> str:
        return cls.__name__

    def _open(self, client: Any, clock: Any) -> None:
        s: Any = self
        if client is None:
            if s.local_path is None:
                raise TypeError("a client is required: a SessionClient/AsyncSessionClient, or use .local(path)")
            client = SessionClient.local(s.local_path)
        native = native_of(client)
        s._native_client = native
        s._door = _doors.door_of(native)
        s._log = _core.NativeChatLog(
            native,
            s.namespace,
            max_staleness=s.max_staleness,
            snapshot_every=s.snapshot_every,
            max_steps_per_session=s.max_steps_per_session,
            max_step_bytes=s.max_step_bytes,
            idle_timeout=s.idle_timeout,
            clock=clock,
        )

    async def _run(self, read: bool, method: Any, *args: Any, **kwargs: Any) -> Any:
        """An async call of the log through the door of its backend (see ``_doors``): in the calling coroutine
        on a store in memory and for reads of a file, on a store thread for writes to a file, the core's own future
        over the network."""
        fn = functools.partial(method, **kwargs) if kwargs else method
        return await _doors.run(self._door, read, fn, *args)  # type: ignore[attr-defined]

    @classmethod
    def local(cls, path: Union[str, os.PathLike[str]], **kwargs: Any) -> Any:
        """On the embedded store in the SQLite file at ``path`` (created if missing). Options of
        ``SessionClient.local`` and of the store; ``idle_timeout``, ``max_steps_per_session``, ``max_step_bytes``
        and ``clock`` go to both."""
        client_opts, store_opts = split_options(kwargs)
        return cls(SessionClient.local(path, **client_opts), local_path=os.fspath(path), **store_opts)  # type: ignore[call-arg]

    @classmethod
    def memory(cls, **kwargs: Any) -> Any:
        """On an embedded store in this process's memory (same options as :meth:`local`)."""
        client_opts, store_opts = split_options(kwargs)
        return cls(SessionClient.memory(**client_opts), **store_opts)  # type: ignore[call-arg]

    @classmethod
    def bedrock(cls, **kwargs: Any) -> Any:
        """On Amazon Bedrock: ``SessionClient.bedrock`` arguments (``thread_index="dynamodb:<table>"`` or an index
        session id, for arbitrary keys) and the store's options."""
        names = {"namespace", "max_staleness", "snapshot_every", "max_steps_per_session", "max_step_bytes",
                 "idle_timeout", "clock"}
        store_opts = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
        return cls(SessionClient.bedrock(**kwargs), **store_opts)  # type: ignore[call-arg]

    @property
    def session_client(self) -> SessionClient:
        """The session API over the same store (auditing)."""
        return SessionClient(self._native_client)  # type: ignore[attr-defined]

    @traced(_on_key)
    def session_of(self, key: str) -> str | None:
        """The session that holds the key's messages now (None if the key has none)."""
        return self._log.session_of(key)  # type: ignore[attr-defined,no-any-return]

    def forget_cache(self, key: str | None = None) -> None:
        """Drops what this process has cached (of one key, or all): the next access reads the store."""
        self._log.forget(key)  # type: ignore[attr-defined]


class SessionDBChatStore(_StoreMixin, AsyncDBChatStore):
    """An ``AsyncDBChatStore`` — the store of ``llama_index.core.memory.Memory`` — over Bedrock sessions or the
    embedded store: ``Memory.from_defaults(session_id=key, chat_store=SessionDBChatStore(client))``.

    ``client``: a :class:`~bedrock_sessions.SessionClient` or :class:`~bedrock_sessions.AsyncSessionClient` of any
    backend; or :meth:`local` / :meth:`memory` / :meth:`bedrock`. A key is a session (see docs/llama-index.md).
    Message ids (``delete_message``) are per key: 1, 2, 3… in the order messages were added, never reused
    (:meth:`get_entries` shows them).

    Options: ``namespace`` (keys of two namespaces never meet); ``max_staleness`` (seconds a read may use this
    process's cached log without asking the store: 0, the default, confirms every read with one ListInvocationSteps;
    1.0 makes a Memory chat turn two requests; ``float("inf")`` for a single writer per key); ``snapshot_every`` (a
    full state every N steps: a cold read fetches about N steps); ``max_steps_per_session``, ``max_step_bytes``,
    ``idle_timeout`` (the store's quotas, planned around); ``clock`` (the store's ManualClock, in tests).
    """

    namespace: str = Field(default="default", description="Keys of different namespaces never meet.")
    max_staleness: float = Field(default=0.0, ge=0.0, description="Seconds a read may trust this process's cache.")
    snapshot_every: int = Field(default=16, ge=1, description="A full state every N steps.")
    max_steps_per_session: int = Field(default=1000, ge=4, description="The store's step quota per session.")
    max_step_bytes: int = Field(default=DEFAULT_MAX_STEP_BYTES, ge=65536, description="The store's bytes per step.")
    idle_timeout: float = Field(default=3600.0, gt=0, description="The store's idle timeout, seconds.")
    local_path: Optional[str] = Field(default=None, description="The embedded store's file (from .local()).")

    _log: Any = PrivateAttr()
    _native_client: Any = PrivateAttr()
    _door: Any = PrivateAttr()

    @traced(_on_key)
    async def get_messages(
        self,
        key: str,
        status: Optional[MessageStatus] = MessageStatus.ACTIVE,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> list[ChatMessage]:
        return _messages(await self._run(True, self._log.read, key, _status_value(status), offset, limit))

    @traced(_on_key)
    async def get_entries(
        self, key: str, status: Optional[MessageStatus] = None
    ) -> list[tuple[int, MessageStatus, ChatMessage]]:
        """The key's messages with their ids and statuses, oldest first."""
        items = await self._run(True, self._log.read, key, _status_value(status))
        return [(i[0], MessageStatus(i[1]), _message(i)) for i in items]

    @traced(_on_key)
    async def count_messages(self, key: str, status: Optional[MessageStatus] = MessageStatus.ACTIVE) -> int:
        return await self._run(True, self._log.count, key, _status_value(status))  # type: ignore[no-any-return]

    @traced(_on_key)
    async def add_message(self, key: str, message: ChatMessage, status: MessageStatus = MessageStatus.ACTIVE) -> None:
        await self._run(False, self._log.add, key, _encode([message]), MessageStatus(status).value)

    @traced(_on_key)
    async def add_messages(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        await self._run(False, self._log.add, key, _encode(messages), MessageStatus(status).value)

    @traced(_on_key)
    async def set_messages(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        await self._run(False, self._log.set, key, _encode(messages), MessageStatus(status).value)

    @traced(_on_key)
    async def delete_message(self, key: str, idx: int) -> Optional[ChatMessage]:
        return _one(await self._run(False, self._log.remove, key, id=idx, one=True))

    @traced(_on_key)
    async def delete_messages(self, key: str, status: Optional[MessageStatus] = None) -> None:
        want = _status_value(status)
        if want is None:
            await self._run(False, self._log.clear, key)
        else:
            await self._run(False, self._log.remove, key, status=want)

    @traced(_on_key)
    async def delete_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        return _messages(await self._run(False, self._log.remove, key, oldest=n))

    @traced(_on_key)
    async def archive_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        return _messages(await self._run(False, self._log.archive, key, n))

    @traced(_on_key)
    async def get_keys(self) -> list[str]:
        return await self._run(True, self._log.keys, False)  # type: ignore[no-any-return]


class SessionChatStore(_StoreMixin, BaseChatStore):
    """A ``BaseChatStore`` — for ``ChatMemoryBuffer`` and the chat engines — over Bedrock sessions or the embedded
    store, with real sync and async methods. Same storage as :class:`SessionDBChatStore`: a key's messages are all its
    messages, whatever their status. ``delete_message(key, idx)`` takes a list position (negative counts from the
    end; out of range: None); ``add_message(key, message, idx=None)`` inserts at ``idx`` when given. A key exists
    from its first ``set_messages`` or ``add_message`` until ``delete_messages``. Options as
    :class:`SessionDBChatStore`.
    """

    namespace: str = Field(default="default")
    max_staleness: float = Field(default=0.0, ge=0.0)
    snapshot_every: int = Field(default=16, ge=1)
    max_steps_per_session: int = Field(default=1000, ge=4)
    max_step_bytes: int = Field(default=DEFAULT_MAX_STEP_BYTES, ge=65536)
    idle_timeout: float = Field(default=3600.0, gt=0)
    local_path: Optional[str] = Field(default=None)

    _log: Any = PrivateAttr()
    _native_client: Any = PrivateAttr()
    _door: Any = PrivateAttr()

    # ------------------------------------------------------------------ sync
    @traced(_on_key)
    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        self._log.set(key, _encode(messages), _ACTIVE)

    @traced(_on_key)
    def get_messages(self, key: str) -> list[ChatMessage]:
        return _messages(self._log.read(key))

    @traced(_on_key)
    def add_message(self, key: str, message: ChatMessage, idx: Optional[int] = None) -> None:
        self._log.add(key, _encode([message]), _ACTIVE, idx)

    @traced(_on_key)
    def delete_messages(self, key: str) -> Optional[list[ChatMessage]]:
        items = self._log.clear(key)
        return None if items is None else _messages(items)

    @traced(_on_key)
    def delete_message(self, key: str, idx: int) -> Optional[ChatMessage]:
        return _one(self._log.remove(key, position=idx, one=True))

    @traced(_on_key)
    def delete_last_message(self, key: str) -> Optional[ChatMessage]:
        return _one(self._log.remove(key, position=-1, one=True))

    @traced(_on_key)
    def get_keys(self) -> list[str]:
        return self._log.keys(True)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ async
    @traced(_on_key)
    async def aset_messages(self, key: str, messages: list[ChatMessage]) -> None:
        await self._run(False, self._log.set, key, _encode(messages), _ACTIVE)

    @traced(_on_key)
    async def aget_messages(self, key: str) -> list[ChatMessage]:
        return _messages(await self._run(True, self._log.read, key))

    @traced(_on_key)
    async def async_add_message(self, key: str, message: ChatMessage, idx: Optional[int] = None) -> None:
        await self._run(False, self._log.add, key, _encode([message]), _ACTIVE, idx)

    @traced(_on_key)
    async def adelete_messages(self, key: str) -> Optional[list[ChatMessage]]:
        items = await self._run(False, self._log.clear, key)
        return None if items is None else _messages(items)

    @traced(_on_key)
    async def adelete_message(self, key: str, idx: int) -> Optional[ChatMessage]:
        return _one(await self._run(False, self._log.remove, key, position=idx, one=True))

    @traced(_on_key)
    async def adelete_last_message(self, key: str) -> Optional[ChatMessage]:
        return _one(await self._run(False, self._log.remove, key, position=-1, one=True))

    @traced(_on_key)
    async def aget_keys(self) -> list[str]:
        return await self._run(True, self._log.keys, True)  # type: ignore[no-any-return]
