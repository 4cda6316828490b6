"""What the inspector reads: sessions and raw steps through the session API, threads through the saver (so chains of
sessions, both layouts and every backend read as LangGraph reads them)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..client import SessionClient
from ._values import plain

INTERRUPT = "__interrupt__"
RESUME = "__resume__"
NULL_TASK = "00000000-0000-0000-0000-000000000000"
META_THREAD = "langgraph:thread_id"
SERVICE_QUOTA = 1000  # invocation steps per session (the service's default quota)


@dataclass
class _Light:
    """A checkpoint as a history needs it (see ``Inspector._records``)."""

    thread_id: str
    ns: str
    checkpoint_id: str
    parent_id: str | None
    checkpoint: dict[str, Any]
    channels: list[str]
    metadata: dict[str, Any]
    writes: list[tuple[str, str, Any]]  # (task, channel, value: decoded for interrupts only)


class InspectError(Exception):
    """A thread, checkpoint or session that is not there, or an ambiguous short id."""


def _iso(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


def pages(call: Any, key: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every item of a paged listing of the session API (``maxResults`` 1000 a page)."""
    token = None
    while True:
        page = call(maxResults=1000, **({"nextToken": token} if token else {}), **params)
        yield from page.get(key, [])
        token = page.get("nextToken")
        if not token:
            return


def user_channels(values: dict[str, Any]) -> dict[str, Any]:
    """The graph's own channels (not LangGraph's triggers and markers)."""
    return {k: v for k, v in values.items() if not k.startswith("branch:") and not k.startswith("__")}


def next_nodes(checkpoint: dict[str, Any], channels: Iterable[str]) -> list[str]:
    """The nodes a checkpoint would run next, as LangGraph finds them: a node whose trigger channel
    (``branch:to:<node>``, or ``__start__`` for the input) holds a value (is in ``channels``) newer than the node has
    seen."""
    values = list(channels)
    versions = checkpoint.get("channel_versions", {})
    seen = checkpoint.get("versions_seen", {})
    out = []
    for ch in values:
        if ch == "__start__":
            node = "__start__"
        elif ch.startswith("branch:to:"):
            node = ch[len("branch:to:"):]
        else:
            continue
        mine = seen.get(node, {}).get(ch)
        if mine is None or str(versions.get(ch, "")) > str(mine):
            out.append(node)
    return sorted(out)


def interrupts(pending_writes: list[tuple[str, str, Any]], *, pending: bool = False) -> list[Any]:
    """The interrupts raised at a checkpoint (as LangGraph's ``StateSnapshot.interrupts`` lists them); with
    ``pending``, only those of tasks not resumed since (what the thread waits on)."""
    resumed = {task for task, ch, _ in pending_writes if ch == RESUME}
    if pending and NULL_TASK in resumed:
        return []
    out: list[Any] = []
    for task, ch, value in pending_writes:
        if ch == INTERRUPT and not (pending and task in resumed):
            out.extend(plain(value) if isinstance(value, (list, tuple)) else [plain(value)])
    return out


class Inspector:
    """Reads a store for people: every result is JSON-able."""

    def __init__(self, client: SessionClient, serde: Any = None) -> None:
        self.client = client
        self._serde = serde
        self._saver: Any = None

    @property
    def saver(self) -> Any:
        if self._saver is None:
            try:
                from ..saver import BedrockSessionSaver
            except ImportError as e:  # langgraph is an extra
                raise InspectError(f"reading threads needs LangGraph: pip install 'bedrock-sessions[langgraph]' ({e})")
            self._saver = BedrockSessionSaver(client=self.client, serde=self._serde)
        return self._saver

    # ------------------------------------------------------------------ sessions
    def session_ids(self) -> list[str]:
        return [s["sessionId"] for s in pages(self.client.list_sessions, "sessionSummaries")]

    def session(self, session_id: str, *, count_steps: bool = True) -> dict[str, Any]:
        try:
            s = self.client.get_session(sessionIdentifier=session_id)
        except Exception as e:  # noqa: BLE001 - re-raised with the id
            if type(e).__name__ == "ResourceNotFoundException":
                raise InspectError(f"no session {session_id!r} in this store") from e
            raise
        tags = self.client.list_tags_for_resource(resourceArn=s["sessionArn"]).get("tags", {})
        out: dict[str, Any] = {
            "session_id": s["sessionId"],
            "arn": s["sessionArn"],
            "status": s["sessionStatus"],
            "created": _iso(s["createdAt"]),
            "updated": _iso(s["lastUpdatedAt"]),
            "metadata": s.get("sessionMetadata") or {},
            "tags": tags,
            "encryption_key_arn": s.get("encryptionKeyArn"),
            "thread_id": (s.get("sessionMetadata") or {}).get(META_THREAD),
        }
        if count_steps:
            invocations = list(pages(self.client.list_invocations, "invocationSummaries", sessionIdentifier=session_id))
            steps = sum(
                1
                for inv in invocations
                for _ in pages(self.client.list_invocation_steps, "invocationStepSummaries",
                                sessionIdentifier=session_id, invocationIdentifier=inv["invocationId"])
            )
            out.update(invocations=len(invocations), steps=steps, quota=SERVICE_QUOTA)
        return out

    def sessions(self) -> list[dict[str, Any]]:
        return [self.session(sid) for sid in self.session_ids()]

    def steps(self, session_id: str, *, decode: bool = False) -> list[dict[str, Any]]:
        """Every step of a session as stored, oldest first per invocation (images: format and size, base64)."""
        self.session(session_id, count_steps=False)
        out = []
        for inv in pages(self.client.list_invocations, "invocationSummaries", sessionIdentifier=session_id):
            summaries = list(pages(self.client.list_invocation_steps, "invocationStepSummaries",
                                    sessionIdentifier=session_id, invocationIdentifier=inv["invocationId"]))
            for s in reversed(summaries):
                step = self.client.get_invocation_step(
                    sessionIdentifier=session_id, invocationIdentifier=inv["invocationId"],
                    invocationStepId=s["invocationStepId"],
                )["invocationStep"]
                blocks = []
                for b in step["payload"].get("contentBlocks", []):
                    if "text" in b:
                        blocks.append({"text": b["text"]})
                    elif "image" in b:
                        src = b["image"].get("source", {})
                        raw = src.get("bytes")
                        img: dict[str, Any] = {"format": b["image"].get("format")}
                        if raw is not None:
                            img.update(size=len(raw), bytes=base64.b64encode(raw).decode("ascii"))
                        else:
                            img["s3Location"] = src.get("s3Location")
                        blocks.append({"image": img})
                row: dict[str, Any] = {
                    "invocation_id": inv["invocationId"],
                    "invocation_description": inv.get("description"),
                    "step_id": step["invocationStepId"],
                    "time": _iso(step["invocationStepTime"]),
                    "content_blocks": blocks,
                }
                if decode:
                    row["decoded"] = self._decoded(step["payload"])
                out.append(row)
        return out

    def _decoded(self, payload: dict[str, Any]) -> Any:
        from ..saver import decode_step

        d = decode_step(payload)
        return None if d is None else self._loads(d)

    def _loads(self, d: Any) -> Any:
        """A decoded step with its typed values turned into readable data."""
        if isinstance(d, dict):
            return {k: self._loads(v) for k, v in d.items()}
        if isinstance(d, list):
            return [self._loads(v) for v in d]
        if isinstance(d, tuple) and len(d) == 2 and isinstance(d[0], str) and isinstance(d[1], bytes):
            try:
                return plain(self.saver.serde.loads_typed(d))
            except Exception as e:  # noqa: BLE001 - shown, not raised
                return {"$undecodable": d[0], "error": str(e)}
        if isinstance(d, tuple):
            return [self._loads(v) for v in d]
        return d

    # ------------------------------------------------------------------ threads
    def _records(self, thread_id: str | None, limit: int | None = None) -> list[_Light]:
        """The checkpoints of a thread (of every thread with None), newest first per thread, decoded only as far as
        a history needs: the checkpoint without its channel values, the metadata, the writes' channels (and the
        interrupts' values). Large states are not deserialized."""
        saver = self.saver
        loads = saver.serde.loads_typed
        cursor = saver._native.list(thread_id, None, None)
        out: list[_Light] = []
        while (limit is None or len(out) < limit) and (batch := cursor.next(256 if limit is None else min(256, limit))):
            for tid, ns, cid, parent, cp_typed, metadata_json, values, writes in batch:
                checkpoint = loads(cp_typed)
                channels = [k for k, _ in values] if values is not None else list(checkpoint.get("channel_values", {}))
                checkpoint.pop("channel_values", None)
                out.append(_Light(
                    thread_id=tid, ns=ns, checkpoint_id=cid, parent_id=parent, checkpoint=checkpoint,
                    channels=channels, metadata=saver._metadata(metadata_json),
                    writes=[(task, ch, loads(v) if ch == INTERRUPT else None) for task, ch, v, _, _ in writes],
                ))
        return out if limit is None else out[:limit]

    def threads(self) -> list[dict[str, Any]]:
        """Every LangGraph thread of the store: checkpoints, namespaces, generations (sessions), last update, and the
        interrupt it waits on."""
        found: dict[str, dict[str, Any]] = {}
        for r in self._records(None):
            info = found.setdefault(r.thread_id, {"thread_id": r.thread_id, "checkpoints": 0, "namespaces": set(),
                                                  "updated": None, "latest_checkpoint": None, "pending_interrupts": []})
            info["checkpoints"] += 1
            info["namespaces"].add(r.ns)
            ts = r.checkpoint.get("ts")
            if ts and (info["updated"] is None or ts > info["updated"]):
                info["updated"] = ts
            if r.ns == "" and info["latest_checkpoint"] is None:
                info["latest_checkpoint"] = r.checkpoint_id
                info["pending_interrupts"] = interrupts(r.writes, pending=True)
        sessions: dict[str, list[str]] = {}
        for sid in self.session_ids():
            md = self.client.get_session(sessionIdentifier=sid).get("sessionMetadata") or {}
            sessions.setdefault(md.get(META_THREAD) or sid, []).append(sid)
        out = []
        for tid in sorted(found):
            info = found[tid]
            info["namespaces"] = sorted(info["namespaces"])
            info["sessions"] = sessions.get(tid, [])
            info["generations"] = max(1, len(info["sessions"]))
            out.append(info)
        return out

    def head(self, thread_id: str) -> dict[str, Any]:
        """The thread's newest checkpoint id (None: no thread): what a page polls to learn that something changed."""
        batch = self.saver._native.list(thread_id, None, None).next(1)
        return {"thread_id": thread_id, "newest": batch[0][2] if batch else None}

    def _thread(self, thread_id: str, limit: int | None = None) -> list[_Light]:
        records = self._records(thread_id, limit)
        if not records:
            raise InspectError(f"no thread {thread_id!r} in this store (bedrock-sessions threads lists them)")
        return records

    def resolve_checkpoint(self, thread_id: str, ref: str, records: list[_Light] | None = None) -> _Light:
        """The checkpoint a reference names: its id, or a unique prefix or suffix of it (``#e8dc185d``)."""
        records = records if records is not None else self._thread(thread_id)
        want = ref.lstrip("#").lower()
        hits = [r for r in records if r.checkpoint_id == want]
        if not hits:
            hits = [r for r in records if r.checkpoint_id.startswith(want) or r.checkpoint_id.endswith(want)]
        if not hits:
            raise InspectError(f"thread {thread_id!r} has no checkpoint {ref!r}")
        if len({r.checkpoint_id for r in hits}) > 1:
            ids = ", ".join(sorted({r.checkpoint_id for r in hits})[:5])
            raise InspectError(f"{ref!r} names several checkpoints of thread {thread_id!r}: {ids}")
        return hits[0]

    def history(self, thread_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The thread's checkpoints, newest first, every namespace: step, source, next nodes, writes per task,
        interrupts (``waiting``: not resumed), parent, and how many checkpoints branch from each (a fork: more than
        one). ``limit``: the newest ones only (their children counts then cover only those)."""
        records = self._thread(thread_id, limit)
        children: dict[str, int] = {}
        for r in records:
            if r.parent_id:
                children[r.parent_id] = children.get(r.parent_id, 0) + 1
        return [self._row(r, children) for r in records]

    def _row(self, r: _Light, children: dict[str, int]) -> dict[str, Any]:
        writes: dict[str, list[str]] = {}
        for task, ch, _ in r.writes:
            writes.setdefault(task, []).append(ch)
        md = r.metadata or {}
        return {
            "checkpoint_id": r.checkpoint_id,
            "checkpoint_ns": r.ns,
            "parent_checkpoint_id": r.parent_id,
            "step": md.get("step"),
            "source": md.get("source"),
            "ts": r.checkpoint.get("ts"),
            "next": next_nodes(r.checkpoint, r.channels),
            "writes": writes,
            "interrupts": interrupts(r.writes),
            "waiting": bool(interrupts(r.writes, pending=True)),
            "children": children.get(r.checkpoint_id, 0),
            "fork": children.get(r.checkpoint_id, 0) > 1,
        }

    def _full(self, thread_id: str, ns: str, checkpoint_id: str) -> Any:
        return self.saver.get_tuple(
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}})

    def state(self, thread_id: str, checkpoint: str | None = None) -> dict[str, Any]:
        """A checkpoint's state (the newest of the root namespace by default), values as a person reads them. A
        full checkpoint id of the root namespace is read directly; a short one is looked up in the history."""
        t = None
        if checkpoint is None:
            newest = self._records(thread_id, 64)
            r = next((x for x in newest if x.ns == ""), None)
            if r is None:
                records = self._thread(thread_id)
                r = next((x for x in records if x.ns == ""), records[0])
            t = self._full(thread_id, r.ns, r.checkpoint_id)
        elif len(checkpoint) == 36:
            t = self._full(thread_id, "", checkpoint.lower())
        if t is None:
            r = self.resolve_checkpoint(thread_id, checkpoint or "", None) if checkpoint else None
            if r is None:
                raise InspectError(f"no thread {thread_id!r} in this store (bedrock-sessions threads lists them)")
            t = self._full(thread_id, r.ns, r.checkpoint_id)
            if t is None:  # deleted in between
                raise InspectError(f"thread {thread_id!r} has no checkpoint {r.checkpoint_id!r} any more")
        conf = t.config["configurable"]
        light = _Light(
            thread_id=thread_id, ns=conf["checkpoint_ns"], checkpoint_id=conf["checkpoint_id"],
            parent_id=t.parent_config["configurable"]["checkpoint_id"] if t.parent_config else None,
            checkpoint=t.checkpoint, channels=list(t.checkpoint.get("channel_values", {})),
            metadata=dict(t.metadata or {}), writes=list(t.pending_writes or []),
        )
        row = self._row(light, {})
        del row["children"], row["fork"]
        row["thread_id"] = thread_id
        row["values"] = {k: plain(v) for k, v in user_channels(t.checkpoint.get("channel_values", {})).items()}
        row["metadata"] = plain(dict(t.metadata or {}))
        row["pending_writes"] = [{"task_id": task, "channel": ch, "value": plain(v)} for task, ch, v in t.pending_writes or []]
        return row

    def diff(self, thread_id: str, a: str, b: str) -> dict[str, Any]:
        """What changed from checkpoint ``a`` to ``b``: channels added, removed, changed (a list that grew shows the
        items appended)."""
        sa, sb = self.state(thread_id, a), self.state(thread_id, b)
        va, vb = sa["values"], sb["values"]
        changed: dict[str, Any] = {}
        for ch in sorted(set(va) & set(vb)):
            x, y = va[ch], vb[ch]
            if x == y:
                continue
            if isinstance(x, list) and isinstance(y, list) and y[: len(x)] == x:
                changed[ch] = {"appended": y[len(x):]}
            elif isinstance(x, list) and isinstance(y, list) and x[: len(y)] == y:
                changed[ch] = {"removed_from_end": x[len(y):]}
            elif isinstance(x, dict) and isinstance(y, dict):
                changed[ch] = {
                    "added": {k: y[k] for k in y.keys() - x.keys()},
                    "removed": {k: x[k] for k in x.keys() - y.keys()},
                    "changed": {k: {"from": x[k], "to": y[k]} for k in x.keys() & y.keys() if x[k] != y[k]},
                }
            else:
                changed[ch] = {"from": x, "to": y}
        return {
            "thread_id": thread_id,
            "a": {"checkpoint_id": sa["checkpoint_id"], "step": sa["step"], "next": sa["next"]},
            "b": {"checkpoint_id": sb["checkpoint_id"], "step": sb["step"], "next": sb["next"]},
            "added": {ch: vb[ch] for ch in sorted(set(vb) - set(va))},
            "removed": {ch: va[ch] for ch in sorted(set(va) - set(vb))},
            "changed": changed,
        }
