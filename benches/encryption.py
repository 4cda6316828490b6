#!/usr/bin/env python
"""What encryption at rest costs the embedded store (docs/encryption.md): the same work on a store without it and on
one with a local keyring whose default key encrypts every session (a data key per session, unwrapped once and cached;
AES-256-GCM on every payload, metadata value and description).

- ``turn``: a turn of the benchmarks' 3-node graph (``_graphs.linear_graph``: retrieve, think, answer over a chat
  window; 5 checkpoints and their writes a turn) through ``BedrockSessionSaver``, ``--turns`` turns on one thread;
- ``put 1 MB (saver)``: ``saver.put`` of a 1 MB state (1,024 distinct 1 KB strings), ``--puts`` times;
- ``put 1 MB (API)``: ``put_invocation_step`` of a 1 MB text block through the session API, ``--puts`` times.

Each on a SQLite file with the store's default durability (``full``: an fsync per commit), with ``normal`` (no fsync:
the CPU cost shows more), and in memory. Medians of ``--runs`` runs taken round-robin over the cases (so that a slow
spell of the machine hits them alike), in ms, and the ratio encrypted / clear of the same run. Every run checks its
result (the graph's final state, the last put read back) and that the encrypted file holds none of a turn's text.

    python benches/encryption.py               # 7 runs of 50 turns and 5 puts
    python benches/encryption.py --quick       # 1 run of 5 turns and 1 put (a smoke test)

Install the package in release mode first (``maturin build --release`` / ``pip install .``): a debug build inflates the
CPU costs. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _graphs as G  # noqa: E402
from langgraph.checkpoint.base import empty_checkpoint  # noqa: E402

from bedrock_sessions import BedrockSessionSaver, SessionClient  # noqa: E402

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
STORES = ("file (durability full)", "file (durability normal)", "memory")
WORKLOADS = ("turn", "put 1 MB (saver)", "put 1 MB (API)")


def keyring(folder: str) -> str:
    path = os.path.join(folder, "keyring.json")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        json.dump({"keys": {KEY: base64.b64encode(os.urandom(32)).decode()}, "default": KEY}, f)
    return path


def open_client(folder: str, store: str, encrypted: bool, ring: str) -> tuple[SessionClient, Path | None]:
    options: dict[str, Any] = {"max_steps_per_session": 20000}
    if encrypted:
        options["keyring"] = ring
    if store == "memory":
        return SessionClient.memory(**options), None
    db = Path(folder) / f"{uuid.uuid4().hex}.db"
    options["durability"] = "full" if "full" in store else "normal"
    return SessionClient.local(db, **options), db


def cfg(thread: str, checkpoint_id: str | None = None) -> Any:
    c: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ""}
    if checkpoint_id:
        c["checkpoint_id"] = checkpoint_id
    return {"configurable": c}


def time_turns(client: SessionClient, db: Path | None, turns: int, encrypted: bool) -> float:
    app = G.linear_graph().compile(checkpointer=BedrockSessionSaver(client=client))
    for i in range(2):  # warm-up thread
        app.invoke(G.linear_input(i), cfg("warm"))
    thread = cfg("timed")
    start = time.perf_counter()
    out = None
    for i in range(turns):
        out = app.invoke(G.linear_input(i), thread)
    elapsed = time.perf_counter() - start
    expected = G.linear_expected(turns)
    assert out == expected and app.get_state(thread).values == expected, "the graph's final state is wrong"
    if db is not None:
        # The saver keeps state as base64 in JSON records: look for the answer's text and its base64 forms.
        plain = G.text(f"answer:{turns}", 300)[:60].encode()
        forms = [plain] + [base64.b64encode(b"\0" * pad + plain)[4:-4] for pad in range(3)]
        data = b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())
        seen = any(f in data for f in forms)
        assert seen != encrypted, f"plaintext {'found in an encrypted' if seen else 'not found in a clear'} store"
    return elapsed / turns


def time_saver_puts(client: SessionClient, puts: int) -> float:
    saver = BedrockSessionSaver(client=client)

    def put(thread: str, docs: list[str], parent: str | None, version: Any, step: int) -> tuple[str, Any]:
        cp = empty_checkpoint()
        v = saver.get_next_version(version, None)
        cp["channel_values"] = {"docs": docs}
        cp["channel_versions"] = {"docs": v}
        cp["updated_channels"] = ["docs"]
        saver.put(cfg(thread, parent), cp, {"source": "update", "step": step, "parents": {}}, {"docs": v})
        return cp["id"], v

    put("warm", G.big_docs(1.0, seed=7), None, None, 0)
    docs = [G.big_docs(1.0, seed=1000 + r) for r in range(puts)]
    parent, version = None, None
    start = time.perf_counter()
    for r, d in enumerate(docs):
        parent, version = put("timed", d, parent, version, r)
    elapsed = time.perf_counter() - start
    tup = saver.get_tuple(cfg("timed"))
    assert tup is not None and tup.checkpoint["channel_values"]["docs"] == docs[-1], "the last put reads back wrong"
    return elapsed / puts


def time_api_puts(client: SessionClient, puts: int) -> float:
    sid = client.create_session()["sessionId"]
    inv = client.create_invocation(sessionIdentifier=sid)["invocationId"]
    bodies = [G.text(f"mb:{r}", 1 << 20) for r in range(puts + 1)]
    now = "2026-12-05T10:00:00Z"
    client.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=inv, invocationStepTime=now,
                               payload={"contentBlocks": [{"text": bodies[0]}]})
    start = time.perf_counter()
    last = None
    for body in bodies[1:]:
        last = client.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=inv, invocationStepTime=now,
                                          payload={"contentBlocks": [{"text": body}]})["invocationStepId"]
    elapsed = time.perf_counter() - start
    got = client.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=inv, invocationStepId=last)
    assert got["invocationStep"]["payload"]["contentBlocks"][0]["text"] == bodies[-1], "the last put reads back wrong"
    return elapsed / puts


def run_case(folder: str, ring: str, store: str, encrypted: bool, turns: int, puts: int) -> dict[str, float]:
    out = {}
    client, db = open_client(folder, store, encrypted, ring)
    with client:
        out["turn"] = time_turns(client, db, turns, encrypted)
    for name, fn in (("put 1 MB (saver)", time_saver_puts), ("put 1 MB (API)", time_api_puts)):
        client, _ = open_client(folder, store, encrypted, ring)
        with client:
            out[name] = fn(client, puts)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--turns", type=int, default=50)
    p.add_argument("--puts", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="1 run of 5 turns and 1 put")
    p.add_argument("--json", help="write the figures to this file")
    args = p.parse_args()
    runs, turns, puts = (1, 5, 1) if args.quick else (args.runs, args.turns, args.puts)
    samples: dict[tuple[str, bool, str], list[float]] = {}
    ratios: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-encryption-") as folder:
        ring = keyring(folder)
        for r in range(runs):
            for store in STORES:
                # Alternate which case goes first, so that neither always meets a warmer machine.
                order = (False, True) if r % 2 == 0 else (True, False)
                got = {enc: run_case(folder, ring, store, enc, turns, puts) for enc in order}
                for w in WORKLOADS:
                    for enc in (False, True):
                        samples.setdefault((store, enc, w), []).append(got[enc][w])
                    ratios.setdefault((store, w), []).append(got[True][w] / got[False][w])
    med = {k: statistics.median(v) for k, v in samples.items()}
    ratio = {k: statistics.median(v) for k, v in ratios.items()}
    print(f"runs {runs}, {turns} turns and {puts} puts a run; medians in ms; ratio = encrypted / clear (median of "
          "the runs' ratios)")
    print(f"{'store':<26} {'workload':<18} {'clear':>9} {'encrypted':>10} {'ratio':>7}")
    for store in STORES:
        for w in WORKLOADS:
            print(f"{store:<26} {w:<18} {med[(store, False, w)] * 1e3:>9.3f} {med[(store, True, w)] * 1e3:>10.3f} "
                  f"{ratio[(store, w)]:>6.3f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "turns": turns, "puts": puts,
                       "ms": {f"{s} | {w} | {'encrypted' if e else 'clear'}": v * 1e3 for (s, e, w), v in med.items()},
                       "ratio": {f"{s} | {w}": v for (s, w), v in ratio.items()}}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
