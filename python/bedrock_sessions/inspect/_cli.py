"""The inspector's subcommands of ``bedrock-sessions`` (``serve`` is in ``bedrock_sessions.cli``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from typing import Any

from . import _render as render
from . import _transfer as transfer
from ._backend import Store, StoreError
from ._inspector import Inspector, InspectError

COMMANDS = ("sessions", "steps", "threads", "history", "show", "diff", "export", "import", "copy", "migrate", "watch",
            "ui")


def _store_options(p: argparse.ArgumentParser, prefix: str = "", what: str = "the store") -> None:
    g = p.add_argument_group(f"{what} (one of)")
    g.add_argument(f"--{prefix}db", metavar="FILE", help=f"{what}: the SQLite file of an embedded store")
    g.add_argument(f"--{prefix}endpoint", metavar="URL", help=f"{what}: a server of the session API (bedrock-sessions serve)")
    g.add_argument(f"--{prefix}region", help=f"{what}: Amazon Bedrock in this region")
    g.add_argument(f"--{prefix}profile", help=f"{what}: the AWS profile (credentials, region)")
    g.add_argument(f"--{prefix}thread-index", metavar="INDEX",
                   help='a thread index on Bedrock: "dynamodb:<table>" or an index session id (docs/saver.md)')
    g.add_argument(f"--{prefix}keyring", metavar="FILE",
                   help=f"{what}: the keyring of an embedded store encrypted at rest (docs/encryption.md)")


def _store(args: argparse.Namespace, prefix: str = "", create: bool = False) -> Store:
    get = lambda name: getattr(args, prefix.replace("-", "_") + name)  # noqa: E731
    return Store(db=get("db"), endpoint=get("endpoint"), region=get("region"), profile=get("profile"),
                 thread_index=get("thread_index"), keyring=get("keyring"), create=create)


def add_commands(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    _store_options(common)
    common.add_argument("--json", action="store_true", help="print JSON (JSON Lines for watch) instead of tables")

    sub.add_parser("sessions", parents=[common], help="the store's sessions: status, times, steps used, tags")
    p = sub.add_parser("steps", parents=[common], help="a session's steps as stored (the raw model)")
    p.add_argument("session", help="session id or ARN")
    p.add_argument("--decode", action="store_true", help="also decode LangGraph steps (checkpoints, writes)")
    sub.add_parser("threads", parents=[common], help="LangGraph threads: generations, checkpoints, pending interrupt")
    p = sub.add_parser("history", parents=[common], help="a thread's checkpoints, newest first (forks shown)")
    p.add_argument("thread")
    p = sub.add_parser("show", parents=[common], help="a checkpoint's state, decoded (default: the newest)")
    p.add_argument("thread")
    p.add_argument("checkpoint", nargs="?", help="checkpoint id, or a unique prefix or #suffix of it")
    p = sub.add_parser("diff", parents=[common], help="what changed from checkpoint A to B")
    p.add_argument("thread")
    p.add_argument("a")
    p.add_argument("b")
    p = sub.add_parser("export", parents=[common],
                       help="threads (or --sessions) to JSON Lines (importable; --decoded for reading)")
    p.add_argument("threads", nargs="*", help="thread ids, or session ids with --sessions (default: all)")
    p.add_argument("--sessions", action="store_true", help="sessions as stored (any data), not LangGraph threads")
    p.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    p.add_argument("--decoded", action="store_true", help="values as people read them (not importable)")
    p = sub.add_parser("import", parents=[common], help="threads or sessions from an export file into the store")
    p.add_argument("file", help="an export file ('-': stdin)")
    p.add_argument("--rename", action="append", default=[], metavar="OLD=NEW", help="import thread OLD as NEW")
    p = sub.add_parser("copy", parents=[common], help="threads from the store to another (any backends)")
    p.add_argument("threads", nargs="*", help="thread ids (default: every thread)")
    _store_options(p, "to-", "the target")
    p.add_argument("--rename", action="append", default=[], metavar="OLD=NEW", help="copy thread OLD as NEW")
    p = sub.add_parser("migrate", parents=[common],
                       help="threads of langgraph-checkpoint-aws's layout to ours (each to a new thread id)")
    p.add_argument("sessions", nargs="*", help="the old threads' session ids (default: every one found)")
    p = sub.add_parser("watch", parents=[common], help="prints a thread's new checkpoints as they land")
    p.add_argument("thread")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between polls (default 0.5)")
    p.add_argument("--count", type=int, help="stop after this many new checkpoints")
    p.add_argument("--timeout", type=float, help="stop after this many seconds")
    p = sub.add_parser("ui", parents=[common], help="the web inspector of the store (a page in your browser)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")


def _renames(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        old, sep, new = p.partition("=")
        if not sep or not old or not new:
            raise InspectError(f"--rename takes OLD=NEW (got {p!r})")
        out[old] = new
    return out


def _history_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    out = []
    for r in rows:
        writes = [f"{task[:8]}: {', '.join(chs)}" for task, chs in r["writes"].items()]
        out.append([render.short(r["checkpoint_id"]), r["checkpoint_ns"] or "", r["step"], r["source"],
                    r["next"], writes, render.cell(r["interrupts"], 40), render.short(r["parent_checkpoint_id"]),
                    f"fork: {r['children']} branches" if r.get("fork") else ""])
    return out


HISTORY_COLUMNS = ["checkpoint", "ns", "step", "source", "next", "writes", "interrupt", "parent", ""]


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (StoreError, InspectError, transfer.ImportError_, OSError, ValueError) as e:
        print(f"bedrock-sessions {args.command}: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - the store's errors (access, throttling...) as one line
        if type(e).__module__.startswith("bedrock_sessions"):
            print(f"bedrock-sessions {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        raise


def _run(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "import":  # the file is read (and refused if it must be) before the target store is opened
        with contextlib.ExitStack() as stack:
            f = sys.stdin if args.file == "-" else stack.enter_context(open(args.file, encoding="utf-8"))
            fmt, recs = transfer.read_export(f)
            records = list(recs)
    ins = Inspector(_store(args, create=cmd in ("import",)).client())
    if cmd == "sessions":
        rows = ins.sessions()
        if args.json:
            render.block(rows)
        else:
            render.table(f"{len(rows)} sessions", ["session", "status", "created", "updated", "steps", "thread", "tags"],
                         [[r["session_id"], r["status"], r["created"], r["updated"], f"{r['steps']}/{r['quota']}",
                           r["thread_id"], r["tags"]] for r in rows])
    elif cmd == "steps":
        rows = ins.steps(args.session, decode=args.decode)
        if args.json:
            render.block(rows)
        else:
            for r in rows:
                render.heading(f"step {r['step_id']}  {r['time']}  invocation {r['invocation_id']}")
                for b in r["content_blocks"]:
                    if "text" in b:
                        print(f"  text: {render.cell(b['text'], 200)}")
                    else:
                        img = b["image"]
                        print(f"  image: {img.get('format')} {img.get('size', '?')} bytes")
                if args.decode and r.get("decoded") is not None:
                    print("  decoded: " + render.cell(json.dumps(r["decoded"], ensure_ascii=False, default=str), 400))
    elif cmd == "threads":
        rows = ins.threads()
        if args.json:
            render.block(rows)
        else:
            render.table(f"{len(rows)} threads", ["thread", "generations", "checkpoints", "updated", "waits on"],
                         [[r["thread_id"], r["generations"], r["checkpoints"], r["updated"],
                           render.cell(r["pending_interrupts"], 50)] for r in rows])
    elif cmd == "history":
        rows = ins.history(args.thread)
        if args.json:
            render.block(rows)
        else:
            render.table(f"thread {args.thread}: {len(rows)} checkpoints, newest first", HISTORY_COLUMNS,
                         _history_rows(rows))
    elif cmd == "show":
        st = ins.state(args.thread, args.checkpoint)
        if args.json:
            render.block(st)
        else:
            render.heading(f"thread {args.thread}, checkpoint {st['checkpoint_id']} (step {st['step']}, "
                           f"{st['source']}, {st['ts']})")
            print(f"  next: {', '.join(st['next']) or '(the end)'}")
            if st["interrupts"]:
                print(f"  waits on: {json.dumps(st['interrupts'], ensure_ascii=False)}")
            for ch, v in st["values"].items():
                render.heading(f"{ch}:")
                if render.is_messages(v):
                    render.messages(v)
                else:
                    render.block(v)
    elif cmd == "diff":
        d = ins.diff(args.thread, args.a, args.b)
        if args.json:
            render.block(d)
        else:
            render.heading(f"thread {args.thread}: {render.short(d['a']['checkpoint_id'])} (step {d['a']['step']}) → "
                           f"{render.short(d['b']['checkpoint_id'])} (step {d['b']['step']})")
            for ch, v in d["added"].items():
                print(f"+ {ch}: {render.cell(v, 200)}")
            for ch, v in d["removed"].items():
                print(f"- {ch}: {render.cell(v, 200)}")
            for ch, change in d["changed"].items():
                if "appended" in change and render.is_messages(change["appended"]):
                    print(f"~ {ch}: {len(change['appended'])} appended")
                    render.messages(change["appended"])
                else:
                    print(f"~ {ch}: {json.dumps(change, ensure_ascii=False, default=str)}")
            if not (d["added"] or d["removed"] or d["changed"]):
                print("(no change in the graph's channels)")
    elif cmd == "export":
        ids = args.threads or (ins.session_ids() if args.sessions else transfer.all_thread_ids(ins.saver))
        with contextlib.ExitStack() as stack:
            out = sys.stdout if args.output == "-" else stack.enter_context(open(args.output, "w", encoding="utf-8"))
            with render.Progress("export", enabled=args.output != "-") as progress:
                if args.sessions:
                    n = transfer.export_sessions(ins, ids, out, decoded=args.decoded, progress=progress)
                    what = "sessions", "steps"
                else:
                    n = transfer.export_threads(ins.saver, ids, out, decoded=args.decoded, progress=progress)
                    what = "threads", "checkpoints"
        print(f"exported {len(ids)} {what[0]}, {n} {what[1]}", file=sys.stderr)
    elif cmd == "import":
        if fmt == transfer.SESSION_FORMAT:
            results = transfer.import_sessions(ins.client, records)
            if args.json:
                render.block(results)
            else:
                render.table(f"{len(results)} sessions imported", ["old session", "new session", "steps", "written"],
                             [[r["from"], r["to"], r["steps"], r["written"]] for r in results])
            return 0
        with render.Progress("import") as progress:
            written, skipped = transfer.import_threads(ins.saver, records, rename=_renames(args.rename),
                                                       progress=progress, total=len(records))
        _report({"written": written, "already_there": skipped}, args.json)
    elif cmd == "copy":
        target = Inspector(_store(args, "to-", create=True).client())
        threads = args.threads or transfer.all_thread_ids(ins.saver)
        with render.Progress("copy") as progress:
            written, skipped = transfer.copy_threads(ins.saver, target.saver, threads, rename=_renames(args.rename),
                                                     progress=progress)
        _report({"threads": len(threads), "written": written, "already_there": skipped}, args.json)
    elif cmd == "migrate":
        with render.Progress("migrate") as progress:
            results = transfer.migrate_threads(ins.saver, ins.client, args.sessions or None, progress=progress)
        if args.json:
            render.block(results)
        else:
            render.table(f"{len(results)} threads migrated", ["old thread (session)", "new thread", "checkpoints",
                                                              "written", "already there"],
                         [[r["from"], r["to"], r["checkpoints"], r["written"], r["skipped"]] for r in results])
    elif cmd == "watch":
        return _watch(ins, args)
    elif cmd == "ui":
        return serve_ui(ins, args.host, args.port)
    return 0


def serve_ui(ins: Inspector, host: str, port: int) -> int:
    """Serves the web inspector until Ctrl-C."""
    from ._web import WebInspector

    with WebInspector(ins, host, port) as web:
        print(f"bedrock-sessions: the web inspector is at {web.url} (Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


def _report(counts: dict[str, int], as_json: bool) -> None:
    if as_json:
        render.block(counts)
    else:
        print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()))


def _watch(ins: Inspector, args: argparse.Namespace) -> int:
    """Polls the thread; prints each checkpoint that appears (oldest first), until --count, --timeout or Ctrl-C."""
    deadline = time.monotonic() + args.timeout if args.timeout else None
    seen: set[str] | None = None
    newest: str | None = None
    shown = 0
    try:
        while True:
            # The history is read again only when the thread's newest checkpoint changed.
            head = ins.head(args.thread)["newest"]
            if seen is not None and head == newest:
                if deadline is not None and time.monotonic() >= deadline:
                    return 0
                time.sleep(args.interval)
                continue
            newest = head
            try:
                rows = ins.history(args.thread)
            except InspectError:
                rows = []  # not there yet
            if seen is None:
                seen = {r["checkpoint_id"] for r in rows}
                if not args.json:
                    print(f"watching thread {args.thread} ({len(rows)} checkpoints so far; Ctrl-C stops)", flush=True)
            else:
                new = [r for r in reversed(rows) if r["checkpoint_id"] not in seen]
                for r in new:
                    seen.add(r["checkpoint_id"])
                    if args.json:
                        print(json.dumps(r, ensure_ascii=False, default=str), flush=True)
                    else:
                        line = _history_rows([r])[0]
                        print("  ".join(render.cell(v) for v in line if render.cell(v)), flush=True)
                    shown += 1
                    if args.count and shown >= args.count:
                        return 0
            if deadline is not None and time.monotonic() >= deadline:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0
