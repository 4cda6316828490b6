"""How the saver's async methods reach each store: on a SQLite file, reads run in the calling coroutine and
writes on a pool thread, so a commit that waits (for the disk, or for another writer's lock) never stalls the
event loop; the pool is rebuilt in a forked child. (LangGraph's conformance suite covers what the async methods
return, on both embedded stores.)"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langgraph")

from _lg_graphs import three_nodes  # noqa: E402

from bedrock_sessions import BedrockSessionSaver  # noqa: E402

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning"),
]


def _cfg(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def test_a_write_waiting_for_the_lock_leaves_the_event_loop_running(tmp_path: Path) -> None:
    """Another process holds the file's write lock for 0.6 s. While an async write waits for it, other
    coroutines keep running; a write run in the event loop would freeze them for the whole wait."""
    path = tmp_path / "locked.db"
    saver = BedrockSessionSaver.local(str(path))
    app = three_nodes().compile(checkpointer=saver)
    app.invoke({"items": ["warm"]}, _cfg("t"))  # the thread's session exists: the write below is one commit
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sqlite3, sys, time
                db = sqlite3.connect({str(path)!r}, isolation_level=None)
                db.execute("BEGIN IMMEDIATE")
                print("locked", flush=True)
                time.sleep(0.6)
                db.execute("ROLLBACK")
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    with holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"

        async def run() -> tuple[float, list[float]]:
            ticks: list[float] = []
            stop = asyncio.Event()

            async def ticker() -> None:
                while not stop.is_set():
                    ticks.append(time.perf_counter())
                    await asyncio.sleep(0.01)

            task = asyncio.create_task(ticker())
            await asyncio.sleep(0.03)
            state = await app.aget_state(_cfg("t"))
            t0 = time.perf_counter()
            await saver.aput_writes(state.config, [("items", ["late"])], "writer-task")
            waited = time.perf_counter() - t0
            stop.set()
            await task
            return waited, [t for t in ticks if t >= t0]

        waited, ticks_during = asyncio.run(run())
        holder.wait(timeout=30)
    assert waited > 0.3, f"the write did not wait for the lock ({waited:.3f} s): the test proves nothing"
    # The ticker runs every 10 ms: it kept running through the wait (a blocked loop gives it no turn).
    assert len(ticks_during) >= waited / 0.01 / 3, (waited, len(ticks_during))
    stored = saver.get_tuple(app.get_state(_cfg("t")).config)
    assert stored is not None
    assert ("writer-task", "items", ["late"]) in stored.pending_writes


def test_async_methods_of_a_file_store_work_in_a_forked_child(tmp_path: Path) -> None:
    """The parent's write threads do not exist in a fork child: the child gets its own, and its async writes
    and reads go through."""
    path = tmp_path / "fork.db"
    saver = BedrockSessionSaver.local(str(path))
    app = three_nodes().compile(checkpointer=saver)

    async def turn(thread: str, item: str) -> list[str]:
        out = await app.ainvoke({"items": [item]}, _cfg(thread))
        return out["items"]

    assert asyncio.run(turn("parent", "a")) == ["a", "plan", "act", "reply"]  # the pool's threads exist now
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        code = 1
        try:
            signal.alarm(60)
            assert asyncio.run(turn("child", "b")) == ["b", "plan", "act", "reply"]
            assert asyncio.run(turn("parent", "c"))[-5:] == ["reply", "c", "plan", "act", "reply"]
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child did not end")
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0
    # What the child wrote is in the file, read here through the async methods.
    reader = BedrockSessionSaver.local(str(path))

    async def read() -> tuple[Any, Any]:
        child = await reader.aget_tuple(_cfg("child"))
        parent = await reader.aget_tuple(_cfg("parent"))
        return child, parent

    child, parent = asyncio.run(read())
    assert child.checkpoint["channel_values"]["items"] == ["b", "plan", "act", "reply"]
    assert parent.checkpoint["channel_values"]["items"][-4:] == ["c", "plan", "act", "reply"]


def test_file_store_reads_see_the_file_as_it_is(tmp_path: Path) -> None:
    """Reads run in the coroutine, on a reader connection: they see what another writer committed."""
    path = tmp_path / "two.db"
    writer = BedrockSessionSaver.local(str(path))
    reader = BedrockSessionSaver.local(str(path))
    app = three_nodes().compile(checkpointer=writer)

    async def run() -> list[int]:
        seen = []
        for n in range(3):
            await app.ainvoke({"items": [str(n)]}, _cfg("t"))
            tup = await reader.aget_tuple(_cfg("t"))
            seen.append(len(tup.checkpoint["channel_values"]["items"]))
            history = [c async for c in reader.alist(_cfg("t"))]
            assert len(history) == 5 * (n + 1)
        return seen

    assert asyncio.run(run()) == [4, 8, 12]
