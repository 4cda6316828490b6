"""LangGraph checkpoint saver over Bedrock sessions: a drop-in for langgraph-checkpoint-aws's
``BedrockSessionSaver`` with sync and async methods in one class.

Python serializes user objects with ``self.serde`` (``dumps_typed``/``loads_typed``, so
``EncryptedSerializer`` and msgpack allowlists keep working); the Rust core builds and parses the
stored envelopes, talks to the store with the GIL released, and merges writes.
"""

from __future__ import annotations

import atexit
import base64
import builtins
import json
import os
import random
import sys
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from . import _core, _doors
from ._telemetry import traced
from .client import SessionClient, open_native
from .compat import AsyncBedrockAgentRuntimeSessionClient, BedrockAgentRuntimeSessionClient

__all__ = ["BedrockSessionSaver", "AsyncBedrockSessionSaver", "decode_step"]

# Metadata that JSON cannot carry is kept through serde under this key.
_TYPED_METADATA = "__bedrock_sessions_typed__"
# Metadata is stored as plain JSON. One encoder for every call: json.dumps with options builds a new one each time.
_METADATA_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False)

_AWS_ARGS = (
    "session",
    "region_name",
    "credentials_profile_name",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "endpoint_url",
    "config",
)

Record = tuple[Any, ...]


# The attributes of the methods' spans (bedrock_sessions._telemetry), read from their arguments.
def _config_attributes(config: RunnableConfig | None) -> dict[str, Any]:
    conf = (config or {}).get("configurable") or {}
    return {
        "thread_id": conf.get("thread_id"),
        "checkpoint_ns": conf.get("checkpoint_ns"),
        "checkpoint_id": conf.get("checkpoint_id"),
    }


def _on_config(self: Any, config: RunnableConfig, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return _config_attributes(config)


def _on_list(self: Any, config: RunnableConfig | None, *, before: RunnableConfig | None = None,
             limit: int | None = None, **kwargs: Any) -> dict[str, Any]:
    attrs = _config_attributes(config)
    attrs["before_checkpoint_id"] = _config_attributes(before)["checkpoint_id"]
    attrs["limit"] = limit
    return attrs


def _on_put(self: Any, config: RunnableConfig, checkpoint: Checkpoint, *args: Any, **kwargs: Any) -> dict[str, Any]:
    attrs = _config_attributes(config)
    attrs["parent_checkpoint_id"] = attrs["checkpoint_id"]
    attrs["checkpoint_id"] = checkpoint["id"]
    return attrs


def _on_writes(self: Any, config: RunnableConfig, writes: Sequence[Any], task_id: str, *args: Any,
               **kwargs: Any) -> dict[str, Any]:
    attrs = _config_attributes(config)
    attrs["task_id"] = task_id
    attrs["writes"] = len(writes)
    return attrs


def _on_thread(self: Any, thread_id: str | None = None, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"thread_id": thread_id}


def _on_runs(self: Any, run_ids: Sequence[str], *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"run_ids": [str(r) for r in run_ids]}


def _on_copy(self: Any, source_thread_id: str, target_thread_id: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"thread_id": source_thread_id, "target_thread_id": target_thread_id}


def _on_prune(self: Any, thread_ids: Sequence[str], *args: Any, strategy: str = "keep_latest",
              **kwargs: Any) -> dict[str, Any]:
    return {"thread_ids": [str(t) for t in thread_ids], "strategy": strategy}


#: A checkpoint as NativeSaver.put takes it: thread id, namespace, checkpoint id, parent id, the serialized
#: checkpoint, the metadata's JSON, the serialized channel values.
_PutArgs = tuple[str, str, str, "str | None", tuple[str, bytes], str, list[tuple[str, tuple[str, bytes]]]]


class BedrockSessionSaver(BaseCheckpointSaver[str]):
    """Stores LangGraph checkpoints in Bedrock sessions (a thread is a session).

    ``BedrockSessionSaver(region_name="us-east-1")`` (the replaced saver's arguments, or ``client=`` a boto3
    client) uses Amazon Bedrock; ``BedrockSessionSaver(client=SessionClient.local("state.db"))`` the embedded
    store, where any thread id string works. A thread id that is a session id or ARN maps to that session, as
    with the replaced saver. Every method has its async twin (``aget_tuple``, ``alist``...).

    ``saver.sessions`` is our boto3-shaped :class:`~bedrock_sessions.SessionClient` over the saver's store;
    ``saver.session_client`` is the replaced saver's session client (see :mod:`bedrock_sessions.compat`).
    """

    # The flavour of ``session_client``: the replaced sync saver's (AsyncBedrockSessionSaver: its async saver's).
    _session_client_class: type[Any] = BedrockAgentRuntimeSessionClient

    def __init__(
        self,
        client: Any = None,
        session: Any = None,
        region_name: str | None = None,
        credentials_profile_name: str | None = None,
        aws_access_key_id: Any = None,
        aws_secret_access_key: Any = None,
        aws_session_token: Any = None,
        endpoint_url: str | None = None,
        config: Any = None,
        *,
        serde: SerializerProtocol | None = None,
        deferred: bool = False,
        thread_index: str | None = None,
        dynamodb_endpoint_url: str | None = None,
    ) -> None:
        """``thread_index`` (on Amazon Bedrock: ``"dynamodb:<table>"``, a table ARN, or an index session id) lets any
        string be a thread id (docs/saver.md, "The thread index"); ``dynamodb_endpoint_url`` for a DynamoDB emulator.

        ``deferred=True`` (opt-in) makes ``put``/``put_writes`` return once their data is queued: a
        background task stores it, batching a thread's checkpoints and writes into few steps. Reads in this
        process wait for their thread's queue; interrupts and errors are stored before the call returns;
        ``flush()`` waits for everything, and so does interpreter exit. The trade: a crash loses what was
        still queued (the last round trips' checkpoints and writes), and a failure of a queued write is
        raised by the next call on its thread. The default stores each call's data before it returns."""
        super().__init__(serde=serde)
        given = {
            name: value
            for name, value in zip(
                _AWS_ARGS,
                (session, region_name, credentials_profile_name, aws_access_key_id, aws_secret_access_key,
                 aws_session_token, endpoint_url, config),
            )
            if value is not None
        }
        for name, value in (("thread_index", thread_index), ("dynamodb_endpoint_url", dynamodb_endpoint_url)):
            if value is not None:
                if client is not None:
                    raise ValueError(
                        f"{name}= belongs to the client when one is given: SessionClient.bedrock(..., {name}=...)"
                    )
                given[name] = value
        # A client (ours, or a boto3 client: its region, endpoint and credentials), else the replaced saver's AWS
        # arguments (all optional: the standard credential chain and region).
        self._native_client = open_native(client, **given)
        self._sessions = client if isinstance(client, SessionClient) else SessionClient(self._native_client)
        self._session_client = self._session_client_class(client=self._sessions)
        self._native = _core.NativeSaver(self._native_client, deferred=bool(deferred))
        # How the async methods reach the store (see _acall).
        self._async_door = _doors.door_of(self._native_client)
        self._reads_wait_for_queue = bool(deferred)
        if deferred:
            _DEFERRED.add(self)

    @classmethod
    def local(cls, path: str | os.PathLike[str], *, serde: SerializerProtocol | None = None, deferred: bool = False,
              **options: Any) -> BedrockSessionSaver:
        """A saver on the embedded store in the SQLite file at ``path``."""
        return cls(client=SessionClient.local(path, **options), serde=serde, deferred=deferred)

    @classmethod
    def memory(cls, *, serde: SerializerProtocol | None = None, deferred: bool = False,
               **options: Any) -> BedrockSessionSaver:
        """A saver on an in-memory embedded store (tests)."""
        return cls(client=SessionClient.memory(**options), serde=serde, deferred=deferred)

    @property
    def deferred(self) -> bool:
        """Whether writes return once queued (see the constructor)."""
        return bool(self._native.deferred)

    @traced(_on_thread)
    def flush(self, thread_id: str | None = None) -> None:
        """Waits until the queued writes of ``thread_id`` (of every thread by default) are stored, and raises
        the failure of a queued write if one failed. A no-op unless ``deferred``."""
        self._native.flush(None if thread_id is None else str(thread_id))

    @traced(_on_thread)
    async def aflush(self, thread_id: str | None = None) -> None:
        await self._acall(False, self._native.flush, None if thread_id is None else str(thread_id))

    @property
    def sessions(self) -> SessionClient:
        """The session API over the saver's store, with boto3's method names, arguments and responses (auditing,
        export, creating sessions)."""
        return self._sessions

    @property
    def session_client(self) -> BedrockAgentRuntimeSessionClient:
        """The replaced saver's session client: its request and response models
        (``session_client.create_session().session_id``), and ``.client``, the boto3-shaped client (:attr:`sessions`)."""
        return self._session_client

    # ------------------------------------------------------------------ threads
    @traced()
    def create_thread(self, metadata: dict[str, str] | None = None, tags: dict[str, str] | None = None) -> str:
        """Creates a session for a new thread and returns its id (usable as ``thread_id``)."""
        return self._native.create_thread(metadata, tags)

    @traced()
    async def acreate_thread(self, metadata: dict[str, str] | None = None, tags: dict[str, str] | None = None) -> str:
        return await self._acall(False, self._native.create_thread, metadata, tags)

    @traced(_on_thread)
    def continue_thread(self, thread_id: str) -> str:
        """Carries a thread on in a new session and returns the new thread id (the new session's id); its
        history, every checkpoint before, is read through it. For a thread whose id is a session id that no
        longer accepts writes (EXPIRED after an idle hour, or ENDED) on a store without a thread index; with
        an index (the embedded store, or ``thread_index=``), threads move on by themselves."""
        return self._native.continue_thread(str(thread_id))

    @traced(_on_thread)
    async def acontinue_thread(self, thread_id: str) -> str:
        return await self._acall(False, self._native.continue_thread, str(thread_id))

    # ------------------------------------------------------------------ encoding
    def _put_args(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata
    ) -> tuple[_PutArgs, RunnableConfig]:
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        ns = conf.get("checkpoint_ns", "")
        c = checkpoint.copy()
        values: dict[str, Any] = c.pop("channel_values", {})  # type: ignore[misc]
        dumps = self.serde.dumps_typed
        # Every value is kept, also of a channel without a version (as the replaced saver and SqliteSaver do).
        channel_values = [(k, dumps(v)) for k, v in values.items()]
        md = get_checkpoint_metadata(config, metadata)
        try:
            metadata_json = _METADATA_JSON.encode(md)
        except (TypeError, ValueError):
            tag, data = self.serde.dumps_typed(md)
            metadata_json = json.dumps({_TYPED_METADATA: [tag, base64.b64encode(data).decode()]})
        args: _PutArgs = (thread_id, ns, checkpoint["id"], conf.get("checkpoint_id"), dumps(c), metadata_json,
                          channel_values)
        next_config: RunnableConfig = {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}
        }
        return args, next_config

    def _writes_args(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
    ) -> tuple[Any, ...]:
        conf = config["configurable"]
        encoded = [(c, WRITES_IDX_MAP.get(c, i), self.serde.dumps_typed(v)) for i, (c, v) in enumerate(writes)]
        return (str(conf["thread_id"]), conf.get("checkpoint_ns", ""), conf["checkpoint_id"], task_id, task_path, encoded)

    def _metadata(self, metadata_json: str) -> CheckpointMetadata:
        md = json.loads(metadata_json)
        if isinstance(md, dict) and len(md) == 1 and _TYPED_METADATA in md:
            tag, data = md[_TYPED_METADATA]
            return self.serde.loads_typed((tag, base64.b64decode(data)))
        return md

    def _tuple(self, rec: Record) -> CheckpointTuple:
        # Typed values come from the native module as (type, bytes) tuples, as loads_typed takes them.
        thread_id, ns, cp_id, parent_id, cp_typed, metadata_json, values, writes = rec
        loads = self.serde.loads_typed
        checkpoint = loads(cp_typed)
        if values is not None:
            checkpoint["channel_values"] = {k: loads(v) for k, v in values}
        else:
            # The replaced saver's layout: the checkpoint carries its channel values.
            checkpoint.setdefault("channel_values", {})
        return CheckpointTuple(
            config={"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cp_id}},
            checkpoint=checkpoint,
            metadata=self._metadata(metadata_json),
            parent_config=(
                {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent_id}}
                if parent_id
                else None
            ),
            pending_writes=[(task_id, channel, loads(v)) for task_id, channel, v, _, _ in writes],
        )

    # ------------------------------------------------------------------ sync
    @traced(_on_config)
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        conf = config["configurable"]
        rec = self._native.get_tuple(str(conf["thread_id"]), conf.get("checkpoint_ns", ""), get_checkpoint_id(config))
        return self._tuple(rec) if rec is not None else None

    @traced(_on_list)
    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        listing = _Listing(self, config, filter, before, limit)
        while not listing.done and (batch := listing.cursor.next()):
            yield from listing.take(batch)

    @traced(_on_put)
    def put(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: ChannelVersions
    ) -> RunnableConfig:
        args, next_config = self._put_args(config, checkpoint, metadata)
        self._native.put(*args)
        return next_config

    @traced(_on_writes)
    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self._native.put_writes(*self._writes_args(config, writes, task_id, task_path))

    @traced(_on_put)
    def put_with_writes(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        pending_writes: Sequence[Any],
    ) -> RunnableConfig:
        """Persists a checkpoint and buffered writes in one call, as one step when they fit one (langgraph-checkpoint-aws's
        ``DeferredCheckpointSaver(batch_writes=True)`` uses it)."""
        args, next_config = self._put_args(config, checkpoint, metadata)
        self._native.put_with_writes(*args, self._pending_args(pending_writes))
        return next_config

    def _pending_args(self, pending_writes: Sequence[Any]) -> builtins.list[tuple[Any, ...]]:
        return [self._writes_args(w.config, w.writes, w.task_id, getattr(w, "task_path", "") or "") for w in pending_writes]

    @traced(_on_thread)
    def delete_thread(self, thread_id: str) -> None:
        self._native.delete_thread(str(thread_id))

    @traced(_on_runs)
    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._native.delete_for_runs([str(r) for r in run_ids])

    @traced(_on_copy)
    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._native.copy_thread(str(source_thread_id), str(target_thread_id))

    @traced(_on_prune)
    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._native.prune([str(t) for t in thread_ids], _keep_latest(strategy))

    # ------------------------------------------------------------------ async
    async def _acall(self, read: bool, method: Callable[..., Any], *args: Any) -> Any:
        """Runs a native call for an async method through the door of the store (see ``_doors``). A deferred saver's
        reads first wait for the thread's queued writes (on a file, for the disk): they go as writes do."""
        return await _doors.run(self._async_door, read and not self._reads_wait_for_queue, method, *args)

    @traced(_on_config)
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        conf = config["configurable"]
        rec = await self._acall(
            True, self._native.get_tuple, str(conf["thread_id"]), conf.get("checkpoint_ns", ""), get_checkpoint_id(config)
        )
        return self._tuple(rec) if rec is not None else None

    @traced(_on_list)
    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        listing = _Listing(self, config, filter, before, limit)
        while not listing.done and (batch := await self._acall(True, listing.cursor.next)):
            for tup in listing.take(batch):
                yield tup

    @traced(_on_put)
    async def aput(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: ChannelVersions
    ) -> RunnableConfig:
        args, next_config = self._put_args(config, checkpoint, metadata)
        await self._acall(False, self._native.put, *args)
        return next_config

    @traced(_on_writes)
    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await self._acall(False, self._native.put_writes, *self._writes_args(config, writes, task_id, task_path))

    @traced(_on_put)
    async def aput_with_writes(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        pending_writes: Sequence[Any],
    ) -> RunnableConfig:
        args, next_config = self._put_args(config, checkpoint, metadata)
        await self._acall(False, self._native.put_with_writes, *args, self._pending_args(pending_writes))
        return next_config

    @traced(_on_thread)
    async def adelete_thread(self, thread_id: str) -> None:
        await self._acall(False, self._native.delete_thread, str(thread_id))

    @traced(_on_runs)
    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._acall(False, self._native.delete_for_runs, [str(r) for r in run_ids])

    @traced(_on_copy)
    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._acall(False, self._native.copy_thread, str(source_thread_id), str(target_thread_id))

    @traced(_on_prune)
    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._acall(False, self._native.prune, [str(t) for t in thread_ids], _keep_latest(strategy))

    # ------------------------------------------------------------------ versions
    def get_next_version(self, current: str | int | None, channel: None) -> str | int:  # type: ignore[override]
        """Monotonic versions with a random suffix, so forked branches never share a version.

        A thread started by the replaced saver has integer versions, and LangGraph compares a channel's
        versions with each other: such a thread keeps integers (safe here, since values are stored per
        checkpoint, not per version)."""
        if isinstance(current, int):
            return current + 1
        current_v = 0 if current is None else int(current.split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"


class _Listing:
    """The state of one ``list``/``alist``: the native streaming cursor, then the filters LangGraph asks for
    (a checkpoint id in the config, ``before``, metadata ``filter``) and ``limit``, shared by both doors."""

    def __init__(
        self,
        saver: BedrockSessionSaver,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> None:
        conf = config["configurable"] if config else {}
        thread_id = str(conf["thread_id"]) if conf.get("thread_id") is not None else None
        self.saver = saver
        self.only_id = get_checkpoint_id(config) if config else None
        self.before_id = get_checkpoint_id(before) if before else None
        self.filter = filter
        self.left = limit
        self.cursor = saver._native.list(thread_id, conf.get("checkpoint_ns"), self.before_id)

    @property
    def done(self) -> bool:
        return self.left is not None and self.left <= 0

    def take(self, batch: list[Record]) -> Iterator[CheckpointTuple]:
        for rec in batch:
            if self.done:
                return
            tup = self.saver._tuple(rec)
            cp_id = tup.config["configurable"]["checkpoint_id"]
            if self.only_id and cp_id != self.only_id:
                continue
            if self.before_id and cp_id >= self.before_id:
                continue
            if self.filter and not all(tup.metadata.get(k) == v for k, v in self.filter.items()):
                continue
            if self.left is not None:
                self.left -= 1
            yield tup


def _keep_latest(strategy: str) -> bool:
    if strategy == "keep_latest":
        return True
    if strategy == "delete":
        return False
    raise ValueError(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")


# Deferred savers still alive: their queues are stored before the interpreter exits.
_DEFERRED: weakref.WeakSet[BedrockSessionSaver] = weakref.WeakSet()


@atexit.register
def _flush_deferred() -> None:
    for saver in list(_DEFERRED):
        try:
            saver.flush()
        except Exception as e:  # noqa: BLE001 - reported, the other savers still flush
            print(f"bedrock-sessions: queued checkpoint writes were lost at exit: {e}", file=sys.stderr)


class AsyncBedrockSessionSaver(BedrockSessionSaver):
    """The same saver, every sync and async method included, for code written against the replaced
    ``AsyncBedrockSessionSaver``: its ``session_client`` is the replaced async saver's
    (``await saver.session_client.create_session()``)."""

    _session_client_class = AsyncBedrockAgentRuntimeSessionClient

    @property
    def session_client(self) -> AsyncBedrockAgentRuntimeSessionClient:  # type: ignore[override]
        """The replaced async saver's session client: its methods are coroutines; ``.client`` is the boto3-shaped
        client (:attr:`sessions`)."""
        return self._session_client


def decode_step(payload: dict[str, Any]) -> dict[str, Any] | None:
    """Decodes a stored step (``get_invocation_step(...)["invocationStep"]["payload"]``) of the saver's
    layout, for auditing: typed values stay ``(type, bytes)`` pairs to pass to ``serde.loads_typed``.
    A batch step decodes to ``{"kind": "batch", "records": [...]}``, each record decoded as a step of its own.
    Returns None for steps that are not LangGraph state."""
    texts = [b["text"] for b in payload.get("contentBlocks", []) if "text" in b]
    if not texts:
        return None
    try:
        env = json.loads(_core.unpack_envelope(texts[0]) if len(texts) == 1 else "".join(texts))
    except ValueError:
        return None
    if not isinstance(env, dict):
        return None
    return _decode_envelope(env)


def _decode_envelope(env: dict[str, Any]) -> dict[str, Any] | None:
    def typed(pair: list[str]) -> tuple[str, bytes]:
        return pair[0], base64.b64decode(pair[1])

    if env.get("v") == "bs1" and env.get("kind") == "batch":
        # Several records written as one step (group commit / deferred mode): each decoded as above.
        records = [_decode_envelope(r) for r in env["records"]]
        return {"kind": "batch", "layout": "bs1", "records": [r for r in records if r is not None]}
    if env.get("v") == "bs1" and env.get("kind") == "checkpoint":
        return {
            "kind": "checkpoint",
            "layout": "bs1",
            "thread_id": env["thread_id"],
            "checkpoint_ns": env["checkpoint_ns"],
            "checkpoint_id": env["checkpoint_id"],
            "parent_checkpoint_id": env["parent_checkpoint_id"],
            "metadata": env["metadata"],
            "checkpoint": typed(env["checkpoint"]),
            "channel_values": {k: typed(v) for k, v in env["channel_values"]},
        }
    if env.get("v") == "bs1" and env.get("kind") == "writes":
        return {
            "kind": "writes",
            "layout": "bs1",
            "thread_id": env["thread_id"],
            "checkpoint_ns": env["checkpoint_ns"],
            "checkpoint_id": env["checkpoint_id"],
            "task_id": env["task_id"],
            "task_path": env["task_path"],
            "writes": [(c, idx, typed(v)) for c, idx, v in env["writes"]],
        }
    if env.get("step_type") == "CHECKPOINTS":
        return {
            "kind": "checkpoint",
            "layout": "langgraph-checkpoint-aws",
            "thread_id": env["thread_id"],
            "checkpoint_ns": env["checkpoint_ns"],
            "checkpoint_id": env["checkpoint_id"],
            "parent_checkpoint_id": env.get("parent_checkpoint_id"),
            "metadata": json.loads(base64.b64decode(env["metadata"][1])),
            "checkpoint": typed(env["checkpoint"]),
        }
    return None
