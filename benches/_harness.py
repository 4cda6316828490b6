"""Savers under test, their environments (server, store, files), and what is measured around a section.

Kinds of saver:

- ``old``        langgraph-checkpoint-aws's BedrockSessionSaver / AsyncBedrockSessionSaver, boto3 client, LocalServer
- ``ours-http``  our BedrockSessionSaver, SessionClient.bedrock (AWS SDK for Rust) -> the same kind of LocalServer
- ``ours-http-deferred`` the same with ``deferred=True`` (opt-in batched mode: calls return once queued)
- ``ours-local`` our saver on the embedded store in a SQLite file (SessionClient.local)
- ``ours-local-deferred`` the same with ``deferred=True``
- ``ours-memory`` our saver on the in-memory embedded store (SessionClient.memory)
- ``inmemory``   LangGraph's InMemorySaver
- ``sqlite``     LangGraph's SqliteSaver (sync API) / AsyncSqliteSaver (async API)
"""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import resource
import sqlite3
import threading
import time
import tracemalloc
import uuid
from typing import Any

SERVER_KINDS = ("old", "ours-http", "ours-http-deferred")
EMBEDDED_KINDS = ("ours-local", "ours-local-deferred", "ours-memory", "inmemory", "sqlite")
ALL_KINDS = SERVER_KINDS + EMBEDDED_KINDS
OURS = {"ours-http", "ours-http-deferred", "ours-local", "ours-local-deferred", "ours-memory"}
# Opt-in batched mode: run on the write workloads only (their reads are the default saver's); the timed section
# includes flush(), so everything is stored when the clock stops.
DEFERRED_KINDS = {"ours-http-deferred", "ours-local-deferred"}

# Enough for every thread the benchmarks build (the service quota is 1000 steps per session).
MAX_STEPS = 20000
STORE_OPTIONS = {"max_steps_per_session": MAX_STEPS}


# The local server's store: "normal" (no fsync per commit) keeps the server's own disk time out of the modelled
# latency; set by run.py (--server-durability). Our embedded saver keeps the store's default ("full").
SERVER_DURABILITY = {"value": "normal"}


def _new_store(path: str | None, server: bool = False) -> Any:
    from bedrock_sessions import SessionClient

    if path is None:
        return SessionClient.memory(**STORE_OPTIONS)
    if server:
        return SessionClient.local(path, durability=SERVER_DURABILITY["value"], **STORE_OPTIONS)
    return SessionClient.local(path, **STORE_OPTIONS)


def _ours_over_http(server: Any, deferred: bool = False) -> Any:
    from bedrock_sessions import BedrockSessionSaver, SessionClient

    client = SessionClient.bedrock(
        endpoint_url=server.endpoint_url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    return BedrockSessionSaver(client=client, deferred=deferred)


def _old(client: Any, api: str) -> Any:
    from langgraph_checkpoint_aws.checkpoint.bedrock_sessions import AsyncBedrockSessionSaver, BedrockSessionSaver

    return (AsyncBedrockSessionSaver if api == "async" else BedrockSessionSaver)(client=client)


# --------------------------------------------------------------------------- shared, read-only stores
class Fixture:
    """A store built once per kind (for the read workloads: history, get_tuple latest), read by every section.

    Server kinds: an embedded store that each section serves through a new LocalServer. Built with the savers
    directly on the store (no HTTP, no latency), which writes what they would write through the server.
    """

    def __init__(self, kind: str, tmpdir: str) -> None:
        self.kind = kind
        self.path: str | None = None
        self.store: Any = None  # SessionClient over the store (server kinds, ours-memory)
        self.saver: Any = None  # kept saver (in-memory kinds)
        self.threads: dict[str, dict[str, Any]] = {}  # name -> {"id", "checkpoints", "latest_id", "storage"}
        if kind in ("old", "ours-http", "ours-local", "sqlite"):
            self.path = os.path.join(tmpdir, f"fixture-{kind}.db")

    def builder(self) -> Any:
        """A sync saver writing this fixture's store (close with :meth:`done_building`)."""
        from bedrock_sessions import BedrockSessionSaver

        k = self.kind
        if k in SERVER_KINDS:
            self.store = _new_store(self.path, server=True)
            return _old(self.store, "sync") if k == "old" else BedrockSessionSaver(client=self.store)
        if k == "ours-local":
            return BedrockSessionSaver(client=_new_store(self.path))
        if k == "ours-memory":
            self.saver = BedrockSessionSaver(client=_new_store(None))
            self.store = self.saver.sessions
            return self.saver
        if k == "inmemory":
            from langgraph.checkpoint.memory import InMemorySaver

            self.saver = InMemorySaver()
            return self.saver
        if k == "sqlite":
            from langgraph.checkpoint.sqlite import SqliteSaver

            assert self.path is not None
            return SqliteSaver(sqlite3.connect(self.path, check_same_thread=False))
        raise ValueError(k)

    def done_building(self, saver: Any) -> None:
        if self.kind == "ours-local":
            saver.sessions.close()
        elif self.kind == "sqlite":
            saver.conn.close()

    def close(self) -> None:
        if self.kind in SERVER_KINDS and self.store is not None:
            self.store.close()


def new_thread_for(kind: str, saver: Any, store: Any = None) -> str:
    """A fresh thread id that every saver of ``kind`` can use: a session id for the Bedrock savers."""
    if kind == "old":
        return store.create_session()["sessionId"]
    if kind in OURS:
        return saver.create_thread()
    return str(uuid.uuid4())


# --------------------------------------------------------------------------- one section's environment
class Env:
    """The server (if any), the store and the saver of one measured section."""

    def __init__(self, kind: str, api: str, latency: float, tmpdir: str, fixture: Fixture | None = None) -> None:
        self.kind, self.api, self.latency, self.fixture = kind, api, latency, fixture
        self.server: Any = None
        self.store: Any = None  # SessionClient over the stored data (for steps and bytes)
        self.boto: Any = None
        self.saver: Any = None
        self.path: str | None = None
        self._own_store = False
        self._aconn: Any = None
        if fixture is not None:
            self.path = fixture.path
        elif kind in ("ours-local", "ours-local-deferred", "sqlite") or kind in SERVER_KINDS:
            self.path = os.path.join(tmpdir, f"{kind}-{api}-{uuid.uuid4().hex[:8]}.db")

    # sync part: server and stores (no event loop needed)
    def start(self) -> Env:
        from bedrock_sessions import BedrockSessionSaver
        from bedrock_sessions.server import LocalServer

        k = self.kind
        if k in SERVER_KINDS:
            if self.fixture is not None:
                self.store = self.fixture.store
            else:
                self.store, self._own_store = _new_store(self.path, server=True), True
            self.server = LocalServer(self.store, latency=self.latency).start()
            if k == "old":
                self.boto = self.server.boto3_client()
                self.saver = _old(self.boto, self.api)
            else:
                self.saver = _ours_over_http(self.server, deferred=k in DEFERRED_KINDS)
        elif k in ("ours-local", "ours-local-deferred"):
            self.saver = BedrockSessionSaver(client=_new_store(self.path), deferred=k in DEFERRED_KINDS)
            self.store = self.saver.sessions
        elif k in ("ours-memory", "inmemory"):
            if self.fixture is not None:
                self.saver = self.fixture.saver
            elif k == "inmemory":
                from langgraph.checkpoint.memory import InMemorySaver

                self.saver = InMemorySaver()
            else:
                self.saver = BedrockSessionSaver(client=_new_store(None))
            if k == "ours-memory":
                self.store = self.saver.sessions
        elif k == "sqlite" and self.api == "sync":
            from langgraph.checkpoint.sqlite import SqliteSaver

            assert self.path is not None
            self.saver = SqliteSaver(sqlite3.connect(self.path, check_same_thread=False))
        return self

    async def astart(self) -> Env:
        """The async part: AsyncSqliteSaver's connection belongs to the running loop."""
        if self.kind == "sqlite" and self.api == "async":
            import aiosqlite
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

            assert self.path is not None
            self._aconn = await aiosqlite.connect(self.path)
            self.saver = AsyncSqliteSaver(self._aconn)
            await self.saver.setup()
        return self

    async def aclose_loop_resources(self) -> None:
        if self._aconn is not None:
            await self._aconn.close()
            self._aconn = None

    def new_thread(self) -> str:
        return new_thread_for(self.kind, self.saver, self.boto)

    def reset_stats(self) -> None:
        if self.server is not None:
            self.server.reset_stats()

    def stats(self) -> dict[str, Any] | None:
        return self.server.stats() if self.server is not None else None

    def storage(self, thread_ids: list[str]) -> dict[str, Any]:
        """What the threads hold in the store (read outside the measured section, without the server)."""
        if self.store is not None:
            return session_storage(self.store, thread_ids)
        if self.kind == "inmemory":
            return inmemory_storage(self.saver, thread_ids)
        if self.kind == "sqlite":
            return sqlite_storage(self.path, thread_ids)
        return {}

    def close(self) -> None:
        """Stops the server and closes what this section opened."""
        k = self.kind
        if k in DEFERRED_KINDS and self.saver is not None:
            self.saver.flush()
        if k in ("ours-http", "ours-http-deferred") and self.saver is not None:
            self.saver.sessions.close()  # the AWS SDK client's connections
        if self.boto is not None:
            self.boto.close()
        if self.server is not None:
            self.server.stop()
        if self._own_store and self.store is not None:
            self.store.close()
        if k in ("ours-local", "ours-local-deferred") and self.saver is not None:
            self.saver.sessions.close()
        if k == "sqlite" and self.api == "sync" and self.saver is not None:
            self.saver.conn.close()

    def file_bytes(self) -> int | None:
        """Size of the section's own SQLite file (+ WAL) after close; None for shared or in-memory stores."""
        if self.fixture is not None or self.path is None or self.kind in SERVER_KINDS:
            return None
        total = 0
        for suffix in ("", "-wal"):
            p = self.path + suffix
            if os.path.exists(p):
                total += os.path.getsize(p)
        return total


# --------------------------------------------------------------------------- stored data
def session_storage(store: Any, thread_ids: list[str]) -> dict[str, Any]:
    """Steps consumed and payload bytes (text UTF-8 bytes + image bytes) of the threads' sessions."""
    steps = text_bytes = image_bytes = 0
    invocations: set[str] = set()
    paginator = store.get_paginator("list_invocation_steps")
    for tid in thread_ids:
        session_id = _session_of(store, tid)
        for page in paginator.paginate(sessionIdentifier=session_id):
            for s in page["invocationStepSummaries"]:
                steps += 1
                invocations.add(s["invocationId"])
                step = store.get_invocation_step(
                    sessionIdentifier=session_id, invocationIdentifier=s["invocationId"],
                    invocationStepId=s["invocationStepId"],
                )["invocationStep"]
                for block in step["payload"].get("contentBlocks", []):
                    if "text" in block:
                        text_bytes += len(block["text"].encode())
                    if "image" in block:
                        image_bytes += len(block["image"]["source"]["bytes"])
    return {"measure": "session payload bytes (text UTF-8 + image)", "steps": steps, "invocations": len(invocations),
            "bytes": text_bytes + image_bytes, "text_bytes": text_bytes, "image_bytes": image_bytes}


def _session_of(store: Any, thread_id: str) -> str:
    # Every benchmark thread of the Bedrock-layout savers is a session id (create_thread / create_session).
    return thread_id


def inmemory_storage(saver: Any, thread_ids: list[str]) -> dict[str, Any]:
    tids = set(thread_ids)
    cp_bytes = blob_bytes = write_bytes = checkpoints = blobs = writes = 0
    for tid in tids:
        for ns_map in saver.storage.get(tid, {}).values():
            for typed_cp, typed_md, _parent in ns_map.values():
                checkpoints += 1
                cp_bytes += len(typed_cp[1]) + len(typed_md[1])
    for (tid, *_rest), typed in saver.blobs.items():
        if tid in tids:
            blobs += 1
            blob_bytes += len(typed[1])
    for (tid, *_rest), inner in saver.writes.items():
        if tid in tids:
            for _task, _channel, typed, _path in inner.values():
                writes += 1
                write_bytes += len(typed[1])
    return {"measure": "serialized bytes held (checkpoints+metadata, channel blobs, writes)",
            "records": checkpoints + blobs + writes, "checkpoints": checkpoints, "blobs": blobs, "writes": writes,
            "bytes": cp_bytes + blob_bytes + write_bytes}


def sqlite_storage(path: str | None, thread_ids: list[str]) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(thread_ids))
        n_cp, cp_bytes = conn.execute(
            f"SELECT count(*), coalesce(sum(length(checkpoint) + length(metadata)), 0) FROM checkpoints "
            f"WHERE thread_id IN ({marks})", thread_ids).fetchone()
        n_w, w_bytes = conn.execute(
            f"SELECT count(*), coalesce(sum(length(value)), 0) FROM writes WHERE thread_id IN ({marks})",
            thread_ids).fetchone()
    finally:
        conn.close()
    return {"measure": "blob bytes in rows (checkpoint+metadata, writes.value)", "records": n_cp + n_w,
            "checkpoints": n_cp, "writes": n_w, "bytes": cp_bytes + w_bytes}


# --------------------------------------------------------------------------- saver calls made by LangGraph
METHODS = {"sync": ("put", "put_writes", "get_tuple", "list"), "async": ("aput", "aput_writes", "aget_tuple", "alist")}


class CallCounter:
    """Counts the saver method calls (and their cumulative time, except for list) by wrapping the instance's
    methods; ``functools.wraps`` keeps the signatures LangGraph inspects."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()
        self.active = False

    def reset(self) -> None:
        with self._lock:
            self.calls = {}
            self.seconds = {}

    def _add(self, name: str, dt: float | None) -> None:
        if not self.active:
            return
        with self._lock:
            self.calls[name] = self.calls.get(name, 0) + 1
            if dt is not None:
                self.seconds[name] = self.seconds.get(name, 0.0) + dt

    def install(self, saver: Any, api: str) -> None:
        for name in METHODS[api]:
            orig = getattr(saver, name)
            setattr(saver, name, self._wrap(name, orig))

    def _wrap(self, name: str, orig: Any) -> Any:
        counter = self
        if name in ("list", "alist"):
            @functools.wraps(orig)
            def listing(*args: Any, **kwargs: Any) -> Any:
                counter._add(name, None)
                return orig(*args, **kwargs)
            return listing
        if name.startswith("a"):
            @functools.wraps(orig)
            async def acall(*args: Any, **kwargs: Any) -> Any:
                t = time.perf_counter()
                try:
                    return await orig(*args, **kwargs)
                finally:
                    counter._add(name, time.perf_counter() - t)
            return acall

        @functools.wraps(orig)
        def call(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return orig(*args, **kwargs)
            finally:
                counter._add(name, time.perf_counter() - t)
        return call

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {(k[1:] if k in METHODS["async"] else k): {"calls": v, "seconds": round(self.seconds.get(k, 0.0), 6)}
                    for k, v in sorted(self.calls.items())}


# --------------------------------------------------------------------------- memory
_malloc_trim: Any
try:
    _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # pragma: no cover - not glibc
    _malloc_trim = None


def trim() -> None:
    """Gives freed memory back to the OS so RSS deltas start from a low baseline (glibc only)."""
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # pragma: no cover - not Linux
        return 0


def maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


class RssSampler:
    """Samples the process RSS every ``interval`` seconds; ``peak - start`` is the section's RSS growth."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.start_rss = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(self.interval)

    def start(self) -> RssSampler:
        self.start_rss = self.peak = rss_bytes()
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        return self.peak - self.start_rss


class Meter:
    """Brackets a measured section: wall time and server stats (every pass); tracemalloc peak, sampled RSS
    growth and the getrusage high-water growth (memory pass only, as tracing slows Python code down)."""

    def __init__(self, env: Env, counter: CallCounter, memory: bool) -> None:
        self.env, self.counter, self.memory = env, counter, memory
        self.wall = 0.0
        self.stats: dict[str, Any] | None = None
        self.calls: dict[str, Any] = {}
        self.py_peak: int | None = None
        self.rss_peak_delta: int | None = None
        self.maxrss_growth: int | None = None
        self._sampler: RssSampler | None = None

    def __enter__(self) -> Meter:
        if self.memory:
            trim()
        self.env.reset_stats()
        self.counter.reset()
        self.counter.active = True
        if self.memory:
            self._maxrss0 = maxrss_bytes()
            self._sampler = RssSampler().start()
            tracemalloc.start()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self._t0
        self.counter.active = False
        if self.memory:
            self.py_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert self._sampler is not None
            self.rss_peak_delta = self._sampler.stop()
            self.maxrss_growth = maxrss_bytes() - self._maxrss0
        self.stats = self.env.stats()
        self.calls = self.counter.snapshot()
