"""Harness for the LangGraph scenario tests: run a scenario on one checkpointer, record what happened, normalize it.

A scenario is a plain function ``scenario(drv) -> None`` that builds graphs, drives them through ``drv`` (a ``Driver``)
and records outputs, states and histories on ``drv.rec``; it also asserts concrete facts of its own. ``run_scenario``
returns the normalized record, which must be identical for the reference ``InMemorySaver`` and the saver under test.

Sync and async: a ``Driver`` in ``"sync"`` mode calls ``invoke`` / ``get_state`` / ``get_state_history`` / ``get_tuple``;
in ``"async"`` mode the same scenario code calls ``ainvoke`` / ``aget_state`` / ``aget_state_history`` / ``aget_tuple``,
each coroutine run to completion on an event loop owned by the driver (so scenario code is written once).

Normalization (what is compared, and why):
* Checkpoint ids (uuid6, time-based) differ between any two runs: each is replaced by ``<history label>@<position>``,
  the first history position it was seen at (histories are newest first). Parents are mapped the same way.
* Task ids are NOT stable across runs either: LangGraph derives them from the checkpoint id (``_algo.prepare_*``:
  ``task_id_func(checkpoint_id_bytes, ...)``). Each task id is replaced by ``T(<checkpoint label>:<task name>#<k>)``
  (its k-th task of that checkpoint's snapshot), so pending writes still tie to the task that made them, and subgraph
  namespaces (``"node:<task id>"``) become ``"node:T(...)"``.
* Interrupt ids (a hash of the namespace, so of a task id) and any other uuid / 32-hex string get first-seen labels.
  The traversal order is fixed, so two savers that behave the same get the same labels.
* ``StateSnapshot.created_at`` is dropped (a wall-clock timestamp, truly volatile); instead each history is checked to
  have parseable, non-increasing ``created_at``. Nothing is dropped from metadata: LangGraph 1.x writes
  ``source``, ``step``, ``parents`` (+ config keys), none of them volatile once ids are mapped.
* Messages, interrupts, ``Send`` and other dataclasses / pydantic models become tagged dicts; tuples stay tuples and
  lists stay lists (a saver that turns one into the other is a difference).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import decimal
import enum
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.types import PregelTask, Send, StateSnapshot

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
HEX32_RE = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])")
NULL_TASK_ID = "00000000-0000-0000-0000-000000000000"


# ---------------------------------------------------------------- counting executions outside the state
class Hits:
    """Thread-safe execution counter kept outside the graph state (nodes run on worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def hit(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))


# ---------------------------------------------------------------- the driver: one scenario body, sync or async
class Driver:
    def __init__(self, saver: BaseCheckpointSaver, mode: str, loop: asyncio.AbstractEventLoop | None = None) -> None:
        assert mode in ("sync", "async")
        self.saver = saver
        self.mode = mode
        self.loop = loop
        self.rec = Recorder(self)

    def _run(self, awaitable: Any) -> Any:
        assert self.loop is not None
        return self.loop.run_until_complete(awaitable)

    def compile(self, builder: Any, **kwargs: Any) -> Any:
        return builder.compile(checkpointer=self.saver, **kwargs)

    def invoke(self, graph: Any, inp: Any, config: Any, **kwargs: Any) -> Any:
        if self.mode == "sync":
            return graph.invoke(inp, config, **kwargs)
        return self._run(graph.ainvoke(inp, config, **kwargs))

    def invoke_many(self, calls: list[tuple[Any, Any, Any]]) -> list[Any]:
        """Runs ``(graph, input, config)`` calls at the same time on this saver: sync on a thread pool, async with
        ``asyncio.gather``. Returns the outputs (or the raised exceptions) in call order."""
        if self.mode == "sync":
            from concurrent.futures import ThreadPoolExecutor

            def one(call: tuple[Any, Any, Any]) -> Any:
                try:
                    return call[0].invoke(call[1], call[2])
                except Exception as err:  # noqa: BLE001 - reported to the caller
                    return err

            with ThreadPoolExecutor(max_workers=len(calls)) as pool:
                return list(pool.map(one, calls))

        async def all_() -> list[Any]:
            return await asyncio.gather(*(g.ainvoke(i, c) for g, i, c in calls), return_exceptions=True)

        return self._run(all_())

    def get_state(self, graph: Any, config: Any, *, subgraphs: bool = False) -> Any:
        if self.mode == "sync":
            return graph.get_state(config, subgraphs=subgraphs)
        return self._run(graph.aget_state(config, subgraphs=subgraphs))

    def history(self, graph: Any, config: Any, **kwargs: Any) -> list[Any]:
        if self.mode == "sync":
            return list(graph.get_state_history(config, **kwargs))

        async def collect() -> list[Any]:
            return [s async for s in graph.aget_state_history(config, **kwargs)]

        return self._run(collect())

    def update_state(self, graph: Any, config: Any, values: Any, as_node: str | None = None) -> Any:
        if self.mode == "sync":
            return graph.update_state(config, values, as_node=as_node)
        return self._run(graph.aupdate_state(config, values, as_node=as_node))

    def delete_thread(self, thread_id: str) -> None:
        if self.mode == "sync":
            self.saver.delete_thread(thread_id)
        else:
            self._run(self.saver.adelete_thread(thread_id))

    def get_tuple(self, config: Any) -> Any:
        if self.mode == "sync":
            return self.saver.get_tuple(config)
        return self._run(self.saver.aget_tuple(config))

    def list(self, config: Any, **kwargs: Any) -> list[Any]:
        if self.mode == "sync":
            return list(self.saver.list(config, **kwargs))

        async def collect() -> list[Any]:
            return [t async for t in self.saver.alist(config, **kwargs)]

        return self._run(collect())


# ---------------------------------------------------------------- recording
def _ckpt_id(config: Any) -> str | None:
    if config is None:
        return None
    return config["configurable"].get("checkpoint_id")


def _walk_snapshots(snap: StateSnapshot) -> Iterator[StateSnapshot]:
    yield snap
    for task in snap.tasks:
        if isinstance(task.state, StateSnapshot):
            yield from _walk_snapshots(task.state)


class Recorder:
    """Collects raw events in order; ``normalized()`` maps the volatile ids and returns a comparable list."""

    def __init__(self, drv: Driver) -> None:
        self.drv = drv
        self.events: list[tuple[str, str, Any]] = []

    def output(self, label: str, value: Any) -> Any:
        self.events.append(("output", label, value))
        return value

    def fact(self, label: str, value: Any) -> Any:
        """Anything else worth comparing (counters, derived values)."""
        self.events.append(("fact", label, value))
        return value

    def state(self, label: str, graph: Any, config: Any, *, subgraphs: bool = False) -> Any:
        snap = self.drv.get_state(graph, config, subgraphs=subgraphs)
        writes = {}
        for s in _walk_snapshots(snap):
            if _ckpt_id(s.config) is not None:
                writes[_ckpt_id(s.config)] = self._pending_writes(s)
        self.events.append(("state", label, (snap, writes)))
        return snap

    def history(self, label: str, graph: Any, config: Any, *, full: bool = True, **kwargs: Any) -> list[Any]:
        """``get_state_history(config, **kwargs)`` + each snapshot's pending writes. ``full``: the whole history of one
        namespace, whose parent chain must close on itself (checked)."""
        snaps = self.drv.history(graph, config, **kwargs)
        check_history_invariants(snaps, config, full=full)
        writes = [self._pending_writes(s) for s in snaps]
        for s in snaps:
            self._check_tuple_matches(s)
        self.events.append(("history", label, (snaps, writes)))
        return snaps

    def listing(self, label: str, tuples: list[CheckpointTuple], *, as_set: bool = False) -> list[Any]:
        """Checkpoint tuples straight from ``saver.list``. ``as_set``: compare without order (for listings across
        namespaces, whose interleaving the contract leaves open)."""
        self.events.append(("listing", label, (tuples, as_set)))
        return tuples

    def _pending_writes(self, snap: StateSnapshot) -> list[tuple[str, str, Any]] | None:
        tup = self.drv.get_tuple(snap.config)
        assert tup is not None, f"get_tuple({snap.config}) found nothing for a checkpoint the history listed"
        return None if tup.pending_writes is None else list(tup.pending_writes)

    def _check_tuple_matches(self, snap: StateSnapshot) -> None:
        tup = self.drv.get_tuple(snap.config)
        assert tup is not None
        assert _ckpt_id(tup.config) == _ckpt_id(snap.config), "get_tuple(exact id) returned another checkpoint"
        assert tup.checkpoint["id"] == _ckpt_id(snap.config)
        assert tup.metadata == snap.metadata, "get_tuple and list disagree on metadata"
        assert _ckpt_id(tup.parent_config) == _ckpt_id(snap.parent_config), "get_tuple and list disagree on the parent"

    # ------------------------------------------------------------ normalization
    def normalized(self) -> list[Any]:
        labels = Labels()
        # Pass 1: checkpoint ids by history position, then task ids by (checkpoint, name, index), in event order.
        for kind, label, payload in self.events:
            if kind == "history":
                snaps, _ = payload
                for i, s in enumerate(snaps):
                    labels.register(_ckpt_id(s.config), f"{label}@{i}")
            elif kind == "state":
                snap, _ = payload
                for depth, s in enumerate(_walk_snapshots(snap)):
                    if _ckpt_id(s.config) is not None:
                        labels.register(_ckpt_id(s.config), f"{label}/state{depth}")
        for kind, label, payload in self.events:
            walk: list[StateSnapshot] = []
            if kind == "history":
                walk = payload[0]
            elif kind == "state":
                walk = list(_walk_snapshots(payload[0]))
            for s in walk:
                for s2 in _walk_snapshots(s):
                    owner = labels.map.get(_ckpt_id(s2.config) or "", "?")
                    for k, task in enumerate(s2.tasks):
                        labels.register(task.id, f"T({owner}:{task.name}#{k})")
        # Pass 2: everything, in event order.
        out: list[Any] = []
        for kind, label, payload in self.events:
            if kind == "history":
                snaps, writes = payload
                out.append(
                    (kind, label, [_norm_snapshot(s, w, labels) for s, w in zip(snaps, writes, strict=True)])
                )
            elif kind == "state":
                snap, writes = payload
                out.append((kind, label, _norm_state_tree(snap, writes, labels)))
            elif kind == "listing":
                tuples, as_set = payload
                items = [_norm_tuple(t, labels) for t in tuples]
                if as_set:
                    items = sorted(items, key=repr)
                out.append((kind, label, items))
            else:
                out.append((kind, label, norm(payload, labels)))
        return out


def _norm_snapshot(s: StateSnapshot, writes: Any, labels: Labels) -> dict[str, Any]:
    return {
        "checkpoint": norm(_ckpt_id(s.config), labels),
        "config": norm(s.config, labels),
        "values": norm(s.values, labels),
        "next": norm(s.next, labels),
        "metadata": norm(s.metadata, labels),
        "parent": norm(_ckpt_id(s.parent_config), labels),
        "parent_config": norm(s.parent_config, labels),
        "tasks": norm(s.tasks, labels),
        "interrupts": norm(s.interrupts, labels),
        "pending_writes": norm(writes, labels),
    }


def _norm_state_tree(snap: StateSnapshot, writes: dict[str, Any], labels: Labels) -> dict[str, Any]:
    d = _norm_snapshot(snap, writes.get(_ckpt_id(snap.config) or ""), labels)
    d["tasks"] = [
        {
            **norm(t._replace(state=None), labels),
            "state": _norm_state_tree(t.state, writes, labels)
            if isinstance(t.state, StateSnapshot)
            else norm(t.state, labels),
        }
        for t in snap.tasks
    ]
    return d


def _norm_tuple(t: CheckpointTuple, labels: Labels) -> dict[str, Any]:
    return {
        "config": norm(t.config, labels),
        "checkpoint_id": norm(t.checkpoint["id"], labels),
        "channel_values": norm(t.checkpoint["channel_values"], labels),
        "metadata": norm(t.metadata, labels),
        "parent_config": norm(t.parent_config, labels),
        "pending_writes": norm(t.pending_writes, labels),
    }


class Labels:
    def __init__(self) -> None:
        self.map: dict[str, str] = {}
        self._auto: Counter[str] = Counter()

    def register(self, raw: str | None, label: str) -> None:
        if raw is not None and raw not in self.map:
            self.map[raw] = label

    def _get(self, raw: str, kind: str) -> str:
        if raw == NULL_TASK_ID:
            return raw
        if raw not in self.map:
            self._auto[kind] += 1
            self.map[raw] = f"<{kind}{self._auto[kind]}>"
        return self.map[raw]

    def sub(self, s: str) -> str:
        if s in self.map:
            return self.map[s]
        s = UUID_RE.sub(lambda m: self._get(m.group(0), "uuid"), s)
        return HEX32_RE.sub(lambda m: self._get(m.group(0), "hex"), s)


def norm(obj: Any, labels: Labels) -> Any:
    if obj is None or isinstance(obj, (bool, int, float)):
        return obj
    if isinstance(obj, str):
        return labels.sub(obj)
    if isinstance(obj, bytes):
        return ("bytes", obj)
    if isinstance(obj, dict):
        return {norm(k, labels): norm(v, labels) for k, v in obj.items()}
    if isinstance(obj, (StateSnapshot, PregelTask, CheckpointTuple)):
        d = {"__type__": type(obj).__name__}
        for f in obj._fields:
            if f == "created_at":
                continue  # wall clock: see the module docstring
            d[f] = norm(getattr(obj, f), labels)
        return d
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return {"__type__": type(obj).__name__, **{f: norm(getattr(obj, f), labels) for f in obj._fields}}
    if isinstance(obj, list):
        return [norm(v, labels) for v in obj]
    if isinstance(obj, tuple):
        return tuple(norm(v, labels) for v in obj)
    if isinstance(obj, (set, frozenset)):
        return ("set", sorted((norm(v, labels) for v in obj), key=repr))
    if isinstance(obj, enum.Enum):
        return {"__type__": type(obj).__name__, "enum": norm(obj.value, labels)}
    if isinstance(obj, (dt.datetime, dt.date, dt.time)):
        return {"__type__": type(obj).__name__, "iso": obj.isoformat()}
    if isinstance(obj, (dt.timedelta, decimal.Decimal, uuid.UUID)):
        return {"__type__": type(obj).__name__, "repr": repr(obj)}  # values the scenario chose: not relabelled
    if isinstance(obj, BaseMessage):
        return {"__type__": type(obj).__name__, **norm(obj.model_dump(), labels)}
    if isinstance(obj, Send):
        return {"__type__": "Send", "node": obj.node, "arg": norm(obj.arg, labels)}
    if isinstance(obj, BaseException):
        return {"__type__": type(obj).__name__, "args": norm(obj.args, labels)}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            "__type__": type(obj).__name__,
            **{f.name: norm(getattr(obj, f.name), labels) for f in dataclasses.fields(obj)},
        }
    if hasattr(obj, "model_dump"):
        return {"__type__": type(obj).__name__, **norm(obj.model_dump(), labels)}
    raise TypeError(f"the harness cannot normalize {type(obj)!r}: {obj!r}")


# ---------------------------------------------------------------- invariants every saver must show on its own
def check_history_invariants(snaps: list[StateSnapshot], config: Any, *, full: bool) -> None:
    thread = config["configurable"]["thread_id"]
    ids = [_ckpt_id(s.config) for s in snaps]
    for s, cid in zip(snaps, ids, strict=True):
        assert isinstance(cid, str) and UUID_RE.fullmatch(cid), f"checkpoint id {cid!r} is not a uuid"
        assert s.config["configurable"]["thread_id"] == thread
        if s.parent_config is not None:
            assert s.parent_config["configurable"]["thread_id"] == thread
            assert s.parent_config["configurable"]["checkpoint_ns"] == s.config["configurable"]["checkpoint_ns"]
            assert _ckpt_id(s.parent_config) < cid, "a parent must be older than its child"  # type: ignore[operator]
    assert ids == sorted(ids, reverse=True), "history must be newest first"  # type: ignore[type-var]
    assert len(set(ids)) == len(ids), "a checkpoint is listed twice"
    stamps = [dt.datetime.fromisoformat(s.created_at) for s in snaps]  # type: ignore[arg-type]
    assert stamps == sorted(stamps, reverse=True), "created_at must not increase along a newest-first history"
    if full and snaps:
        known = set(ids)
        for s in snaps:
            parent = _ckpt_id(s.parent_config)
            assert parent is None or parent in known, "a parent is missing from the full history"
        assert snaps[-1].parent_config is None, "the oldest checkpoint of a full history has no parent"


# ---------------------------------------------------------------- comparing records
def diff_paths(a: Any, b: Any, path: str = "$", out: list[str] | None = None, limit: int = 12) -> list[str]:
    """The paths where ``a`` and ``b`` differ (at most ``limit``), each with both values."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if type(a) is not type(b):
        out.append(f"{path}: {type(a).__name__} {a!r:.300} != {type(b).__name__} {b!r:.300}")
    elif isinstance(a, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in b:
                out.append(f"{path}[{k!r}]: only in reference: {a[k]!r:.300}")
            elif k not in a:
                out.append(f"{path}[{k!r}]: only in saver under test: {b[k]!r:.300}")
            else:
                diff_paths(a[k], b[k], f"{path}[{k!r}]", out, limit)
            if len(out) >= limit:
                break
    elif isinstance(a, (list, tuple)):
        if len(a) != len(b):
            out.append(f"{path}: length {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            diff_paths(x, y, f"{path}[{i}]", out, limit)
            if len(out) >= limit:
                break
    elif a != b:
        out.append(f"{path}: {a!r:.300} != {b!r:.300}")
    return out


def assert_same_record(reference: Any, got: Any) -> None:
    if reference != got:
        paths: list[str] = []
        if len(reference) != len(got):
            paths.append(f"{len(reference)} events != {len(got)} events")
        for ref_event, got_event in zip(reference, got):
            kind, label = ref_event[0], ref_event[1]
            if ref_event[:2] != got_event[:2]:
                paths.append(f"event {ref_event[:2]} != {got_event[:2]}")
            else:
                diff_paths(ref_event[2], got_event[2], f"{kind} {label!r}", paths)
        raise AssertionError(
            "the saver under test recorded a different run than InMemorySaver (reference != saver):\n  "
            + "\n  ".join(paths or ["(equal by path, unequal by ==)"])
        )


ScenarioFn = Callable[[Driver], None]
