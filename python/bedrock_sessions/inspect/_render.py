"""Human output of the inspector's commands: tables (``rich`` when installed: colour and borders on a terminal;
else plain aligned columns) and progress on stderr. ``--json`` bypasses all of it."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

try:  # the [cli] extra
    from rich.console import Console
    from rich.table import Table

    HAVE_RICH = True
except ImportError:  # pragma: no cover - exercised where rich is not installed
    HAVE_RICH = False


def short(checkpoint_id: str | None) -> str:
    """A checkpoint id as people quote it: its last 8 characters (``show`` and ``diff`` accept them)."""
    return "" if not checkpoint_id else "#" + checkpoint_id[-8:]


def cell(v: Any, width: int = 60) -> str:
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        text = ", ".join(cell(x, width) for x in v)
    elif isinstance(v, dict):
        text = ", ".join(f"{k}={cell(x, width)}" for k, x in v.items())
    else:
        text = str(v)
    return text if len(text) <= width else text[: width - 1] + "…"


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    cells = [[cell(v) for v in row] for row in rows]
    if HAVE_RICH:
        console = Console(file=out, soft_wrap=False, width=None if out.isatty() else 200)
        t = Table(title=title, show_lines=False, header_style="bold")
        for c in columns:
            t.add_column(c, overflow="fold")
        for row in cells:
            t.add_row(*row)
        console.print(t)
        return
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    print(title, file=out)
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(), file=out)
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip(), file=out)


def heading(text: str, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if HAVE_RICH:
        Console(file=out).print(f"[bold]{text}[/bold]")
    else:
        print(text, file=out)


def block(value: Any, out: TextIO | None = None) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str), file=out or sys.stdout)


def messages(values: list[Any], out: TextIO | None = None) -> None:
    """A list of messages as a conversation: role, then content (tool calls named)."""
    out = out or sys.stdout
    for m in values:
        if not isinstance(m, dict) or "role" not in m:
            block(m, out)
            continue
        content = m.get("content")
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        calls = "".join(f"  → {c.get('name')}({json.dumps(c.get('args'), ensure_ascii=False)})"
                        for c in m.get("tool_calls") or [] if isinstance(c, dict))
        print(f"  {m['role']:>9}: {text}{calls}", file=out)


def is_messages(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(m, dict) and "role" in m and "content" in m for m in v)


class Progress:
    """Progress of a long command on stderr: a bar on a terminal (rich), else a line every 10 %."""

    def __init__(self, what: str, enabled: bool = True) -> None:
        self.what = what
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None
        self._last = -1
        self._t0 = time.monotonic()

    def __enter__(self) -> Progress:
        if self.enabled and HAVE_RICH and sys.stderr.isatty():
            from rich.progress import Progress as Bar

            self._bar = Bar(console=Console(file=sys.stderr))
            self._bar.__enter__()
            self._task = self._bar.add_task(self.what, total=None)
        return self

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total)
            return
        tenth = done * 10 // max(total, 1)
        now = time.monotonic()
        if done == total or (tenth != self._last and now - self._t0 >= 1.0):
            self._last = tenth
            print(f"{self.what}: {done}/{total} checkpoints ({time.monotonic() - self._t0:.1f} s)", file=sys.stderr)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
