#!/usr/bin/env python
"""The inspector on a long thread: a thread of ``--checkpoints`` checkpoints (a 3-node graph's turns on the embedded
store), then, medians of ``--runs``:

- ``history (Python)``: ``Inspector.history()`` (what ``bedrock-sessions history --json`` computes);
- ``history (HTTP)``: ``GET /api/threads/<id>/history`` of the web inspector;
- ``history page, first paint``: the thread's page in Chromium (system package) driven by Playwright, from navigation
  until it shows the newest checkpoints' tree (the rows in view) and the newest checkpoint's state;
- ``history page, complete``: until it has read the whole history (every checkpoint counted, forks known).

    python benches/inspector.py                    # 10,000 checkpoints (building the thread takes a while)
    python benches/inspector.py --quick            # 500 checkpoints (a smoke test)

Nothing here asserts a timing; the page part is skipped (said so) without Playwright or Chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from _lg_graphs import three_nodes  # noqa: E402

from bedrock_sessions import BedrockSessionSaver, SessionClient  # noqa: E402
from bedrock_sessions.inspect import Inspector  # noqa: E402
from bedrock_sessions.inspect._web import WebInspector  # noqa: E402


def build(db: str, checkpoints: int) -> str:
    app = three_nodes().compile(checkpointer=BedrockSessionSaver(client=SessionClient.local(db)))
    cfg = {"configurable": {"thread_id": "long"}}
    turns = max(1, checkpoints // 5)  # five checkpoints a turn
    t0 = time.perf_counter()
    for i in range(turns):
        app.invoke({"items": [i]}, cfg)
        if (i + 1) % 200 == 0:
            print(f"  built {5 * (i + 1)} checkpoints ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return "long"


def timed(runs: int, f: Any) -> float:
    f()  # warm-up
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--checkpoints", type=int)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json")
    args = p.parse_args()
    n = args.checkpoints or (500 if args.quick else 10_000)
    report: dict[str, Any] = {"checkpoints": n, "median_ms": {}}
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "long.db")
        tid = build(db, n)
        ins = Inspector(SessionClient.local(db))
        rows = ins.history(tid)
        report["checkpoints"] = len(rows)
        med = report["median_ms"]
        med["history (Python)"] = timed(args.runs, lambda: ins.history(tid))
        with WebInspector(ins) as web:
            url = web.url + f"api/threads/{tid}/history"
            med["history (HTTP)"] = timed(args.runs, lambda: json.loads(urllib.request.urlopen(url).read()))
            chromium = shutil.which("chromium") or shutil.which("chromium-browser")
            try:
                from playwright.sync_api import sync_playwright
            except ImportError:
                sync_playwright = None  # type: ignore[assignment]
            if chromium and sync_playwright:
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
                    page = browser.new_page()

                    def first_paint() -> None:
                        page.goto("about:blank")
                        page.goto(web.url + f"#/thread/{tid}")
                        page.locator("#tree .node").first.wait_for(timeout=120_000)
                        page.locator("#state .channel").first.wait_for(timeout=120_000)

                    def complete() -> None:
                        first_paint()
                        page.get_by_text(f"{len(rows)} checkpoints", exact=True).wait_for(timeout=120_000)

                    med["history page, first paint"] = timed(args.runs, first_paint)
                    med["history page, complete"] = timed(args.runs, complete)
                    browser.close()
            else:
                print("history page: skipped (needs Playwright and Chromium)", file=sys.stderr)
    print(f"a thread of {report['checkpoints']} checkpoints; median ms")
    for k, v in report["median_ms"].items():
        print(f"  {k:<20} {v:10.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
