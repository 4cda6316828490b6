#!/usr/bin/env python
"""Benchmarks: our saver against the one it replaces and against LangGraph's own savers, in one process run.

    python benches/run.py                    # the full run (a few minutes on 2 cores)
    python benches/run.py --quick            # everything small (a smoke test: exits 1 on any error or wrong result)
    python benches/run.py --latency-ms 10 --json bench.json

Two groups, the same workloads (sync API and async API), each saver on a fresh thread, warm-up excluded:

- server group, through the local Bedrock session server (127.0.0.1, ``--latency-ms`` added to each request):
  ``old`` = langgraph-checkpoint-aws's BedrockSessionSaver (boto3) vs ``ours-http`` = our saver through the AWS SDK
  for Rust. Passes: timed (with latency), timed at zero latency (for the depth estimate), memory (zero latency).
- embedded group: ``ours-local`` (SQLite file) and ``ours-memory`` vs LangGraph's ``inmemory`` (InMemorySaver) and
  ``sqlite`` (SqliteSaver / AsyncSqliteSaver). Passes: timed, memory.

Metrics: wall time; requests counted by the server (total, per operation, max in flight); sequential depth
estimated as (wall - wall at zero latency) / latency; steps consumed and bytes stored (read from the store after the
section); tracemalloc peak (Python allocations only: the Rust core's and the in-process server's allocations are not
seen) and RSS growth (sampled every 2 ms, whole process, server included); then ratios ours/theirs. The issue's
targets are printed next to the measured ratios, for information: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import struct
import sys
import tempfile
import time
import traceback
from importlib import metadata as importlib_metadata
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _workloads as W  # noqa: E402
from _harness import (  # noqa: E402
    ALL_KINDS,
    DEFERRED_KINDS,
    MAX_STEPS,
    SERVER_DURABILITY,
    SERVER_KINDS,
    CallCounter,
    Env,
    Fixture,
    Meter,
)

SIZES = {
    "default": {"linear": 50, "fanout": 20, "hist_small": 100, "hist_big": 1000, "get_tuple": 20,
                "put_small": (1, 5), "put_big": (10, 2)},
    "quick": {"linear": 6, "fanout": 3, "hist_small": 40, "hist_big": 120, "get_tuple": 5,
              "put_small": (0.5, 1), "put_big": (2, 1)},
}
PAIRS = (("ours-http", "old"), ("ours-http-deferred", "old"), ("ours-local", "inmemory"), ("ours-local", "sqlite"),
         ("ours-local-deferred", "inmemory"), ("ours-local-deferred", "sqlite"), ("ours-memory", "inmemory"))
T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- running
def passes_for(wl: W.Workload, kind: str, args: argparse.Namespace) -> list[str]:
    if wl.passes is not None:
        return [p for p in wl.passes if p != "memory" or not args.no_memory]
    out = ["timed"]
    if kind in SERVER_KINDS and args.latency_ms > 0:
        out.append("zero")
    if not args.no_memory:
        out.append("memory")
    return out


def run_plan(wl: W.Workload, kinds: list[str], args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """The sections of one workload and API, in order: (saver, pass, repeat).

    The server group runs saver after saver. The embedded group's timed runs go round-robin over its savers,
    in alternating order, so that a slow spell of the machine (a shared VM's neighbours) falls on every saver
    alike instead of on all the repeats of one; its other passes follow."""
    # A read workload is skipped by the deferred savers: they read as the default ones do.
    active = [k for k in kinds if not (k in DEFERRED_KINDS and wl.fixture_thread)]
    server = [k for k in active if k in SERVER_KINDS]
    embedded = [k for k in active if k not in SERVER_KINDS]
    plan = [(k, p, 0) for k in server for p in passes_for(wl, k, args)]
    timed = [k for k in embedded if "timed" in passes_for(wl, k, args)]
    for i in range(max(1, args.repeat)):
        plan += [(k, "timed", i) for k in (timed if i % 2 == 0 else timed[::-1])]
    plan += [(k, p, 0) for k in embedded for p in passes_for(wl, k, args) if p != "timed"]
    return plan


def run_section(wl: W.Workload, kind: str, api: str, pass_: str, args: argparse.Namespace, tmpdir: str,
                fixture: Fixture | None) -> dict[str, Any]:
    latency = args.latency_ms / 1000.0 if pass_ == "timed" else 0.0
    rec: dict[str, Any] = {"workload": wl.key, "api": api, "kind": kind, "pass": pass_, "latency_s": latency,
                           "units": wl.n, "unit": wl.unit, "error": None}
    env = Env(kind, api, latency, tmpdir, fixture)
    counter = CallCounter()
    meter = Meter(env, counter, memory=(pass_ == "memory"))

    def finish(raw_digest: str, ctx: dict[str, Any]) -> None:
        rec["digest"] = raw_digest
        if pass_ == "timed":
            if fixture is not None and wl.fixture_thread:
                rec["storage"] = fixture.threads[wl.fixture_thread].get("storage", {})
            else:
                rec["storage"] = env.storage(wl.threads(ctx))

    def sync_body() -> None:
        counter.install(env.saver, "sync")
        ctx = wl.prepare(env)
        with meter:
            raw = wl.run(env, ctx)
            if kind in DEFERRED_KINDS:
                env.saver.flush()  # everything stored before the clock stops
        finish(wl.verify(env, ctx, raw), ctx)

    async def async_body() -> None:
        await env.astart()
        try:
            counter.install(env.saver, "async")
            ctx = await wl.aprepare(env)
            with meter:
                raw = await wl.arun(env, ctx)
                if kind in DEFERRED_KINDS:
                    await env.saver.aflush()
            finish(await wl.averify(env, ctx, raw), ctx)
        finally:
            await env.aclose_loop_resources()

    try:
        env.start()
        if api == "sync":
            sync_body()
        else:
            asyncio.run(async_body())
    except W.CheckFailed as err:
        rec["error"] = f"check failed: {err}"
    except Exception as err:  # noqa: BLE001 - every error is reported and fails the run
        rec["error"] = f"{type(err).__name__}: {err}"
        rec["traceback"] = traceback.format_exc()
    finally:
        try:
            env.close()
        except Exception as err:  # noqa: BLE001
            rec["error"] = rec["error"] or f"close: {type(err).__name__}: {err}"
    rec["file_bytes"] = env.file_bytes() if pass_ == "timed" else None
    rec["wall_s"] = meter.wall
    st = meter.stats or {}
    rec["requests"] = st.get("requests")
    rec["operations"] = st.get("operations")
    rec["max_in_flight"] = st.get("max_in_flight")
    rec["faults"] = st.get("faults")
    rec["calls"] = meter.calls
    rec["py_peak_bytes"] = meter.py_peak
    rec["rss_peak_delta_bytes"] = meter.rss_peak_delta
    rec["maxrss_growth_bytes"] = meter.maxrss_growth
    return rec


def effective_latency(latency_s: float, n: int = 40) -> dict[str, float]:
    """The time one request really gains from the server's added latency (timer granularity makes it a bit more
    than asked), measured with both clients: sequential GetSession calls with and without the latency."""
    from bedrock_sessions import SessionClient
    from bedrock_sessions.server import LocalServer

    if latency_s <= 0:
        return {"boto3": 0.0, "rust_sdk": 0.0, "mean": 0.0}
    times: dict[tuple[str, float], float] = {}
    for lat in (latency_s, 0.0):
        with LocalServer(latency=lat) as srv:
            ours = SessionClient.bedrock(endpoint_url=srv.endpoint_url, region_name="us-east-1",
                                         aws_access_key_id="x", aws_secret_access_key="y")
            for name, client in (("boto3", srv.boto3_client()), ("rust_sdk", ours)):
                sid = client.create_session()["sessionId"]
                for _ in range(5):
                    client.get_session(sessionIdentifier=sid)
                t = time.perf_counter()
                for _ in range(n):
                    client.get_session(sessionIdentifier=sid)
                times[(name, lat)] = time.perf_counter() - t
            ours.close()
    out = {name: (times[(name, latency_s)] - times[(name, 0.0)]) / n for name in ("boto3", "rust_sdk")}
    out["mean"] = (out["boto3"] + out["rust_sdk"]) / 2
    return out


def build_fixtures(kinds: list[str], sizes: dict[str, Any], tmpdir: str) -> dict[str, Fixture]:
    fixtures: dict[str, Fixture] = {}
    threads = {"warm": 10, "small": sizes["hist_small"], "big": sizes["hist_big"]}
    for kind in kinds:
        t = time.perf_counter()
        fx = Fixture(kind, tmpdir)
        W.build_fixture(fx, threads)
        # What the threads hold, measured once (the read workloads do not change it).
        probe = Env(kind, "sync", 0.0, tmpdir, fx)
        try:
            if kind in SERVER_KINDS:
                probe.store = fx.store
            else:
                probe.start()
            for info in fx.threads.values():
                info["storage"] = probe.storage([info["id"]])
        finally:
            if kind not in SERVER_KINDS:
                probe.close()
        fixtures[kind] = fx
        log(f"fixture {kind:<11} threads of {threads} checkpoints built in {time.perf_counter() - t:.1f}s")
    return fixtures


def workloads(sizes: dict[str, Any]) -> list[W.Workload]:
    return [
        W.LinearGraph(sizes["linear"]),
        W.FanoutGraph(sizes["fanout"]),
        W.History(sizes["hist_small"], "small"),
        W.History(sizes["hist_big"], "big"),
        W.ListStream(sizes["hist_small"], "small"),
        W.ListStream(sizes["hist_big"], "big"),
        W.GetTupleLatest(sizes["get_tuple"], "big", sizes["hist_big"]),
        W.PutLarge(sizes["put_small"][1], sizes["put_small"][0]),
        W.PutLarge(sizes["put_big"][1], sizes["put_big"][0]),
    ]


# --------------------------------------------------------------------------- merging passes into rows
def merge(sections: list[dict[str, Any]], wls: list[W.Workload], latency_s: float) -> list[dict[str, Any]]:
    """``latency_s``: the effective added latency per request (see :func:`effective_latency`)."""
    titles = {wl.key: wl.title for wl in wls}
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for s in sections:
        key = (s["workload"], s["api"], s["kind"])
        row = rows.setdefault(key, {"workload": s["workload"], "title": titles[s["workload"]], "api": s["api"],
                                    "kind": s["kind"], "group": "server" if s["kind"] in SERVER_KINDS else "embedded",
                                    "units": s["units"], "unit": s["unit"], "errors": [], "digests": {}})
        if s["error"]:
            row["errors"].append(f"{s['pass']}: {s['error']}")
        if s.get("digest"):
            row["digests"][s["pass"]] = s["digest"]
        if s["pass"] == "timed" and s.get("repeat", 0) > 0:
            # a repeated timed run (embedded group): only its wall time counts, the median is reported
            if not s["error"]:
                row.setdefault("wall_runs_s", []).append(s["wall_s"])
            continue
        if s["pass"] == "timed":
            units = max(1, s["units"])
            st = s.get("storage") or {}
            row.update({
                "wall_s": s["wall_s"], "ms_per_unit": s["wall_s"] / units * 1000,
                "requests": s["requests"], "requests_per_unit": (s["requests"] / units) if s["requests"] is not None else None,
                "operations": s["operations"], "max_in_flight": s["max_in_flight"], "calls": s["calls"],
                "steps": st.get("steps"),
                "steps_per_unit": (st["steps"] / units) if st.get("steps") is not None and s["unit"] != "call" else None,
                "records": st.get("records"), "stored_bytes": st.get("bytes"), "stored_measure": st.get("measure"),
                "storage": st, "file_bytes": s["file_bytes"],
            })
        elif s["pass"] == "zero":
            row["wall0_s"] = s["wall_s"]
            row["requests_zero"] = s["requests"]
        elif s["pass"] == "memory":
            row.update({"py_peak_bytes": s["py_peak_bytes"], "rss_peak_delta_bytes": s["rss_peak_delta_bytes"],
                        "maxrss_growth_bytes": s["maxrss_growth_bytes"]})
    for row in rows.values():
        runs = row.get("wall_runs_s")
        if runs and row.get("wall_s") is not None:
            runs.insert(0, row["wall_s"])
            row["wall_s"] = statistics.median(runs)
            row["ms_per_unit"] = row["wall_s"] / max(1, row["units"]) * 1000
        if latency_s > 0 and row.get("wall_s") is not None and row.get("wall0_s") is not None:
            row["depth_est"] = max(0.0, (row["wall_s"] - row["wall0_s"]) / latency_s)
        row["ok"] = not row["errors"] and len(set(row["digests"].values())) <= 1
    return list(rows.values())


def check_agreement(rows: list[dict[str, Any]]) -> list[str]:
    """Every saver, API and pass must end with the same result of a workload."""
    failures: list[str] = []
    for row in rows:
        for e in row["errors"]:
            failures.append(f"{row['workload']} {row['api']} {row['kind']}: {e}")
        if len(set(row["digests"].values())) > 1:
            failures.append(f"{row['workload']} {row['api']} {row['kind']}: passes disagree {row['digests']}")
    by_wl: dict[str, dict[str, str]] = {}
    for row in rows:
        for p, d in row["digests"].items():
            by_wl.setdefault(row["workload"], {})[f"{row['kind']}/{row['api']}/{p}"] = d
    for wl, digests in by_wl.items():
        if len(set(digests.values())) > 1:
            groups: dict[str, list[str]] = {}
            for who, d in digests.items():
                groups.setdefault(d, []).append(who)
            failures.append(f"{wl}: savers disagree on the result: {groups}")
            for row in rows:
                if row["workload"] == wl:
                    row["ok"] = False
    return failures


# --------------------------------------------------------------------------- ratios and targets
METRICS = (  # key, label, kind of phrase
    ("wall_s", "wall", "time"),
    ("requests", "requests", "count"),
    ("depth_est", "depth", "count"),
    ("steps", "steps", "count"),
    ("stored_bytes", "stored", "bytes"),
    ("py_peak_bytes", "py peak", "mem"),
    ("rss_peak_delta_bytes", "RSS", "mem"),
)
RSS_FLOOR = 1 << 20  # RSS growth under 1 MB is sampling noise (pages, allocator arenas)
WORDS = {"time": ("faster", "slower"), "count": ("fewer", "more"), "bytes": ("smaller", "larger"), "mem": ("less", "more")}


def ratio(ours: Any, theirs: Any) -> float | None:
    if ours is None or theirs is None or theirs <= 0 or ours < 0:
        return None
    return ours / theirs


def phrase(r: float | None, kind: str) -> str:
    if r is None:
        return "n/a"
    better, worse = WORDS[kind]
    if r == 0:
        return "0.00"
    if 0.95 <= r <= 1.05:
        return f"{r:.2f} (~same)"
    if r < 1:
        return f"{r:.2f} ({1 / r:.1f}x {better})"
    return f"{r:.2f} ({r:.1f}x {worse})"


def compute_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    idx = {(r["workload"], r["api"], r["kind"]): r for r in rows}
    out = []
    seen = []
    for r in rows:
        if (r["workload"], r["api"]) not in seen:
            seen.append((r["workload"], r["api"]))
    for wl, api in seen:
        for ours, theirs in PAIRS:
            a, b = idx.get((wl, api, ours)), idx.get((wl, api, theirs))
            if not a or not b:
                continue
            entry: dict[str, Any] = {"workload": wl, "title": a["title"], "api": api, "ours": ours, "theirs": theirs,
                                     "ratios": {}, "ok": a["ok"] and b["ok"]}
            for key, _label, _kind in METRICS:
                x, y = a.get(key), b.get(key)
                if key == "rss_peak_delta_bytes" and x is not None and y is not None:
                    # growth under 1 MB is sampling noise: count it as 1 MB; both under it: no ratio
                    x, y = (None, None) if max(x, y) < RSS_FLOOR else (max(x, RSS_FLOOR), max(y, RSS_FLOOR))
                entry["ratios"][key] = ratio(x, y)
            out.append(entry)
    return out


def compute_targets(rows: list[dict[str, Any]], sizes: dict[str, Any], apis: list[str]) -> list[dict[str, Any]]:
    idx = {(r["workload"], r["api"], r["kind"]): r for r in rows}
    targets: list[dict[str, Any]] = []

    def get(wl: str, api: str, kind: str, key: str) -> Any:
        r = idx.get((wl, api, kind))
        return r.get(key) if r else None

    def add(text: str, api: str, measured: str, met: bool | None) -> None:
        if measured == "n/a":  # not run (filtered out); errors are reported as failures
            return
        targets.append({"target": text, "api": api, "measured": measured,
                        "status": "n/a" if met is None else ("met" if met else "NOT met")})

    for api in apis:
        n = sizes["linear"]
        for ours, mode in (("ours-http", "default"), ("ours-http-deferred", "deferred")):
            w_old, w_ours = get("linear", api, "old", "wall_s"), get("linear", api, ours, "wall_s")
            r = ratio(w_old, w_ours)
            add(f"{n}-turn 3-node graph: >=4x faster than old ({mode})", api, f"{r:.2f}x faster" if r else "n/a",
                r >= 4 if r else None)
            q_old, q_ours = get("linear", api, "old", "requests"), get("linear", api, ours, "requests")
            r = ratio(q_old, q_ours)
            add(f"{n}-turn 3-node graph: >=3x fewer requests than old ({mode})", api,
                f"{r:.2f}x fewer ({q_ours} vs {q_old})" if r else "n/a", r >= 3 if r else None)
        if ("history100", api, "old") in idx:
            r = ratio(get("history100", api, "old", "wall_s"), get("history100", api, "ours-http", "wall_s"))
            add("get_state_history of 100 checkpoints: >=20x faster than old", api,
                f"{r:.2f}x faster" if r else "n/a", r >= 20 if r else None)
        s_old, s_ours = get("linear", api, "old", "steps_per_unit"), get("linear", api, "ours-http", "steps_per_unit")
        add("steps per turn <= old's (default)", api, f"{s_ours:.1f} vs {s_old:.1f}" if s_old and s_ours else "n/a",
            s_ours <= s_old if s_old and s_ours else None)
        s_def = get("linear", api, "ours-http-deferred", "steps_per_unit")
        add("steps per turn <= half of old's (deferred)", api, f"{s_def:.1f} vs {s_old:.1f}" if s_old and s_def else "n/a",
            s_def <= s_old / 2 if s_old and s_def else None)
        b_old, b_ours = get("linear", api, "old", "stored_bytes"), get("linear", api, "ours-http", "stored_bytes")
        r = ratio(b_ours, b_old)
        add("bytes stored <= half of old's (3-node graph)", api, f"{r:.2f} of old's" if r else "n/a", r <= 0.5 if r else None)
        for ours in ("ours-local", "ours-local-deferred", "ours-memory"):
            r = ratio(get("linear", api, ours, "wall_s"), get("linear", api, "inmemory", "wall_s"))
            add(f"embedded {n}-turn graph: {ours} within 1.3x of InMemorySaver", api,
                f"{r:.2f}x InMemorySaver's time" if r else "n/a", r <= 1.3 if r else None)
            r = ratio(get("linear", api, ours, "wall_s"), get("linear", api, "sqlite", "wall_s"))
            add(f"embedded {n}-turn graph: {ours} faster than SqliteSaver", api,
                f"{r:.2f}x SqliteSaver's time" if r else "n/a", r < 1 if r else None)
        small, big = f"list{sizes['hist_small']}", f"list{sizes['hist_big']}"
        growth = sizes["hist_big"] / sizes["hist_small"]
        for kind in ("ours-http", "ours-local", "old"):
            p_s, p_b = get(small, api, kind, "py_peak_bytes"), get(big, api, kind, "py_peak_bytes")
            m_s, m_b = get(small, api, kind, "rss_peak_delta_bytes"), get(big, api, kind, "rss_peak_delta_bytes")
            rp = ratio(p_b, p_s)
            rm = ratio(m_b, max(m_s, 1 << 20)) if m_s is not None and m_b is not None else None
            measured = (f"py peak {mb(p_s)} -> {mb(p_b)} MB (x{rp:.2f}); RSS growth {mb(m_s)} -> {mb(m_b)} MB"
                        + (f" (x{rm:.2f}, small floored at 1 MB)" if rm is not None else "")) if rp else "n/a"
            add(f"{kind}: saver.list streams: py peak flat from {sizes['hist_small']} to {sizes['hist_big']} "
                f"checkpoints (<=2x; buffering grows ~{growth:.0f}x)" + (" [contrast]" if kind == "old" else ""),
                api, measured, (rp <= 2 if rp else None) if kind != "old" else None)
    return targets


# --------------------------------------------------------------------------- printing
def mb(v: Any) -> str:
    return "-" if v is None else f"{v / 1e6:.2f}"


def kb(v: Any) -> str:
    return "-" if v is None else f"{v / 1e3:.1f}"


def num(v: Any, fmt: str = "{:.0f}") -> str:
    return "-" if v is None else fmt.format(v)


def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    right = right if right is not None else set(range(3, len(headers)))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def print_report(rows: list[dict[str, Any]], ratios: list[dict[str, Any]], targets: list[dict[str, Any]],
                 meta: dict[str, Any], failures: list[str]) -> None:
    p = print
    p(f"\nbedrock-sessions benchmarks  ({meta['mode']} run, latency {meta['latency_ms']} ms, "
      f"{meta['cpus']} CPUs, Python {meta['python']}, LangGraph {meta['versions'].get('langgraph')}, "
      f"langgraph-checkpoint-aws {meta['versions'].get('langgraph-checkpoint-aws')}, durability={meta['durability']})")
    p(f"native core: {meta['native_build']}")
    if meta["native_build"].startswith("debug"):
        p("WARNING: bedrock_sessions._core is a DEBUG build: our saver's (and the local server's) CPU costs are "
          "inflated.\n         Build it with `maturin develop --release` before reading the numbers.")

    def label(r: dict[str, Any], prev: list[Any]) -> list[str]:
        cells = [r["title"], r["api"]]
        if prev and prev[0] == (r["title"], r["api"]):
            cells = ["", ""]
        prev[:] = [(r["title"], r["api"])]
        return cells

    srv = [r for r in rows if r["group"] == "server"]
    if srv:
        p(f"\n== Server group: old = langgraph-checkpoint-aws (boto3), ours-http = our saver (AWS SDK for Rust); "
          f"LocalServer on 127.0.0.1, {meta['latency_ms']} ms per request ==")
        prev: list[Any] = []
        body = [label(r, prev) + [
            r["kind"], num(r.get("wall_s"), "{:.3f}"), num(r.get("ms_per_unit"), "{:.1f}"), num(r.get("wall0_s"), "{:.3f}"),
            num(r.get("requests")), num(r.get("requests_per_unit"), "{:.1f}"), num(r.get("max_in_flight")),
            num(r.get("depth_est")), num(r.get("steps")), num(r.get("steps_per_unit"), "{:.2f}"),
            kb(r.get("stored_bytes")), mb(r.get("py_peak_bytes")), mb(r.get("rss_peak_delta_bytes")),
            "ok" if r["ok"] else "FAIL"] for r in srv]
        p(table(["workload", "api", "saver", "wall s", "ms/unit", "wall@0 s", "requests", "req/unit", "max infl",
                 "depth~", "steps", "steps/unit", "stored KB", "py peak MB", "RSS+ MB", "check"], body))
        eff = meta["effective_latency_s"]
        p(f"  wall@0 = same workload with no added latency; depth~ = (wall - wall@0) / effective latency, the round "
          f"trips on the critical path\n  (effective latency per request, measured: {eff['mean'] * 1000:.2f} ms; "
          f"boto3 {eff['boto3'] * 1000:.2f}, Rust SDK {eff['rust_sdk'] * 1000:.2f});\n  stored = payload bytes of the steps (text UTF-8 + image); unit = turn, checkpoint, "
          "call or put (see workload).")

    emb = [r for r in rows if r["group"] == "embedded"]
    if emb:
        p("\n== Embedded group: ours-local (SQLite file) / ours-memory vs LangGraph's InMemorySaver and "
          "SqliteSaver (AsyncSqliteSaver for async) ==")
        prev = []
        body = [label(r, prev) + [
            r["kind"], num(r.get("wall_s"), "{:.3f}"), num(r.get("ms_per_unit"), "{:.2f}"),
            num(r.get("steps") if r.get("steps") is not None else r.get("records")),
            kb(r.get("stored_bytes")), kb(r.get("file_bytes")), mb(r.get("py_peak_bytes")),
            mb(r.get("rss_peak_delta_bytes")), "ok" if r["ok"] else "FAIL"] for r in emb]
        p(table(["workload", "api", "saver", "wall s", "ms/unit", "steps/rows", "stored KB", "file KB",
                 "py peak MB", "RSS+ MB", "check"], body))
        p(f"  wall s = median of {meta['embedded_timed_repeats']} timed runs, taken round-robin over the savers "
          "(each on a fresh store and thread).")
        p("  steps/rows: session steps for ours; stored records for LangGraph's savers (checkpoints + blobs + writes).\n"
          "  stored KB: ours = step payload bytes (JSON with base64 values); inmemory = serialized bytes it holds;\n"
          "  sqlite = checkpoint+metadata+writes blob bytes. file KB = the section's SQLite file (+WAL) after close.")

    p("\n  py peak = tracemalloc peak (Python allocations only; the Rust core and the in-process server are invisible "
      "to it);\n  RSS+ = sampled process RSS growth over the section (everything in the process, including the "
      "server's Rust side);\n  both from a separate pass with no added latency; in ratios an RSS growth under 1 MB counts as 1 MB.\n"
      "  getrusage high-water growth is in the JSON (maxrss_growth_bytes).")

    if ratios:
        p("\n== Ratios ours/theirs (below 1 = ours is faster / fewer / smaller / less) ==")
        prev = []
        body = []
        for e in ratios:
            cells = [e["title"], e["api"]]
            if prev and prev[0] == (e["title"], e["api"]):
                cells = ["", ""]
            prev[:] = [(e["title"], e["api"])]
            body.append(cells + [f"{e['ours']} / {e['theirs']}"] + [
                phrase(e["ratios"][k], kind) for k, _l, kind in METRICS] + ["ok" if e["ok"] else "FAIL"])
        p(table(["workload", "api", "ours / theirs"] + [label for _k, label, _kind in METRICS] + ["check"], body,
                right=set()))
        p("  embedded pairs: 'stored' compares different measures (see above); requests/depth/steps apply to the "
          "server group only.")

    if srv:
        p("\n== Where the requests go (server group, timed pass): requests per operation, and the saver calls "
          "LangGraph made (count, mean ms) ==")
        ops_names = ["CreateInvocation", "PutInvocationStep", "ListInvocationSteps", "GetInvocationStep"]
        short = {"CreateInvocation": "CreateInv", "PutInvocationStep": "PutStep", "ListInvocationSteps": "ListSteps",
                 "GetInvocationStep": "GetStep"}
        prev = []
        body = []
        for r in srv:
            if r.get("operations") is None:
                continue  # memory-only workloads
            ops = r.get("operations") or {}
            other = {k: v for k, v in ops.items() if k not in ops_names}
            calls = r.get("calls") or {}
            call_txt = ", ".join(
                f"{k} {v['calls']}" + (f" ({v['seconds'] / v['calls'] * 1000:.1f} ms)" if k != "list" else "")
                for k, v in calls.items())
            n_calls = sum(v["calls"] for k, v in calls.items() if k != "list")
            per_call = num(r["requests"] / n_calls, "{:.2f}") if n_calls and r.get("requests") is not None else "-"
            body.append(label(r, prev) + [r["kind"]] + [num(ops.get(o, 0) if ops else None) for o in ops_names]
                        + [", ".join(f"{k} {v}" for k, v in other.items()) or "-", per_call, call_txt or "-"])
        p(table(["workload", "api", "saver"] + [short[o] for o in ops_names] + ["other", "req/call", "saver calls"],
                body, right={3, 4, 5, 6, 8}))
        p("  req/call = requests / saver calls (put, put_writes, get_tuple); mean ms = time inside the saver method "
          "(calls overlap with durability=async).")

    if targets:
        p("\n== The issue's targets (informational, not asserted) ==")
        body = [[t["target"], t["api"], t["measured"], t["status"]] for t in targets]
        p(table(["target", "api", "measured", "status"], body, right=set()))

    if failures:
        p("\n== FAILURES ==")
        for f in failures:
            p(f"  {f}")
    else:
        p("\nAll workloads ran and every correctness check passed (same results across savers, APIs and passes).")


# --------------------------------------------------------------------------- environment facts
def native_build() -> str:
    from bedrock_sessions import _core

    path = _core.__file__
    size = os.path.getsize(path)
    names = _elf_section_names(path)
    if names is None:
        return f"unknown build ({path}, {size / 1e6:.0f} MB)"
    kind = "debug (has .debug_info)" if ".debug_info" in names else "release (no debug info)"
    return f"{kind}, {os.path.basename(path)} {size / 1e6:.0f} MB"


def _elf_section_names(path: str) -> set[str] | None:
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return None
            e = "<" if head[5] == 1 else ">"
            shoff = struct.unpack_from(e + "Q", head, 0x28)[0]
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", head, 0x3A)
            f.seek(shoff)
            sh = f.read(shentsize * shnum)
            str_off, str_size = struct.unpack_from(e + "QQ", sh, shstrndx * shentsize + 0x18)
            f.seek(str_off)
            strtab = f.read(str_size)
            names = set()
            for i in range(shnum):
                off = struct.unpack_from(e + "I", sh, i * shentsize)[0]
                names.add(strtab[off:strtab.index(b"\0", off)].decode(errors="replace"))
            return names
    except (OSError, struct.error, ValueError):
        return None


def versions() -> dict[str, str]:
    out = {}
    for dist in ("bedrock-sessions", "langgraph", "langgraph-checkpoint", "langgraph-checkpoint-aws",
                 "langgraph-checkpoint-sqlite", "boto3", "aiosqlite"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            out[dist] = "?"
    return out


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency-ms", type=float, default=10.0, help="latency the local server adds to each request (default 10)")
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test, about a minute)")
    ap.add_argument("--json", metavar="PATH", help="also write every measurement as JSON")
    ap.add_argument("--only", metavar="WORKLOADS", help="comma-separated workload keys or prefixes "
                    "(linear, fanout, history, get_tuple, put)")
    ap.add_argument("--savers", metavar="KINDS", help=f"comma-separated, from {', '.join(ALL_KINDS)}")
    ap.add_argument("--api", choices=("sync", "async", "both"), default="both")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory pass")
    ap.add_argument("--repeat", type=int, default=None,
                    help="timed runs per embedded-group section, round-robin over the savers; the median is reported "
                         "(default 5; 1 with --quick)")
    ap.add_argument("--server-durability", choices=("normal", "full"), default="normal",
                    help="durability of the local server's store (default normal: no fsync per request, so the "
                    "server's disk time does not add to the modelled latency)")
    args = ap.parse_args(argv)

    SERVER_DURABILITY["value"] = args.server_durability
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    mode = "quick" if args.quick else "default"
    sizes = SIZES[mode]
    kinds = [k for k in ALL_KINDS if not args.savers or k in args.savers.split(",")]
    apis = ["sync", "async"] if args.api == "both" else [args.api]
    wls = workloads(sizes)
    if args.only:
        prefixes = [p.strip() for p in args.only.split(",") if p.strip()]
        wls = [wl for wl in wls if any(wl.key.startswith(p) for p in prefixes)]

    meta = {"mode": mode, "latency_ms": args.latency_ms, "sizes": sizes, "kinds": kinds, "apis": apis,
            "embedded_timed_repeats": args.repeat, "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "versions": versions(), "native_build": native_build(),
            "server_store_durability": args.server_durability,
            "durability": "async (LangGraph's default: checkpoints are written in the background during the next step)",
            "notes": [
                "The old saver passes no maxResults to ListInvocationSteps: it gets the server's default page size "
                "(10, the embedded store's default_page_size).",
                "Read workloads (history, get_tuple) use threads built once per saver by running the linear graph "
                "directly on the store (no HTTP); every section then reads them through a new server and saver.",
                f"Sessions allow {MAX_STEPS} steps here (the service quota is 1000): the old saver's threads need the room.",
            ]}
    meta["effective_latency_s"] = effective_latency(args.latency_ms / 1000.0) if any(k in SERVER_KINDS for k in kinds) \
        else {"boto3": 0.0, "rust_sdk": 0.0, "mean": 0.0}
    log(f"{mode} run: latency {args.latency_ms} ms, savers {', '.join(kinds)}, APIs {', '.join(apis)}; "
        f"native core {meta['native_build']}")

    sections: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bedrock-sessions-bench-") as tmpdir:
        fixtures: dict[str, Fixture] = {}
        try:
            if any(wl.fixture_thread for wl in wls):
                fixtures = build_fixtures([k for k in kinds if k not in DEFERRED_KINDS], sizes, tmpdir)
            gc.collect()
            gc.freeze()  # modules and fixtures are long-lived: keeps the memory pass's gc.collect() cheap
            for wl in wls:
                for api in apis:
                    for kind, pass_, i in run_plan(wl, kinds, args):
                        fx = fixtures.get(kind) if wl.fixture_thread else None
                        rec = run_section(wl, kind, api, pass_, args, tmpdir, fx)
                        rec["repeat"] = i
                        sections.append(rec)
                        extra = f" requests {rec['requests']}" if rec["requests"] is not None else ""
                        if rec["py_peak_bytes"] is not None:
                            extra += (f" py peak {mb(rec['py_peak_bytes'])} MB"
                                      f" RSS+ {mb(rec['rss_peak_delta_bytes'])} MB")
                        status = "ok" if not rec["error"] else f"ERROR {rec['error']}"
                        log(f"{wl.key:<11} {api:<5} {kind:<11} {pass_:<6} {rec['wall_s']:8.3f}s{extra}  {status}")
        finally:
            for fx in fixtures.values():
                fx.close()

    rows = merge(sections, wls, meta["effective_latency_s"]["mean"])
    failures = check_agreement(rows)
    ratios = compute_ratios(rows)
    targets = compute_targets(rows, sizes, apis)
    print_report(rows, ratios, targets, meta, failures)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows, "ratios": ratios, "targets": targets, "failures": failures,
                       "sections": sections, "total_s": time.perf_counter() - T0}, f, indent=1, default=str)
        log(f"wrote {args.json}")
    log(f"done in {time.perf_counter() - T0:.1f}s: {'FAILED' if failures else 'ok'}")
    for rec in sections:
        if rec.get("traceback"):
            print(f"\n--- {rec['workload']} {rec['api']} {rec['kind']} {rec['pass']}\n{rec['traceback']}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
