"""Moving threads between stores: ``export`` (JSON Lines), ``import``, ``copy`` (any backend to any backend) and
``migrate`` (threads of the replaced saver's layout to ours).

A thread travels as its checkpoints, oldest first, each with its pending writes, every value in LangGraph's own
serialized form (``serde.dumps_typed``, base64): what is imported is what was exported, bit for bit, so the history
LangGraph reads back is the same. Writes go before their checkpoint, and a checkpoint already in the target is
skipped with its writes: an interrupted import or copy resumes where it stopped, and running one twice adds nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from ._inspector import pages as _pages
from ._values import plain

FORMAT = "bedrock-sessions/thread-export"
SESSION_FORMAT = "bedrock-sessions/session-export"
VERSION = 1
IMPORTED_FROM = "bedrock-sessions:imported-from"

Progress = Callable[[int, int], None]


def _typed(serde: Any, v: Any) -> list[str]:
    tag, data = serde.dumps_typed(v)
    return [tag, base64.b64encode(data).decode("ascii")]


def _untyped(serde: Any, pair: list[str]) -> Any:
    return serde.loads_typed((pair[0], base64.b64decode(pair[1])))


def thread_records(saver: Any, thread_id: str, *, decoded: bool = False) -> list[dict[str, Any]]:
    """A thread's checkpoints, oldest first (parents before children), as export records."""
    tuples = list(saver.list({"configurable": {"thread_id": thread_id}}))
    out = []
    for t in reversed(tuples):
        conf = t.config["configurable"]
        rec: dict[str, Any] = {
            "kind": "checkpoint",
            "thread_id": thread_id,
            "checkpoint_ns": conf["checkpoint_ns"],
            "checkpoint_id": conf["checkpoint_id"],
            "parent_checkpoint_id": t.parent_config["configurable"]["checkpoint_id"] if t.parent_config else None,
        }
        writes = list(t.pending_writes or [])
        if decoded:
            rec["metadata"] = plain(dict(t.metadata or {}))
            rec["values"] = plain(t.checkpoint.get("channel_values", {}))
            rec["writes"] = [[task, ch, plain(v)] for task, ch, v in writes]
        else:
            rec["metadata"] = _typed(saver.serde, dict(t.metadata or {}))
            rec["checkpoint"] = _typed(saver.serde, t.checkpoint)
            rec["writes"] = [[task, ch, _typed(saver.serde, v)] for task, ch, v in writes]
        out.append(rec)
    return out


def all_thread_ids(saver: Any) -> list[str]:
    return sorted({t.config["configurable"]["thread_id"] for t in saver.list(None)})


def export_threads(
    saver: Any, thread_ids: Iterable[str], out: IO[str], *, decoded: bool = False, progress: Progress | None = None
) -> int:
    """Writes the threads as JSON Lines (a header line, then one line per checkpoint); returns the checkpoints."""
    ids = list(thread_ids)
    out.write(json.dumps({"format": FORMAT, "version": VERSION, "decoded": decoded, "threads": ids}) + "\n")
    records = [r for tid in ids for r in thread_records(saver, tid, decoded=decoded)]
    for i, rec in enumerate(records, 1):
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        if progress:
            progress(i, len(records))
    return len(records)


class ImportError_(ValueError):
    """A file that is not an export of ours, or a decoded export (for reading, not for importing)."""


def read_export(lines: Iterable[str]) -> tuple[str, Iterator[dict[str, Any]]]:
    """(the export's format, its records) of a thread or session export."""
    it = iter(lines)
    head_line = next(it, "")
    try:
        head = json.loads(head_line)
    except ValueError:
        head = None
    if not isinstance(head, dict) or head.get("format") not in (FORMAT, SESSION_FORMAT):
        raise ImportError_(f"not a bedrock-sessions export (its first line should name {FORMAT!r} or {SESSION_FORMAT!r})")
    if head["format"] == SESSION_FORMAT:
        return SESSION_FORMAT, _session_records(head, it)
    return FORMAT, _records(head, it)


def read_records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The checkpoint records of a thread export."""
    fmt, records = read_export(lines)
    if fmt != FORMAT:
        raise ImportError_("a session export, not a thread export")
    return records


def _lines(head: dict[str, Any], it: Iterator[str], kinds: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """The records after an export's header line, each of one of ``kinds``."""
    if head.get("version") != VERSION:
        raise ImportError_(f"export version {head.get('version')!r}: this version reads {VERSION}")
    for n, line in enumerate(it, 2):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise ImportError_(f"line {n} is not JSON: {e}") from e
        if rec.get("kind") not in kinds:
            raise ImportError_(f"line {n}: unknown record kind {rec.get('kind')!r}")
        yield rec


def _session_records(head: dict[str, Any], it: Iterator[str]) -> Iterator[dict[str, Any]]:
    return _lines(head, it, ("session", "step"))


def _records(head: dict[str, Any], it: Iterator[str]) -> Iterator[dict[str, Any]]:
    if head.get("decoded"):
        raise ImportError_("a decoded export is for reading: export again without --decoded to import it")
    return _lines(head, it, ("checkpoint",))


def export_sessions(
    inspector: Any, session_ids: Iterable[str], out: IO[str], *, decoded: bool = False,
    progress: Progress | None = None,
) -> int:
    """Sessions as they are stored (any application's data, not only LangGraph's): a line per session (status,
    metadata, tags), then a line per step (its invocation, id, time, content blocks; images base64). Returns the
    steps written."""
    ids = list(session_ids)
    out.write(json.dumps({"format": SESSION_FORMAT, "version": VERSION, "decoded": decoded, "sessions": ids}) + "\n")
    n = 0
    for i, sid in enumerate(ids, 1):
        info = inspector.session(sid, count_steps=False)
        out.write(json.dumps({"kind": "session", **info}, ensure_ascii=False, default=str) + "\n")
        for step in inspector.steps(sid, decode=decoded):
            out.write(json.dumps({"kind": "step", "session_id": sid, **step}, ensure_ascii=False, default=str) + "\n")
            n += 1
        if progress:
            progress(i, len(ids))
    return n


def import_sessions(client: Any, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recreates exported sessions: each as a new session (the service names sessions) whose metadata names the
    old one (``bedrock-sessions:imported-from``), with the same invocations and steps (ids, times, content). A
    second run finds the sessions it made and adds only what is missing. An ENDED session is ended again."""
    made = {s["sessionMetadata"][IMPORTED_FROM]: s["sessionId"]
            for s in _sessions(client) if IMPORTED_FROM in (s.get("sessionMetadata") or {})}
    results: dict[str, dict[str, Any]] = {}
    existing: dict[tuple[str, str], set[str]] = {}
    pending_end: list[str] = []
    for rec in records:
        if rec["kind"] == "session":
            old = rec["session_id"]
            new = made.get(old)
            if new is None:
                new = client.create_session(sessionMetadata={**(rec.get("metadata") or {}), IMPORTED_FROM: old},
                                            **({"tags": rec["tags"]} if rec.get("tags") else {}))["sessionId"]
                made[old] = new
            results[old] = {"from": old, "to": new, "steps": 0, "written": 0}
            if rec.get("status") == "ENDED":
                pending_end.append(new)
            continue
        old = rec["session_id"]
        new = made[old]
        inv = rec["invocation_id"]
        if (new, inv) not in existing:
            try:
                client.create_invocation(sessionIdentifier=new, invocationId=inv,
                                         **({"description": rec["invocation_description"]}
                                            if rec.get("invocation_description") else {}))
                existing[(new, inv)] = set()
            except Exception as e:  # noqa: BLE001 - it exists: a second run
                if type(e).__name__ != "ConflictException":
                    raise
                existing[(new, inv)] = {
                    s["invocationStepId"]
                    for s in _pages(client.list_invocation_steps, "invocationStepSummaries",
                                    sessionIdentifier=new, invocationIdentifier=inv)
                }
        results[old]["steps"] += 1
        if rec["step_id"] in existing[(new, inv)]:
            continue
        blocks = []
        for b in rec["content_blocks"]:
            if "text" in b:
                blocks.append({"text": b["text"]})
            else:
                img = b["image"]
                src = {"bytes": base64.b64decode(img["bytes"])} if "bytes" in img else {"s3Location": img["s3Location"]}
                blocks.append({"image": {"format": img["format"], "source": src}})
        client.put_invocation_step(sessionIdentifier=new, invocationIdentifier=inv, invocationStepId=rec["step_id"],
                                   invocationStepTime=rec["time"], payload={"contentBlocks": blocks})
        existing[(new, inv)].add(rec["step_id"])
        results[old]["written"] += 1
    for sid in pending_end:
        if client.get_session(sessionIdentifier=sid)["sessionStatus"] == "ACTIVE":
            client.end_session(sessionIdentifier=sid)
    return list(results.values())


def _put_record(saver: Any, rec: dict[str, Any], thread_id: str) -> bool:
    """Puts one checkpoint and its writes unless the target has it; True when written."""
    conf = {"thread_id": thread_id, "checkpoint_ns": rec["checkpoint_ns"]}
    if saver.get_tuple({"configurable": {**conf, "checkpoint_id": rec["checkpoint_id"]}}) is not None:
        return False
    serde = saver.serde
    checkpoint = _untyped(serde, rec["checkpoint"])
    metadata = _untyped(serde, rec["metadata"])
    at = {"configurable": {**conf, "checkpoint_id": rec["checkpoint_id"]}}
    by_task: dict[str, list[tuple[str, Any]]] = {}
    for task, ch, v in rec["writes"]:
        by_task.setdefault(task, []).append((ch, _untyped(serde, v)))
    from langgraph.checkpoint.base import WRITES_IDX_MAP

    for task, writes in by_task.items():
        # Regular writes in one call (their indexes 0, 1...), each special write (interrupt, resume...) on its own.
        regular = [w for w in writes if w[0] not in WRITES_IDX_MAP]
        if regular:
            saver.put_writes(at, regular, task)
        for w in writes:
            if w[0] in WRITES_IDX_MAP:
                saver.put_writes(at, [w], task)
    parent = {"configurable": {**conf, "checkpoint_id": rec["parent_checkpoint_id"]}} if rec["parent_checkpoint_id"] \
        else {"configurable": conf}
    saver.put(parent, checkpoint, metadata, checkpoint.get("channel_versions", {}))
    return True


def import_threads(
    saver: Any, records: Iterable[dict[str, Any]], *, rename: dict[str, str] | None = None,
    progress: Progress | None = None, total: int = 0,
) -> tuple[int, int]:
    """Puts the records' checkpoints into ``saver`` (a thread under ``rename[thread]`` when given); returns
    (written, already there)."""
    written = skipped = 0
    for i, rec in enumerate(records, 1):
        tid = (rename or {}).get(rec["thread_id"], rec["thread_id"])
        if _put_record(saver, rec, tid):
            written += 1
        else:
            skipped += 1
        if progress:
            progress(i, max(total, i))
    return written, skipped


def copy_threads(
    source: Any, target: Any, thread_ids: Iterable[str], *, rename: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Copies threads from one saver to another (any backends): (written, already there)."""
    records = [r for tid in thread_ids for r in thread_records(source, tid)]
    return import_threads(target, records, rename=rename, progress=progress, total=len(records))


MIGRATED_FROM = "bedrock-sessions:migrated-from"
META_LAYOUT = "langgraph:layout"


def _sessions(client: Any) -> Iterator[dict[str, Any]]:
    token = None
    while True:
        page = client.list_sessions(maxResults=1000, **({"nextToken": token} if token else {}))
        for s in page.get("sessionSummaries", []):
            yield client.get_session(sessionIdentifier=s["sessionId"])
        token = page.get("nextToken")
        if not token:
            return


def _is_legacy(client: Any, session_id: str) -> bool:
    """Whether the session holds a thread of the replaced saver (langgraph-checkpoint-aws's layout: each step a JSON
    object with its ``step_type``, CHECKPOINTS or WRITES)."""
    for inv in client.list_invocations(sessionIdentifier=session_id, maxResults=5).get("invocationSummaries", []):
        steps = client.list_invocation_steps(
            sessionIdentifier=session_id, invocationIdentifier=inv["invocationId"], maxResults=1
        ).get("invocationStepSummaries", [])
        for s in steps:
            payload = client.get_invocation_step(
                sessionIdentifier=session_id, invocationIdentifier=inv["invocationId"],
                invocationStepId=s["invocationStepId"],
            )["invocationStep"]["payload"]
            texts = [b["text"] for b in payload.get("contentBlocks", []) if "text" in b]
            try:
                head = json.loads(texts[0]) if texts else None
            except ValueError:
                head = None
            return isinstance(head, dict) and head.get("step_type") in ("CHECKPOINTS", "WRITES")
    return False


def migrate_threads(
    saver: Any, client: Any, session_ids: Iterable[str] | None = None, *, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """Moves threads of the replaced saver's layout (a thread id that is its session's id) to ours: each into a new
    thread (a new session named by its id, which LangGraph then uses), its whole history carried. The new session
    names the old one in its metadata (``bedrock-sessions:migrated-from``), so a second run continues the same
    migration (an interrupted one resumes; a finished one adds nothing). The old session is left as it was."""
    sessions = list(_sessions(client))
    done = {s["sessionMetadata"][MIGRATED_FROM]: s["sessionId"]
            for s in sessions if MIGRATED_FROM in (s.get("sessionMetadata") or {})}
    if session_ids is None:
        candidates = [s["sessionId"] for s in sessions
                      if not (s.get("sessionMetadata") or {}).get(META_LAYOUT)
                      and MIGRATED_FROM not in (s.get("sessionMetadata") or {})
                      and _is_legacy(client, s["sessionId"])]
    else:
        candidates = list(session_ids)
        for sid in candidates:
            if not _is_legacy(client, sid):
                raise ImportError_(f"session {sid!r} holds no thread of langgraph-checkpoint-aws's layout")
    out = []
    for sid in candidates:
        new = done.get(sid) or saver.create_thread(metadata={MIGRATED_FROM: sid})
        records = thread_records(saver, sid)
        written, skipped = import_threads(saver, records, rename={sid: new}, progress=progress, total=len(records))
        out.append({"from": sid, "to": new, "checkpoints": len(records), "written": written, "skipped": skipped})
    return out
