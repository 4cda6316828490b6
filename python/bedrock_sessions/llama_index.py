"""LlamaIndex memory over Bedrock sessions (or the embedded store with the same model).

* :class:`SessionDBChatStore` — an ``AsyncDBChatStore`` for ``llama_index.core.memory.Memory``
  (``Memory.from_defaults(session_id=key, chat_store=store)``): ACTIVE/ARCHIVED status, ids, FIFO operations.
* :class:`SessionChatStore` — a ``BaseChatStore`` for ``ChatMemoryBuffer`` and the chat engines (sync and async).
* :class:`SessionWorkflowStore` — saves and restores a paused workflow's ``Context`` per key and run.

A key maps to a session as a LangGraph thread does (the thread index; a session id or ARN maps to itself). A key's
messages are an append-only log of events (a state, or a delta: add / delete / archive) in one invocation of its
session, replayed on read, with a full state every ``snapshot_every`` steps; images travel as image content blocks of
the steps. Step ids are derived from a sequence number, so a write that raced another process's write is refused by the
store (optimistic concurrency) and retried on the fresh log. When a session can take no more steps (the 1000-step
quota, or EXPIRED after an idle hour, or ENDED) the key moves on to a new session (a "generation") that starts with
the full state. Layout, costs and choices: docs/llama-index.md.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import json
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Optional, Union

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.storage.chat_store.base import BaseChatStore
from llama_index.core.storage.chat_store.base_db import AsyncDBChatStore, MessageStatus

from . import _core, _doors
from .client import AsyncSessionClient, SessionClient
from .exceptions import (
    BedrockSessionsError,
    ConflictException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
    ThrottlingException,
    ValidationException,
)

__all__ = ["SessionChatStore", "SessionDBChatStore", "SessionWorkflowStore", "LAYOUT"]

LAYOUT = "li1"
MAX_IMAGES_PER_STEP = 20
MAX_IMAGE_BYTES = 3_932_160  # 3.75 MB
DEFAULT_MAX_STEP_BYTES = 52_428_800  # 50 MB
_HEADER_RESERVE = 4096  # bytes of a part kept for its header and block overhead
_LIST_PEEK = 8  # maxResults of the listing that confirms a cached log
_GET_BATCH = 16  # concurrent GetInvocationStep calls
_MAX_ATTEMPTS = 32  # write attempts under contention before giving up
_IDLE_MARGIN_MS = 120_000  # clock skew allowance when guessing that a session may have expired
_META_THREAD = "langgraph:thread_id"

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ARN_RE = re.compile(r"^arn:aws(-[a-z-]+)?:bedrock:[a-z0-9-]+:[0-9]{12}:session/[0-9a-f-]{36}$")


def _is_session_identifier(key: str) -> bool:
    return bool(_UUID_RE.match(key) or _ARN_RE.match(key))


# ====================================================================== requests (sans-IO)
# The engine is written once as generators that yield batches of requests and receive their outcomes (a result,
# or the BedrockSessionsError it raised); a synchronous and an asynchronous driver run them. A batch's requests run
# concurrently.


@dataclass(frozen=True)
class _Call:
    op: str
    params: dict[str, Any]


@dataclass(frozen=True)
class _Resolve:
    thread_id: str
    create: bool


@dataclass(frozen=True)
class _Sleep:
    seconds: float


_Req = Union[_Call, _Resolve, _Sleep]
_Gen = Generator[list[_Req], list[Any], Any]

_pool_lock = threading.Lock()
_pool: concurrent.futures.ThreadPoolExecutor | None = None


def _thread_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="bedrock-sessions-li")
        return _pool


def _forget_pool() -> None:  # a forked child has none of the parent's threads
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


class _Backend:
    """The native client and the thread resolver (the LangGraph saver's, so keys map to sessions as threads do)."""

    def __init__(self, native: _core.NativeClient) -> None:
        self.native = native
        self.saver = _core.NativeSaver(native)
        self.door = _doors.door_of(native)

    def _one_sync(self, req: _Req) -> Any:
        try:
            if isinstance(req, _Call):
                return self.native.call(req.op, req.params)
            if isinstance(req, _Resolve):
                return self.saver.resolve_thread(req.thread_id, req.create)
            time.sleep(req.seconds)
            return None
        except BedrockSessionsError as e:
            return e

    async def _one_async(self, req: _Req) -> Any:
        try:
            if isinstance(req, _Call):
                return await _doors.call(self.native, self.door, req.op, req.params)
            if isinstance(req, _Resolve):
                # Finding a key's session reads; making it writes.
                return await _doors.run(self.door, not req.create, self.saver.resolve_thread, req.thread_id, req.create)
            await asyncio.sleep(req.seconds)
            return None
        except BedrockSessionsError as e:
            return e

    def run(self, gen: _Gen) -> Any:
        sent: list[Any] | None = None
        while True:
            try:
                batch = gen.send(sent)  # type: ignore[arg-type]
            except StopIteration as stop:
                return stop.value
            if len(batch) == 1:
                sent = [self._one_sync(batch[0])]
            else:
                sent = list(_thread_pool().map(self._one_sync, batch))

    async def arun(self, gen: _Gen) -> Any:
        sent: list[Any] | None = None
        while True:
            try:
                batch = gen.send(sent)  # type: ignore[arg-type]
            except StopIteration as stop:
                return stop.value
            if len(batch) == 1:
                sent = [await self._one_async(batch[0])]
            else:
                sent = list(await asyncio.gather(*(self._one_async(r) for r in batch)))


def _gather(gens: Sequence[_Gen]) -> _Gen:
    """Runs generators side by side: each round's batches go out as one batch."""
    results: list[Any] = [None] * len(gens)
    sends: list[Any] = [None] * len(gens)
    active = list(range(len(gens)))
    while active:
        batches: dict[int, list[_Req]] = {}
        for i in list(active):
            try:
                batches[i] = gens[i].send(sends[i])
            except StopIteration as stop:
                results[i] = stop.value
                active.remove(i)
        if not batches:
            break
        flat = [r for b in batches.values() for r in b]
        out = yield flat
        pos = 0
        for i, b in batches.items():
            sends[i] = out[pos : pos + len(b)]
            pos += len(b)
    return results


def _one(result: list[Any]) -> Any:
    """The outcome of a one-request batch; errors other than the ones the caller handles are raised."""
    return result[0]


def _raise(outcome: Any) -> Any:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _with_context(err: BedrockSessionsError, note: str) -> BedrockSessionsError:
    response = dict(err.response)
    response["Error"] = dict(response.get("Error", {}))
    response["Error"]["Message"] = f"{note}: {err.message}"
    out = type(err)(response, err.operation_name)
    out.reason = err.reason
    return out


def _error(cls: type[BedrockSessionsError], message: str, operation: str) -> BedrockSessionsError:
    return cls({"Error": {"Code": cls.__name__, "Message": message}}, operation)


def _invocation_missing(err: ResourceNotFoundException) -> bool:
    """A missing invocation (the session exists) rather than a missing session (typed by the core)."""
    return err.reason == "InvocationNotFound"


# ====================================================================== ids and layout


def _invocation_id(kind: str, ns: str, run: str | None = None) -> str:
    return _core.Li1Ids(kind, ns).invocation_id(run)


class _SeqIds:
    """Step ids of a log: derived from (kind, namespace, seq) only, so two writers of one seq collide (the ids of
    layout li1, computed in Rust: ``src/ids.rs``)."""

    def __init__(self, kind: str, ns: str) -> None:
        self._ids = _core.Li1Ids(kind, ns)

    def step_id(self, seq: int) -> str:
        return self._ids.log_step_id(seq)

    def seq_of(self, step_id: str) -> int | None:
        return self._ids.log_seq_of(step_id)


def _thread_id(kind: str, ns: str, key: str, gen: int) -> str:
    return json.dumps(["llama_index", kind, ns, key, gen], ensure_ascii=False, separators=(",", ":"))


def _parse_thread_id(text: str | None) -> tuple[str, str, str, int] | None:
    if not text or not text.startswith('["llama_index"'):
        return None
    try:
        v = json.loads(text)
    except ValueError:
        return None
    if isinstance(v, list) and len(v) == 5 and all(isinstance(x, str) for x in v[1:4]) and isinstance(v[4], int):
        return v[1], v[2], v[3], v[4]
    return None


def _marker_key(kind: str, ns: str) -> str:
    return _core.Li1Ids(kind, ns).marker_key()


def _dumps(obj: Any) -> bytes:
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: escape them
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")


def _split_utf8(data: bytes, sizes: Callable[[int], int]) -> list[str]:
    """Splits UTF-8 bytes into chunks of at most sizes(i) bytes, never inside a character."""
    out: list[str] = []
    pos = 0
    i = 0
    while pos < len(data):
        cap = max(4, sizes(i))
        end = min(len(data), pos + cap)
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1
        out.append(data[pos:end].decode("utf-8"))
        pos = end
        i += 1
    return out


def _sniff(raw: bytes) -> str | None:
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if raw.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if raw.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if len(raw) >= 12 and raw[0:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "webp"
    return None


def _image_bytes(value: str) -> bytes | None:
    """Raw bytes of a base64 image value when it round-trips exactly (so the stored message is unchanged)."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == value else None


@dataclass
class _Part:
    seq: int
    nonce: str
    p: int
    n: int
    kind: str | None
    text: str
    images: list[tuple[bytes, str]]


def _decode_part(seq: int, step: dict[str, Any]) -> _Part | None:
    blocks = step["invocationStep"]["payload"]["contentBlocks"]
    try:
        head = json.loads(blocks[0]["text"])
        if head.get("li") != LAYOUT:
            return None
        text = ""
        images: list[tuple[bytes, str]] = []
        for b in blocks[1:]:
            if "text" in b:
                text += b["text"]
            elif "image" in b:
                src = b["image"].get("source", {})
                images.append((src.get("bytes", b""), b["image"].get("format", "png")))
        return _Part(seq, str(head["e"]), int(head["p"]), int(head["n"]), head.get("k"), text, images)
    except (KeyError, TypeError, ValueError, IndexError):
        return None


@dataclass
class _Limits:
    max_step_bytes: int = DEFAULT_MAX_STEP_BYTES

    def image_cost(self, raw: bytes) -> int:
        return (len(raw) * 4 + 2) // 3 + 64  # as base64 on the wire, with block overhead


def _pack(
    kind: str,
    body: dict[str, Any],
    images: list[tuple[bytes, str]],
    limits: _Limits,
    place: Callable[[dict[int, tuple[int, int]]], None],
    nonce: str | None = None,
) -> list[dict[str, Any]]:
    """An event as step payloads ("parts"): images first (≤ 20 a part, within the byte budget), then the JSON text
    in the room left. ``place`` receives {image index: (part, k)} and must put the references into ``body``."""
    budget = max(1024, limits.max_step_bytes - _HEADER_RESERVE)
    part_images: list[list[tuple[bytes, str]]] = [[]]
    used: list[int] = [0]
    where: dict[int, tuple[int, int]] = {}
    for i, (raw, fmt) in enumerate(images):
        cost = limits.image_cost(raw)
        if len(part_images[-1]) >= MAX_IMAGES_PER_STEP or (part_images[-1] and used[-1] + cost > budget):
            part_images.append([])
            used.append(0)
        where[i] = (len(part_images) - 1, len(part_images[-1]))
        part_images[-1].append((raw, fmt))
        used[-1] += cost
    place(where)
    data = _dumps(body)
    chunks = _split_utf8(data, lambda i: budget - used[i] if i < len(used) else budget)
    n = max(len(part_images), len(chunks), 1)
    nonce = nonce or uuid.uuid4().hex
    payloads = []
    for p in range(n):
        head: dict[str, Any] = {"li": LAYOUT, "e": nonce, "p": p, "n": n}
        if p == 0:
            head["k"] = kind
        blocks: list[dict[str, Any]] = [{"text": json.dumps(head, separators=(",", ":"))}]
        if p < len(chunks) and chunks[p]:
            blocks.append({"text": chunks[p]})
        for raw, fmt in part_images[p] if p < len(part_images) else []:
            blocks.append({"image": {"format": fmt, "source": {"bytes": raw}}})
        payloads.append({"contentBlocks": blocks})
    return payloads


# ====================================================================== messages


ImageKey = tuple[str, int, int]  # (session id, seq, k-th image of the step)


def _image_blocks(data: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = data.get("blocks")
    if not isinstance(blocks, list):
        return []
    return [b for b in blocks if isinstance(b, dict) and b.get("block_type") == "image"]


def _encode_message(msg: ChatMessage, new_images: list[tuple[bytes, str]]) -> dict[str, Any]:
    """The message as ``model_dump(mode="json")``, its images replaced by placeholders into ``new_images``."""
    if not isinstance(msg, ChatMessage):
        raise TypeError(f"expected a ChatMessage, got {type(msg).__name__}")
    data = msg.model_dump(mode="json")
    for block in _image_blocks(data):
        value = block.get("image")
        if isinstance(value, str):
            raw = _image_bytes(value)
            fmt = _sniff(raw) if raw is not None else None
            if raw is not None and fmt is not None and 0 < len(raw) <= MAX_IMAGE_BYTES:
                block["image"] = {"$bs_new": len(new_images)}
                new_images.append((raw, fmt))
    return data


def _refs(data: dict[str, Any]) -> list[tuple[int, int]]:
    out = []
    for b in _image_blocks(data):
        v = b.get("image")
        if isinstance(v, dict) and "$bs_img" in v:
            out.append((int(v["$bs_img"][0]), int(v["$bs_img"][1])))
    return out


def _fix_placeholders(data: dict[str, Any], first_seq: int, where: dict[int, tuple[int, int]]) -> None:
    for b in _image_blocks(data):
        v = b.get("image")
        if isinstance(v, dict) and "$bs_new" in v:
            part, k = where[int(v["$bs_new"])]
            b["image"] = {"$bs_img": [first_seq + part, k]}


def _copy_json(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy_json(x) for x in v]
    return v


def _decode_message(data: dict[str, Any], home: str | None, images: dict[ImageKey, tuple[bytes, str]]) -> ChatMessage:
    """A fresh ChatMessage (nothing shared with the cache: callers may change what they get)."""
    data = _copy_json(data)
    for b in _image_blocks(data):
        v = b.get("image")
        if isinstance(v, dict) and "$bs_img" in v:
            raw = images[(home or "", int(v["$bs_img"][0]), int(v["$bs_img"][1]))][0]
            b["image"] = base64.b64encode(raw).decode("ascii")
    return ChatMessage.model_validate(data)


# ====================================================================== the replayed state of a key

Entry = tuple[int, str, dict[str, Any]]  # (message id, status, message data)


@dataclass(frozen=True)
class _View:
    entries: tuple[Entry, ...] = ()
    next_id: int = 1
    present: bool = False  # BaseChatStore: the key exists (set_messages(key, []) makes it exist)
    home: str | None = None  # the session the image references of the entries point into

    def refs(self) -> set[ImageKey]:
        return {(self.home or "", s, k) for _, _, d in self.entries for s, k in _refs(d)}


def _apply_ops(view: _View, ops: list[Any]) -> _View:
    entries = list(view.entries)
    next_id, present = view.next_id, view.present
    for op in ops:
        if op[0] == "add":
            new = [(int(e[0]), str(e[1]), e[2]) for e in op[2]]
            if op[1] is None:
                entries.extend(new)
            else:
                p = int(op[1])
                if p < 0:
                    p = max(0, len(entries) + p)
                entries[min(p, len(entries)) : min(p, len(entries))] = new
            if new:
                next_id = max(next_id, max(e[0] for e in new) + 1)
            present = True
        elif op[0] == "del":
            ids = set(op[1])
            entries = [e for e in entries if e[0] not in ids]
        elif op[0] == "arch":
            ids = set(op[1])
            entries = [(e[0], MessageStatus.ARCHIVED.value, e[2]) if e[0] in ids else e for e in entries]
    return _View(tuple(entries), next_id, present, view.home)


def _state_body(key: str, view: _View) -> dict[str, Any]:
    return {
        "k": "state",
        "key": key,
        "next": view.next_id,
        "present": view.present,
        "msgs": [[i, s, d] for i, s, d in view.entries],
    }


def _view_of_state(body: dict[str, Any], home: str) -> _View:
    entries = tuple((int(i), str(s), d) for i, s, d in body.get("msgs", []))
    return _View(entries, int(body.get("next", 1)), bool(body.get("present", bool(entries))), home)


def _messages(st: _Key, entries: Sequence[Entry]) -> list[ChatMessage]:
    return [_decode_message(d, st.view.home, st.images) for _, _, d in entries]


@dataclass
class _Change:
    """What an operation does: the new view, and the delta ops that lead there (None: write the whole state).
    New entries' data dicts are shared by ``view`` and ``ops``: image placeholders are fixed in place."""

    view: _View
    ops: list[Any] | None
    new_images: list[tuple[bytes, str]]


_Op = Callable[["_Key"], tuple[Any, Optional[_Change]]]


@dataclass
class _Key:
    """What this process knows of a key's log (each operation works on a copy, merged back when it succeeds)."""

    key: str
    loaded: bool = False
    gen: int = 0
    sid: str | None = None  # session of the current generation (None: the key has no session)
    user_session: bool = False  # generation 0 is a session the caller named (marked for get_keys)
    inv_ready: bool = False
    seq: int = 0  # newest seq seen in the generation
    applied: int = 0  # seqs up to here are consumed (applied, or part of a broken event)
    parts: dict[int, _Part] = field(default_factory=dict)  # fetched parts of an incomplete tail event
    has_state: bool = False  # a complete state event exists in this generation
    state_end: int = 0  # last seq of the newest complete state event
    base_unknown: bool = False  # the view this generation starts from is not known yet (see _g_catch_up)
    last_time_ms: int = 0
    view: _View = field(default_factory=_View)
    images: dict[ImageKey, tuple[bytes, str]] = field(default_factory=dict)
    confirmed: float = float("-inf")  # time.monotonic() of the last confirmation by the store
    frozen: bool = False  # the generation takes no more writes (expired, ended, full)
    dead: bool = False  # the generation's session was deleted
    moved: bool = False  # a "moved" marker closes the generation

    def copy(self) -> _Key:
        return replace(self, parts=dict(self.parts))

    def reset(self) -> None:
        fresh = _Key(self.key)
        for f in ("gen", "sid", "user_session", "inv_ready", "seq", "applied", "has_state", "state_end",
                  "base_unknown", "last_time_ms", "view", "frozen", "dead", "moved"):
            setattr(self, f, getattr(fresh, f))
        self.parts, self.images = {}, {}


# ====================================================================== generations (shared by the chat log and the
# workflow store): a key's sessions are generation 0 (our thread id, or the session the key names), then 1, 2...,
# each bound in the thread index under its own thread id. Bindings are never removed, so "generation g is bound" is
# monotonic in g.


class _Generations:
    kind = ""

    def __init__(self, native: _core.NativeClient, namespace: str, clock: Any) -> None:
        self.backend = _Backend(native)
        self.ns = namespace
        self.clock = clock

    def now_ms(self) -> int:
        c = self.clock
        if c is None:
            return int(time.time() * 1000)
        if hasattr(c, "now"):
            return int(c.now().timestamp() * 1000)
        return int(c() * 1000)

    def tid(self, key: str, gen: int) -> str:
        return _thread_id(self.kind, self.ns, key, gen)

    def _g_resolve(self, key: str, gen: int, create: bool) -> _Gen:
        """The session of a generation (None when unbound); with ``create``, bound to a new session if unbound."""
        r = _one((yield [_Resolve(self.tid(key, gen), create)]))
        if isinstance(r, BedrockSessionsError):
            if create and isinstance(r, ValidationException):
                raise _with_context(
                    r,
                    f"key {key!r} (generation {gen}) needs a session of its own: on Amazon Bedrock pass "
                    "thread_index=\"dynamodb:<table>\" (or an index session id) to SessionClient.bedrock(), "
                    "or use session ids as keys (then a session that expires or fills up cannot be replaced)",
                )
            raise r
        return r

    def _g_resolve_first(self, key: str) -> _Gen:
        """Generation 0: (session, named by the caller) — our thread id first, else the session the key names."""
        sid = yield from self._g_resolve(key, 0, False)
        if sid is not None:
            return sid, False
        if _is_session_identifier(key):
            sid = _raise(_one((yield [_Resolve(key, False)])))
            # Only the session the key names: not a LangGraph thread that happens to use the same string as its id.
            if sid is not None and sid == key.rsplit("/", 1)[-1]:
                return sid, True
        return None, False

    def _g_newest(self, key: str, gen: int, sid: str) -> _Gen:
        """The newest bound generation (gallop, then bisect), knowing ``gen`` is bound to ``sid``."""
        lo, lo_sid, step = gen, sid, 1
        while True:
            s = yield from self._g_resolve(key, gen + step, False)
            if s is None:
                hi = gen + step
                break
            lo, lo_sid = gen + step, s
            step *= 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            s = yield from self._g_resolve(key, mid, False)
            if s is None:
                hi = mid
            else:
                lo, lo_sid = mid, s
        return lo, lo_sid

    def _g_replace_dead(self, key: str, gen: int, dead_sid: str) -> _Gen:
        """A new session for a generation whose session was deleted: the embedded store forgets a deleted session's
        binding, so the generation is bound again (a cold reader finds it there); an index kept in sessions (Bedrock)
        still points at the deleted one, so the next generation is used. Returns (gen, sid)."""
        self.backend.saver = _core.NativeSaver(self.backend.native)  # the resolver caches bindings: start afresh
        sid = yield from self._g_resolve(key, gen, True)
        if sid != dead_sid:
            return gen, sid
        sid = yield from self._g_resolve(key, gen + 1, True)
        return gen + 1, sid


# ====================================================================== the chat log


class _ChatLog(_Generations):
    """The message logs of one namespace's keys, with this process's cache."""

    kind = "chat"

    def __init__(
        self,
        native: _core.NativeClient,
        namespace: str,
        *,
        max_staleness: float,
        snapshot_every: int,
        max_steps_per_session: int,
        max_step_bytes: int,
        idle_timeout: float,
        clock: Any = None,
    ) -> None:
        super().__init__(native, namespace, clock)
        self.max_staleness = float(max_staleness)
        self.snapshot_every = int(snapshot_every)
        self.max_steps = int(max_steps_per_session)
        self.limits = _Limits(int(max_step_bytes))
        self.idle_ms = int(idle_timeout * 1000)
        self.ids = _SeqIds(self.kind, namespace)
        self.inv = _invocation_id(self.kind, namespace)
        self._cache: dict[str, _Key] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ cache
    def _checkout(self, key: str) -> _Key:
        with self._lock:
            st = self._cache.get(key)
            return st.copy() if st is not None else _Key(key)

    def _commit(self, st: _Key) -> None:
        with self._lock:
            cur = self._cache.get(st.key)
            if cur is None or (st.gen, st.seq, st.confirmed) >= (cur.gen, cur.seq, cur.confirmed):
                self._cache[st.key] = st

    def forget(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._cache.clear()
            else:
                self._cache.pop(key, None)

    def _fresh(self, st: _Key) -> bool:
        return st.loaded and time.monotonic() - st.confirmed <= self.max_staleness

    # ------------------------------------------------------------------ running operations
    def run_read(self, key: str) -> _Key:
        st = self._checkout(key)
        if not self._fresh(st):
            try:
                self.backend.run(self._g_refresh(st))
            except BaseException:
                self.forget(key)
                raise
            self._commit(st)
        return st

    async def arun_read(self, key: str) -> _Key:
        st = self._checkout(key)
        if not self._fresh(st):
            try:
                await self.backend.arun(self._g_refresh(st))
            except BaseException:
                self.forget(key)
                raise
            self._commit(st)
        return st

    def run_write(self, key: str, op: _Op) -> Any:
        st = self._checkout(key)
        try:
            result = self.backend.run(self._g_write(st, op))
        except BaseException:
            self.forget(key)
            raise
        self._commit(st)
        return result

    async def arun_write(self, key: str, op: _Op) -> Any:
        st = self._checkout(key)
        try:
            result = await self.backend.arun(self._g_write(st, op))
        except BaseException:
            self.forget(key)
            raise
        self._commit(st)
        return result

    # ------------------------------------------------------------------ reading
    def _needs_probe(self, st: _Key) -> bool:
        """Whether a newer generation may exist: only after a marker, a failure to write, a deleted session, or an
        idle time after which the session may have expired (and another process moved on)."""
        if st.moved or st.frozen or st.dead:
            return True
        return st.seq > 0 and self.now_ms() - st.last_time_ms >= self.idle_ms - _IDLE_MARGIN_MS

    def _enter_gen(self, st: _Key, gen: int, sid: str, base: _View | None) -> None:
        """Starts reading generation ``gen``; ``base`` is the view it starts from (the previous one's last view),
        None when unknown (a reader that skipped generations: read when needed)."""
        st.gen, st.sid, st.user_session, st.inv_ready = gen, sid, False, False
        st.seq = st.applied = st.state_end = st.last_time_ms = 0
        st.parts = {}
        st.has_state = st.frozen = st.dead = st.moved = False
        st.base_unknown = base is None
        st.view = base if base is not None else _View()

    def _g_refresh(self, st: _Key) -> _Gen:
        """Brings the cached log up to date: the key's newest generation, caught up."""
        if not st.loaded or st.sid is None:
            st.reset()
            sid, user = yield from self._g_resolve_first(st.key)
            if sid is None:
                st.loaded, st.confirmed = True, time.monotonic()
                return
            st.sid, st.user_session = sid, user
        yield from self._g_catch_up(st)
        while self._needs_probe(st):
            sid = yield from self._g_resolve(st.key, st.gen + 1, False)
            if sid is None:
                break
            gen, sid = yield from self._g_newest(st.key, st.gen + 1, sid)
            if gen == st.gen + 1:
                if not st.moved and not st.dead:
                    yield from self._g_catch_up(st)  # the next generation exists: this one is final now
                self._enter_gen(st, gen, sid, st.view)
            else:
                self._enter_gen(st, gen, sid, None)
            yield from self._g_catch_up(st)
        st.loaded, st.confirmed = True, time.monotonic()

    def _g_final_view(self, key: str, gen: int) -> _Gen:
        """The last view of an earlier generation, for a reader that skipped it."""
        tmp = _Key(key)
        if gen == 0:
            sid, _ = yield from self._g_resolve_first(key)
        else:
            sid = yield from self._g_resolve(key, gen, False)
        if sid is None:
            return _View(), {}
        tmp.gen, tmp.sid, tmp.base_unknown = gen, sid, gen > 0
        yield from self._g_catch_up(tmp)
        return tmp.view, tmp.images

    def _g_list(self, st: _Key) -> _Gen:
        """Steps of the generation newer than st.seq, oldest first: [(seq, step time ms)]; None if the session is
        gone. A peek of a few newest steps first (usually all there is to learn), full pages when more is new."""
        assert st.sid is not None
        found: dict[int, int] = {}
        token = None
        limit = _LIST_PEEK if st.seq else 1000
        restarted = limit == 1000
        while True:
            params: dict[str, Any] = {"sessionIdentifier": st.sid, "invocationIdentifier": self.inv, "maxResults": limit}
            if token:
                params["nextToken"] = token
            r = _one((yield [_Call("ListInvocationSteps", params)]))
            if isinstance(r, ResourceNotFoundException):
                if _invocation_missing(r):
                    st.inv_ready = False
                    return []
                return None
            _raise(r)
            st.inv_ready = True
            lowest = None
            for s in r.get("invocationStepSummaries", []):
                seq = self.ids.seq_of(s["invocationStepId"])
                if seq is None:
                    continue
                t = int(s["invocationStepTime"].timestamp() * 1000)
                st.last_time_ms = max(st.last_time_ms, t)
                lowest = seq if lowest is None else min(lowest, seq)
                if seq > st.seq:
                    found[seq] = t
            token = r.get("nextToken")
            if not token or (lowest is not None and lowest <= st.seq + 1):
                break
            if not restarted:
                restarted, token, limit, found = True, None, 1000, {}
        return sorted(found.items())

    def _g_get_parts(self, sid: str, seqs: Sequence[int]) -> _Gen:
        """Fetches steps (concurrently, in batches): {seq: part, or None when absent or not ours}."""
        out: dict[int, _Part | None] = {}
        for i in range(0, len(seqs), _GET_BATCH):
            batch = list(seqs[i : i + _GET_BATCH])
            results = yield [
                _Call(
                    "GetInvocationStep",
                    {"sessionIdentifier": sid, "invocationIdentifier": self.inv, "invocationStepId": self.ids.step_id(s)},
                )
                for s in batch
            ]
            for s, r in zip(batch, results):
                out[s] = None if isinstance(r, ResourceNotFoundException) else _decode_part(s, _raise(r))
        return out

    @staticmethod
    def _complete(parts: dict[int, _Part | None], s: int) -> int | None:
        """The number of parts of the event starting at s when they are all there, else None."""
        head = parts.get(s)
        if head is None or head.p != 0:
            return None
        for j in range(1, head.n):
            q = parts.get(s + j)
            if q is None or q.nonce != head.nonce or q.p != j:
                return None
        return head.n

    def _g_catch_up(self, st: _Key) -> _Gen:
        """Reads the generation's new steps into st. New steps are fetched newest first, and the fetching stops at a
        complete state event (so a cold read costs one listing and about ``snapshot_every`` gets)."""
        assert st.sid is not None
        listed = yield from self._g_list(st)
        if listed is None:  # the session was deleted: its data is gone
            st.dead = True
            st.view = _View(next_id=st.view.next_id)
            st.images = {}
            st.base_unknown = False
            return
        images = dict(st.images)
        parts: dict[int, _Part | None] = dict(st.parts)
        state_at: int | None = None
        hi = st.seq
        if listed:
            new_seqs = [s for s, _ in listed]
            hi = new_seqs[-1]
            todo = list(reversed(new_seqs))
            size = min(_GET_BATCH, self.snapshot_every)  # a full state is within that many newest steps
            while todo:
                batch, todo = todo[:size], todo[size:]
                size = _GET_BATCH
                got = yield from self._g_get_parts(st.sid, batch)
                parts.update(got)
                for s in range(hi, min(batch) - 1, -1):
                    p = parts.get(s)
                    if p is not None and p.p == 0 and p.kind == "state" and self._complete(parts, s) is not None:
                        state_at = s
                        break
                if state_at is not None:
                    break
        view = st.view
        start = st.applied + 1
        if state_at is not None:
            start = state_at
            st.base_unknown = False
        elif st.base_unknown and not st.has_state:
            view, old = yield from self._g_final_view(st.key, st.gen - 1)
            images.update(old)
            st.base_unknown = False
        s = start
        while s <= hi:
            p = parts.get(s)
            if p is None or p.p != 0:
                s += 1  # an orphan part, or a part consumed earlier
                continue
            if s + p.n - 1 > hi:
                break  # an incomplete tail: maybe still being written
            n = self._complete(parts, s)
            if n is None:
                s += 1  # broken: another writer took one of its seqs
                continue
            evt = [parts[s + j] for j in range(n)]
            body = json.loads("".join(q.text for q in evt if q is not None))
            kind = body.get("k")
            if kind == "state":
                view = _view_of_state(body, st.sid)
                st.has_state, st.state_end = True, s + n - 1
            elif kind == "delta" and st.has_state:
                view = _apply_ops(view, body.get("ops", []))
            elif kind == "moved":
                st.moved = True
            for q in evt:
                assert q is not None
                for k, img in enumerate(q.images):
                    images[(st.sid, q.seq, k)] = img
            s += n
            if st.moved:
                s = hi + 1
                break
        st.applied = s - 1
        st.seq = max(st.seq, hi)
        st.parts = {q: v for q, v in parts.items() if v is not None and q > st.applied}
        st.view = view
        # Images of older steps that a state refers to, then drop what no entry uses.
        wanted = view.refs()
        missing = sorted({seq for (sid, seq, k) in wanted if (sid, seq, k) not in images and sid == st.sid})
        if missing:
            got = yield from self._g_get_parts(st.sid, missing)
            for seq, p in got.items():
                for k, img in enumerate(p.images if p is not None else []):
                    images[(st.sid, seq, k)] = img
        st.images = {k: v for k, v in images.items() if k in wanted}

    # ------------------------------------------------------------------ writing
    def _g_ensure_invocation(self, st: _Key) -> _Gen:
        assert st.sid is not None
        params = {"sessionIdentifier": st.sid, "invocationId": self.inv, "description": f"llama-index chat log ({self.ns})"[:200]}
        r = _one((yield [_Call("CreateInvocation", params)]))
        if isinstance(r, ResourceNotFoundException):
            st.dead = True
            return
        if not isinstance(r, BedrockSessionsError) and st.user_session:
            yield from self._g_mark(st.sid, st.key)
        # A conflict means it exists, or that the session is read-only: the put will tell.
        st.inv_ready = True

    def _g_mark(self, sid: str, key: str) -> _Gen:
        """Names the key in the metadata of a session the caller chose, so get_keys finds it (best effort)."""
        value = _thread_id(self.kind, self.ns, key, 0)
        if len(value) > 5000:
            return
        got = _one((yield [_Call("GetSession", {"sessionIdentifier": sid})]))
        if isinstance(got, BedrockSessionsError):
            return
        md = dict(got.get("sessionMetadata") or {})
        md[_marker_key(self.kind, self.ns)] = value
        yield [_Call("UpdateSession", {"sessionIdentifier": sid, "sessionMetadata": md})]

    def _g_put(self, st: _Key, payloads: list[dict[str, Any]], first_seq: int) -> _Gen:
        """Puts an event's parts in order: (None, last seq), or (the error, the seq that failed)."""
        assert st.sid is not None
        t0 = max(self.now_ms(), st.last_time_ms + 1)  # step times grow with seqs: newest first = highest seq first
        for j, payload in enumerate(payloads):
            seq = first_seq + j
            params = {
                "sessionIdentifier": st.sid,
                "invocationIdentifier": self.inv,
                "invocationStepId": self.ids.step_id(seq),
                "invocationStepTime": datetime.fromtimestamp((t0 + j) / 1000, tz=timezone.utc),
                "payload": payload,
            }
            r = _one((yield [_Call("PutInvocationStep", params)]))
            if isinstance(r, BedrockSessionsError):
                return r, seq
        st.last_time_ms = t0 + len(payloads) - 1
        return None, first_seq + len(payloads) - 1

    def _g_after_put_error(self, st: _Key, err: BedrockSessionsError, seq: int) -> _Gen:
        """Why a put failed, into the cache: True when another writer took the seq. Raises what it cannot handle."""
        if isinstance(err, ConflictException):
            known = st.seq
            yield from self._g_catch_up(st)
            if st.seq >= seq or st.seq > known or st.dead:
                return True
            got = _one((yield [_Call("GetSession", {"sessionIdentifier": st.sid})]))
            if isinstance(got, ResourceNotFoundException):
                st.dead = True
                return False
            if _raise(got).get("sessionStatus") != "ACTIVE":
                st.frozen = True  # EXPIRED or ENDED: read-only for good (its log, just read, is final)
                return False
            raise err
        if isinstance(err, ServiceQuotaExceededException):
            yield from self._g_catch_up(st)
            st.frozen = True
            return False
        if isinstance(err, ResourceNotFoundException):
            if _invocation_missing(err):
                st.inv_ready = False
            else:
                st.dead = True
            return False
        raise err

    def _g_advance(self, st: _Key) -> _Gen:
        """Moves the key to a new session: the next generation (or the same one, re-bound, if its session was
        deleted on a store whose index forgets deleted sessions). The current view is final."""
        if st.dead and st.sid is not None:
            gen, sid = yield from self._g_replace_dead(st.key, st.gen, st.sid)
        else:
            gen = st.gen + 1
            sid = yield from self._g_resolve(st.key, gen, True)
        self._enter_gen(st, gen, sid, st.view)
        yield from self._g_catch_up(st)

    def _g_write(self, st: _Key, op: _Op) -> _Gen:
        refreshed = False
        contention = 0
        for _attempt in range(_MAX_ATTEMPTS):
            if contention >= 2:
                yield [_Sleep(random.uniform(0, min(0.5, 0.005 * 2**contention)))]
            if not st.loaded:
                yield from self._g_refresh(st)
                refreshed = True
            if st.sid is None:  # a new key
                sid = yield from self._g_resolve(st.key, 0, True)
                self._enter_gen(st, 0, sid, st.view)
                yield from self._g_catch_up(st)
                continue
            if st.frozen or st.moved or st.dead:
                yield from self._g_advance(st)
                continue
            result, change = op(st)
            if change is None:  # nothing to write: the answer stands if the cache is current
                if refreshed or self._fresh(st):
                    return result
                yield from self._g_refresh(st)
                refreshed = True
                continue
            if not st.inv_ready:
                yield from self._g_ensure_invocation(st)
                if st.dead:
                    continue
            first = st.seq + 1
            as_state = change.ops is None or not st.has_state or first - 1 - st.state_end + 1 >= self.snapshot_every
            view, new_images = change.view, list(change.new_images)
            if as_state and not st.has_state and view.home not in (None, st.sid):
                view, new_images = _rehome(view, st.images, new_images)  # a new session: images go again

            def place(where: dict[int, tuple[int, int]], _first: int = first, _view: _View = view) -> None:
                for e in _view.entries:
                    _fix_placeholders(e[2], _first, where)

            if as_state:
                payloads = _pack("state", _state_body(st.key, view), new_images, self.limits, place)
            else:
                payloads = _pack("delta", {"k": "delta", "ops": change.ops}, new_images, self.limits, place)
            if len(payloads) > self.max_steps - 2:
                raise _error(
                    ValidationException,
                    f"key {st.key!r}: the state needs {len(payloads)} steps, more than a session holds",
                    "PutInvocationStep",
                )
            last = first + len(payloads) - 1
            if last > self.max_steps - 1:
                # No room: close the generation with a marker (the last slot is kept for it), then move on.
                marker = _pack("moved", {"k": "moved", "gen": st.gen + 1}, [], self.limits, lambda w: None)
                err, at = yield from self._g_put(st, marker, first)
                if err is None:
                    st.seq = st.applied = at
                    st.parts, st.moved = {}, True
                elif (yield from self._g_after_put_error(st, err, at)):
                    contention += 1
                continue
            err, at = yield from self._g_put(st, payloads, first)
            if err is not None:
                if (yield from self._g_after_put_error(st, err, at)):
                    contention += 1
                continue
            # Stored: the cache takes the new view, and the images just stored under their references.
            images = dict(st.images)
            for e in view.entries:
                for s, k in _refs(e[2]):
                    if s >= first:
                        blocks = [b["image"] for b in payloads[s - first]["contentBlocks"] if "image" in b]
                        images[(st.sid, s, k)] = (blocks[k]["source"]["bytes"], blocks[k]["format"])
            home = st.sid if (as_state or view.home is None) else view.home
            st.view = _View(view.entries, view.next_id, view.present, home)
            st.images = {k: v for k, v in images.items() if k in st.view.refs()}
            st.seq = st.applied = last
            st.parts = {}
            if as_state:
                st.has_state, st.state_end = True, last
            st.base_unknown = False
            st.loaded, st.confirmed = True, time.monotonic()
            return result
        raise _error(
            ThrottlingException,
            f"key {st.key!r}: gave up after {_MAX_ATTEMPTS} attempts (other writers kept taking the next step)",
            "PutInvocationStep",
        )

    # ------------------------------------------------------------------ keys
    def _g_keys(self) -> _Gen:
        """The keys of this namespace that have a session (found through session metadata), each caught up."""
        ids: list[str] = []
        token = None
        while True:
            params: dict[str, Any] = {"maxResults": 1000}
            if token:
                params["nextToken"] = token
            r = _raise(_one((yield [_Call("ListSessions", params)])))
            ids.extend(s["sessionId"] for s in r.get("sessionSummaries", []))
            token = r.get("nextToken")
            if not token:
                break
        keys: dict[str, None] = {}
        marker = _marker_key(self.kind, self.ns)
        for i in range(0, len(ids), 32):
            results = yield [_Call("GetSession", {"sessionIdentifier": sid}) for sid in ids[i : i + 32]]
            for r in results:
                if isinstance(r, BedrockSessionsError):
                    continue
                md = r.get("sessionMetadata") or {}
                for text in (md.get(_META_THREAD), md.get(marker)):
                    parsed = _parse_thread_id(text)
                    if parsed and parsed[0] == self.kind and parsed[1] == self.ns:
                        keys[parsed[2]] = None
        found = sorted(keys)
        states: list[_Key] = []
        for i in range(0, len(found), 16):
            chunk = [self._checkout(k) for k in found[i : i + 16]]
            yield from _gather([self._g_refresh(st) for st in chunk])
            for st in chunk:
                self._commit(st)
            states.extend(chunk)
        return states


def _rehome(
    view: _View, images: dict[ImageKey, tuple[bytes, str]], new_images: list[tuple[bytes, str]]
) -> tuple[_View, list[tuple[bytes, str]]]:
    """The view with its stored images turned back into new images (for the first state of a new session)."""
    out = list(new_images)
    entries = []
    for i, s, d in view.entries:
        if _refs(d):
            d = dict(d)
            blocks = []
            for b in d["blocks"]:
                v = b.get("image") if isinstance(b, dict) and b.get("block_type") == "image" else None
                if isinstance(v, dict) and "$bs_img" in v:
                    b = dict(b)
                    b["image"] = {"$bs_new": len(out)}
                    out.append(images[(view.home or "", int(v["$bs_img"][0]), int(v["$bs_img"][1]))])
                blocks.append(b)
            d["blocks"] = blocks
        entries.append((i, s, d))
    return _View(tuple(entries), view.next_id, view.present, None), out


# ====================================================================== operations (pure functions of the cached view)


def _new_entries(messages: Sequence[ChatMessage], status: str, next_id: int) -> tuple[list[Entry], list[tuple[bytes, str]]]:
    images: list[tuple[bytes, str]] = []
    return [(next_id + i, status, _encode_message(m, images)) for i, m in enumerate(messages)], images


def _op_add(messages: Sequence[ChatMessage], status: str, pos: int | None = None) -> _Op:
    def op(st: _Key) -> tuple[Any, _Change | None]:
        if not messages:
            return None, None
        entries, images = _new_entries(messages, status, st.view.next_id)
        ops = [["add", pos, [list(e) for e in entries]]]
        return None, _Change(_apply_ops(st.view, ops), ops, images)

    return op


def _op_set(messages: Sequence[ChatMessage], status: str) -> _Op:
    def op(st: _Key) -> tuple[Any, _Change | None]:
        entries, images = _new_entries(messages, status, st.view.next_id)
        return None, _Change(_View(tuple(entries), st.view.next_id + len(entries), True, st.view.home), None, images)

    return op


def _op_remove(select: Callable[[_Key], list[int]], *, returns: str = "list") -> _Op:
    """Deletes the entries ``select`` picks and returns their messages (``returns``: "list", or "one")."""

    def op(st: _Key) -> tuple[Any, _Change | None]:
        ids = set(select(st))
        chosen = [e for e in st.view.entries if e[0] in ids]
        msgs = _messages(st, chosen)
        result: Any = msgs if returns == "list" else (msgs[0] if msgs else None)
        if not chosen:
            return result, None
        ops = [["del", [e[0] for e in chosen]]]
        return result, _Change(_apply_ops(st.view, ops), ops, [])

    return op


def _op_clear() -> _Op:
    """Deletes every message of the key (a state event with none); the key stops existing."""

    def op(st: _Key) -> tuple[Any, _Change | None]:
        if not st.view.entries and not st.view.present:
            return None, None
        msgs = _messages(st, st.view.entries)
        return msgs, _Change(_View((), st.view.next_id, False, st.view.home), None, [])

    return op


def _op_archive(n: int) -> _Op:
    def op(st: _Key) -> tuple[Any, _Change | None]:
        chosen = [e for e in st.view.entries if e[1] == MessageStatus.ACTIVE.value][: max(0, n)]
        msgs = _messages(st, chosen)
        if not chosen:
            return msgs, None
        ops = [["arch", [e[0] for e in chosen]]]
        return msgs, _Change(_apply_ops(st.view, ops), ops, [])

    return op


def _position(idx: int) -> Callable[[_Key], list[int]]:
    def select(st: _Key) -> list[int]:
        n = len(st.view.entries)
        return [st.view.entries[idx][0]] if -n <= idx < n else []

    return select


def _status_value(status: Optional[MessageStatus]) -> str | None:
    return None if status is None else MessageStatus(status).value


def _native_of(client: Any) -> _core.NativeClient:
    if isinstance(client, (SessionClient, AsyncSessionClient)):
        return client._native
    if isinstance(client, _core.NativeClient):
        return client
    raise TypeError(f"client must be a bedrock_sessions SessionClient or AsyncSessionClient (got {type(client).__name__})")


# Options of SessionClient.local()/.memory() that the stores' constructors pass on; the shared ones go to both.
_CLIENT_ONLY = {"region", "account_id", "default_page_size", "busy_timeout", "durability"}
_SHARED = {"idle_timeout", "max_steps_per_session", "max_step_bytes", "clock"}


def _split_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    client = {k: v for k, v in kwargs.items() if k in _CLIENT_ONLY or k in _SHARED}
    store = {k: v for k, v in kwargs.items() if k not in _CLIENT_ONLY}
    return client, store


# ====================================================================== the stores


class _StoreMixin:
    """Construction and helpers shared by the two chat stores."""

    def _open(self, client: Any, clock: Any) -> None:
        s: Any = self
        if client is None:
            if s.local_path is None:
                raise TypeError("a client is required: a SessionClient/AsyncSessionClient, or use .local(path)")
            client = SessionClient.local(s.local_path)
        s._log = _ChatLog(
            _native_of(client),
            s.namespace,
            max_staleness=s.max_staleness,
            snapshot_every=s.snapshot_every,
            max_steps_per_session=s.max_steps_per_session,
            max_step_bytes=s.max_step_bytes,
            idle_timeout=s.idle_timeout,
            clock=clock,
        )

    @classmethod
    def local(cls, path: Union[str, os.PathLike[str]], **kwargs: Any) -> Any:
        """On the embedded store in the SQLite file at ``path`` (created if missing). Options of
        ``SessionClient.local`` and of the store; ``idle_timeout``, ``max_steps_per_session``, ``max_step_bytes``
        and ``clock`` go to both."""
        client_opts, store_opts = _split_options(kwargs)
        return cls(SessionClient.local(path, **client_opts), local_path=os.fspath(path), **store_opts)  # type: ignore[call-arg]

    @classmethod
    def memory(cls, **kwargs: Any) -> Any:
        """On an embedded store in this process's memory (same options as :meth:`local`)."""
        client_opts, store_opts = _split_options(kwargs)
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
        return SessionClient(self._log.backend.native)  # type: ignore[attr-defined]

    def session_of(self, key: str) -> str | None:
        """The session that holds the key's messages now (None if the key has none)."""
        return self._log.run_read(key).sid  # type: ignore[attr-defined,no-any-return]

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

    _log: _ChatLog = PrivateAttr()

    def __init__(self, client: Any = None, *, clock: Any = None, **data: Any) -> None:
        super().__init__(**data)
        self._open(client, clock)

    @classmethod
    def class_name(cls) -> str:
        return "SessionDBChatStore"

    async def get_messages(
        self,
        key: str,
        status: Optional[MessageStatus] = MessageStatus.ACTIVE,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> list[ChatMessage]:
        st = await self._log.arun_read(key)
        want = _status_value(status)
        entries = [e for e in st.view.entries if want is None or e[1] == want]
        if offset is not None and offset > 0:
            entries = entries[offset:]
        if limit is not None and limit >= 0:
            entries = entries[:limit]
        return _messages(st, entries)

    async def get_entries(
        self, key: str, status: Optional[MessageStatus] = None
    ) -> list[tuple[int, MessageStatus, ChatMessage]]:
        """The key's messages with their ids and statuses, oldest first."""
        st = await self._log.arun_read(key)
        want = _status_value(status)
        entries = [e for e in st.view.entries if want is None or e[1] == want]
        return [(e[0], MessageStatus(e[1]), m) for e, m in zip(entries, _messages(st, entries))]

    async def count_messages(self, key: str, status: Optional[MessageStatus] = MessageStatus.ACTIVE) -> int:
        st = await self._log.arun_read(key)
        want = _status_value(status)
        return sum(1 for e in st.view.entries if want is None or e[1] == want)

    async def add_message(self, key: str, message: ChatMessage, status: MessageStatus = MessageStatus.ACTIVE) -> None:
        await self._log.arun_write(key, _op_add([message], MessageStatus(status).value))

    async def add_messages(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        await self._log.arun_write(key, _op_add(list(messages), MessageStatus(status).value))

    async def set_messages(
        self, key: str, messages: list[ChatMessage], status: MessageStatus = MessageStatus.ACTIVE
    ) -> None:
        await self._log.arun_write(key, _op_set(list(messages), MessageStatus(status).value))

    async def delete_message(self, key: str, idx: int) -> Optional[ChatMessage]:
        return await self._log.arun_write(key, _op_remove(lambda st: [idx], returns="one"))  # type: ignore[no-any-return]

    async def delete_messages(self, key: str, status: Optional[MessageStatus] = None) -> None:
        want = _status_value(status)
        if want is None:
            await self._log.arun_write(key, _op_clear())
        else:
            await self._log.arun_write(key, _op_remove(lambda st: [e[0] for e in st.view.entries if e[1] == want]))

    async def delete_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        active = MessageStatus.ACTIVE.value
        select = lambda st: [e[0] for e in st.view.entries if e[1] == active][: max(0, n)]  # noqa: E731
        return await self._log.arun_write(key, _op_remove(select))  # type: ignore[no-any-return]

    async def archive_oldest_messages(self, key: str, n: int) -> list[ChatMessage]:
        return await self._log.arun_write(key, _op_archive(n))  # type: ignore[no-any-return]

    async def get_keys(self) -> list[str]:
        states = await self._log.backend.arun(self._log._g_keys())
        return [st.key for st in states if st.view.entries]


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

    _log: _ChatLog = PrivateAttr()

    def __init__(self, client: Any = None, *, clock: Any = None, **data: Any) -> None:
        super().__init__(**data)
        self._open(client, clock)

    @classmethod
    def class_name(cls) -> str:
        return "SessionChatStore"

    # ------------------------------------------------------------------ sync
    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        self._log.run_write(key, _op_set(list(messages), MessageStatus.ACTIVE.value))

    def get_messages(self, key: str) -> list[ChatMessage]:
        st = self._log.run_read(key)
        return _messages(st, st.view.entries)

    def add_message(self, key: str, message: ChatMessage, idx: Optional[int] = None) -> None:
        self._log.run_write(key, _op_add([message], MessageStatus.ACTIVE.value, idx))

    def delete_messages(self, key: str) -> Optional[list[ChatMessage]]:
        return self._log.run_write(key, _op_clear())  # type: ignore[no-any-return]

    def delete_message(self, key: str, idx: int) -> Optional[ChatMessage]:
        return self._log.run_write(key, _op_remove(_position(idx), returns="one"))  # type: ignore[no-any-return]

    def delete_last_message(self, key: str) -> Optional[ChatMessage]:
        return self._log.run_write(key, _op_remove(_position(-1), returns="one"))  # type: ignore[no-any-return]

    def get_keys(self) -> list[str]:
        states = self._log.backend.run(self._log._g_keys())
        return [st.key for st in states if st.view.entries or st.view.present]

    # ------------------------------------------------------------------ async
    async def aset_messages(self, key: str, messages: list[ChatMessage]) -> None:
        await self._log.arun_write(key, _op_set(list(messages), MessageStatus.ACTIVE.value))

    async def aget_messages(self, key: str) -> list[ChatMessage]:
        st = await self._log.arun_read(key)
        return _messages(st, st.view.entries)

    async def async_add_message(self, key: str, message: ChatMessage, idx: Optional[int] = None) -> None:
        await self._log.arun_write(key, _op_add([message], MessageStatus.ACTIVE.value, idx))

    async def adelete_messages(self, key: str) -> Optional[list[ChatMessage]]:
        return await self._log.arun_write(key, _op_clear())  # type: ignore[no-any-return]

    async def adelete_message(self, key: str, idx: int) -> Optional[ChatMessage]:
        return await self._log.arun_write(key, _op_remove(_position(idx), returns="one"))  # type: ignore[no-any-return]

    async def adelete_last_message(self, key: str) -> Optional[ChatMessage]:
        return await self._log.arun_write(key, _op_remove(_position(-1), returns="one"))  # type: ignore[no-any-return]

    async def aget_keys(self) -> list[str]:
        states = await self._log.backend.arun(self._log._g_keys())
        return [st.key for st in states if st.view.entries or st.view.present]


# ====================================================================== workflows


def _context_types() -> tuple[Any, Any]:
    from workflows import Context
    from workflows.context.serializers import JsonSerializer

    return Context, JsonSerializer


class _WorkflowLog(_Generations):
    """Saved workflow contexts: a run is an invocation of the key's session; a save is one step (more for a large
    context), and the newest complete save wins."""

    kind = "workflow"

    def __init__(
        self, native: _core.NativeClient, namespace: str, *, max_step_bytes: int, clock: Any = None
    ) -> None:
        super().__init__(native, namespace, clock)
        self.limits = _Limits(int(max_step_bytes))
        self._ids = _core.Li1Ids(self.kind, namespace)
        self._sessions: dict[str, tuple[int, str]] = {}  # key -> (generation, session) to save into
        self._last_time: dict[str, int] = {}
        self._lock = threading.Lock()

    def inv(self, run_id: str) -> str:
        return self._ids.invocation_id(run_id)

    def step_id(self, nonce: bytes, p: int, n: int) -> str:
        return self._ids.part_step_id(nonce, p, n)

    def parse(self, step_id: str) -> tuple[bytes, int, int] | None:
        return self._ids.part_of(step_id)

    # ------------------------------------------------------------------ saving
    def _g_session(self, key: str, create: bool) -> _Gen:
        with self._lock:
            known = self._sessions.get(key)
        if known is not None:
            return known
        sid, _ = yield from self._g_resolve_first(key)
        if sid is None:
            if not create:
                return None
            sid = yield from self._g_resolve(key, 0, True)
        found = yield from self._g_newest(key, 0, sid)
        with self._lock:
            self._sessions[key] = found
        return found

    def _g_save(self, key: str, run_id: str, body: dict[str, Any]) -> _Gen:
        gen, sid = yield from self._g_session(key, True)
        nonce = os.urandom(5)
        payloads = _pack(body["k"], body, [], self.limits, lambda w: None, nonce=nonce.hex())
        if len(payloads) > 255:
            raise _error(ValidationException, f"run {run_id!r}: the context needs over 255 steps", "PutInvocationStep")
        inv = self.inv(run_id)
        for _attempt in range(_MAX_ATTEMPTS):
            t0 = max(self.now_ms(), self._last_time.get(key, 0) + 1)
            err = None
            for p, payload in enumerate(payloads):
                params = {
                    "sessionIdentifier": sid,
                    "invocationIdentifier": inv,
                    "invocationStepId": self.step_id(nonce, p, len(payloads)),
                    "invocationStepTime": datetime.fromtimestamp((t0 + p) / 1000, tz=timezone.utc),
                    "payload": payload,
                }
                r = _one((yield [_Call("PutInvocationStep", params)]))
                if isinstance(r, BedrockSessionsError):
                    err = r
                    break
            if err is None:
                self._last_time[key] = t0 + len(payloads) - 1
                return
            if isinstance(err, ResourceNotFoundException) and _invocation_missing(err):
                desc = f"llama-index workflow run {run_id}"[:200]
                r = _one((yield [_Call("CreateInvocation", {"sessionIdentifier": sid, "invocationId": inv, "description": desc})]))
                if not isinstance(r, (ConflictException, ResourceNotFoundException)):
                    _raise(r)
                if not isinstance(r, ResourceNotFoundException):
                    continue
                err = r
            nonce = os.urandom(5)  # a new attempt leaves the parts of a failed one behind (incomplete: ignored)
            if isinstance(err, ResourceNotFoundException):  # the session was deleted
                gen, sid = yield from self._g_replace_dead(key, gen, sid)
            elif isinstance(err, (ServiceQuotaExceededException, ConflictException)):
                if isinstance(err, ConflictException):
                    got = _raise(_one((yield [_Call("GetSession", {"sessionIdentifier": sid})])))
                    if got.get("sessionStatus") == "ACTIVE":
                        raise err
                nxt = yield from self._g_resolve(key, gen + 1, False)
                if nxt is not None:  # another process moved on already: follow it to the newest
                    gen, sid = yield from self._g_newest(key, gen + 1, nxt)
                else:
                    gen, sid = gen + 1, (yield from self._g_resolve(key, gen + 1, True))
            else:
                raise err
            with self._lock:
                self._sessions[key] = (gen, sid)
        raise _error(ThrottlingException, f"run {run_id!r}: gave up saving", "PutInvocationStep")

    # ------------------------------------------------------------------ loading
    def _g_load(self, key: str, run_id: str) -> _Gen:
        """The newest save of the run (its body), searching the key's generations from the newest."""
        sid0, _ = yield from self._g_resolve_first(key)
        if sid0 is None:
            return None
        newest, sid = yield from self._g_newest(key, 0, sid0)
        with self._lock:
            self._sessions[key] = (newest, sid)
        inv = self.inv(run_id)
        for gen in range(newest, -1, -1):
            if gen != newest:
                sid = sid0 if gen == 0 else (yield from self._g_resolve(key, gen, False))
                if sid is None:
                    continue
            groups: dict[bytes, dict[str, Any]] = {}
            token = None
            gone = False
            while True:
                params: dict[str, Any] = {"sessionIdentifier": sid, "invocationIdentifier": inv, "maxResults": 1000}
                if token:
                    params["nextToken"] = token
                r = _one((yield [_Call("ListInvocationSteps", params)]))
                if isinstance(r, ResourceNotFoundException):
                    gone = True
                    break
                _raise(r)
                for s in r.get("invocationStepSummaries", []):
                    parsed = self.parse(s["invocationStepId"])
                    if parsed is None:
                        continue
                    nonce, p, n = parsed
                    g = groups.setdefault(nonce, {"n": n, "parts": {}, "time": 0})
                    g["parts"][p] = s["invocationStepId"]
                    g["time"] = max(g["time"], int(s["invocationStepTime"].timestamp() * 1000))
                token = r.get("nextToken")
                if not token:
                    break
            if gone:
                continue
            complete = [g for g in groups.values() if len(g["parts"]) == g["n"] and set(g["parts"]) == set(range(g["n"]))]
            if not complete:
                continue
            best = max(complete, key=lambda g: g["time"])
            results = yield [
                _Call("GetInvocationStep", {"sessionIdentifier": sid, "invocationIdentifier": inv, "invocationStepId": best["parts"][p]})
                for p in range(best["n"])
            ]
            text = ""
            for r in results:
                part = _decode_part(0, _raise(r))
                if part is None:
                    raise _error(ValidationException, f"run {run_id!r}: a saved step is not readable", "GetInvocationStep")
                text += part.text
            body = json.loads(text)
            return None if body.get("k") == "deleted" else body.get("data")
        return None


class SessionWorkflowStore:
    """Saves and restores paused LlamaIndex workflows (human in the loop) per key and run, so a run paused in one
    process resumes in another: ``ctx.to_dict(serializer=JsonSerializer())`` is stored in the key's session
    (an invocation per run), and ``Context.from_dict(workflow, data, serializer=...)`` rebuilds it.

    >>> store = SessionWorkflowStore.local("state.db")
    >>> store.save("ana", "order-7", handler.ctx)                 # when the workflow waits for a human
    >>> ctx = store.load("ana", "order-7", workflow)              # in another process, later
    >>> handler = workflow.run(ctx=ctx); handler.ctx.send_event(HumanResponseEvent(response="yes"))

    A key's workflow sessions are kept apart from its chat log's (thread ids of their own), and move to a new
    session when one expires (an idle hour on Bedrock) or fills up; a load searches them newest first.
    """

    def __init__(
        self,
        client: Any,
        *,
        namespace: str = "default",
        max_step_bytes: int = DEFAULT_MAX_STEP_BYTES,
        clock: Any = None,
    ) -> None:
        self._log = _WorkflowLog(_native_of(client), namespace, max_step_bytes=max_step_bytes, clock=clock)

    @classmethod
    def local(cls, path: Union[str, os.PathLike[str]], *, namespace: str = "default", **options: Any) -> SessionWorkflowStore:
        clock = options.get("clock")
        return cls(SessionClient.local(path, **options), namespace=namespace, clock=clock)

    @classmethod
    def memory(cls, *, namespace: str = "default", **options: Any) -> SessionWorkflowStore:
        clock = options.get("clock")
        return cls(SessionClient.memory(**options), namespace=namespace, clock=clock)

    @classmethod
    def bedrock(cls, *, namespace: str = "default", **kwargs: Any) -> SessionWorkflowStore:
        return cls(SessionClient.bedrock(**kwargs), namespace=namespace)

    @staticmethod
    def _body(ctx: Any, serializer: Any) -> dict[str, Any]:
        if isinstance(ctx, dict):
            data = ctx
        else:
            _, JsonSerializer = _context_types()
            data = ctx.to_dict(serializer=serializer or JsonSerializer())
        json.dumps(data)  # must be JSON: fail here rather than half-way through a save
        return {"k": "ctx", "data": data}

    def _context(self, data: dict[str, Any] | None, workflow: Any, serializer: Any) -> Any:
        if data is None:
            return None
        Context, JsonSerializer = _context_types()
        return Context.from_dict(workflow, data, serializer=serializer or JsonSerializer())

    # ------------------------------------------------------------------ sync
    def save(self, key: str, run_id: str, ctx: Any, *, serializer: Any = None) -> None:
        """Stores the context (a ``Context``, or the dict of ``ctx.to_dict()``) as the run's newest save."""
        self._log.backend.run(self._log._g_save(key, run_id, self._body(ctx, serializer)))

    def load_dict(self, key: str, run_id: str) -> dict[str, Any] | None:
        """The run's newest save (the dict of ``ctx.to_dict()``), or None."""
        return self._log.backend.run(self._log._g_load(key, run_id))  # type: ignore[no-any-return]

    def load(self, key: str, run_id: str, workflow: Any, *, serializer: Any = None) -> Any:
        """The run's newest save as a ``Context`` of ``workflow`` (``workflow.run(ctx=...)`` resumes it), or None."""
        return self._context(self.load_dict(key, run_id), workflow, serializer)

    def delete(self, key: str, run_id: str) -> None:
        """Forgets the run (a tombstone save: ``load`` returns None)."""
        self._log.backend.run(self._log._g_save(key, run_id, {"k": "deleted"}))

    # ------------------------------------------------------------------ async
    async def asave(self, key: str, run_id: str, ctx: Any, *, serializer: Any = None) -> None:
        await self._log.backend.arun(self._log._g_save(key, run_id, self._body(ctx, serializer)))

    async def aload_dict(self, key: str, run_id: str) -> dict[str, Any] | None:
        return await self._log.backend.arun(self._log._g_load(key, run_id))  # type: ignore[no-any-return]

    async def aload(self, key: str, run_id: str, workflow: Any, *, serializer: Any = None) -> Any:
        return self._context(await self.aload_dict(key, run_id), workflow, serializer)

    async def adelete(self, key: str, run_id: str) -> None:
        await self._log.backend.arun(self._log._g_save(key, run_id, {"k": "deleted"}))
