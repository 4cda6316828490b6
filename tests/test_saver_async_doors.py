"""How async methods (the saver's, AsyncSessionClient's, the LlamaIndex stores') reach each store: on a SQLite
file, reads run in the calling coroutine and writes on a pool thread, so a commit that waits (for the disk, or
for another writer's lock) never stalls the event loop; the pool is rebuilt in a forked child. (LangGraph's conformance suite covers what the async methods
return, on both embedded stores.)"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import os
import signal
import subprocess
import sys
import textwrap
import time
import traceback
from pathlib import Path
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("langgraph")

from _lg_graphs import three_nodes  # noqa: E402

from bedrock_sessions import AsyncSessionClient, BedrockSessionSaver  # noqa: E402

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning"),
]


def _cfg(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


@contextlib.contextmanager
def _write_lock_held(path: Path, seconds: float) -> Iterator[None]:
    """Another process holds the file's write lock for ``seconds`` from the moment this enters."""
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
                time.sleep({seconds})
                db.execute("ROLLBACK")
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    with holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
        holder.wait(timeout=30)


def _wait_with_a_ticker(write: Callable[[], Awaitable[Any]]) -> None:
    """Awaits ``write`` (which must wait for the held lock) while a ticker coroutine runs every 10 ms: the ticker
    keeps running through the wait (a blocked loop gives it no turn)."""

    async def run() -> tuple[float, list[float]]:
        ticks: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.03)
        t0 = time.perf_counter()
        await write()
        waited = time.perf_counter() - t0
        stop.set()
        await task
        return waited, [t for t in ticks if t >= t0]

    waited, ticks_during = asyncio.run(run())
    assert waited > 0.3, f"the write did not wait for the lock ({waited:.3f} s): the test proves nothing"
    assert len(ticks_during) >= waited / 0.01 / 3, (waited, len(ticks_during))


def test_a_write_waiting_for_the_lock_leaves_the_event_loop_running(tmp_path: Path) -> None:
    """Another process holds the file's write lock for 0.6 s. While an async write waits for it, other
    coroutines keep running; a write run in the event loop would freeze them for the whole wait."""
    path = tmp_path / "locked.db"
    saver = BedrockSessionSaver.local(str(path))
    app = three_nodes().compile(checkpointer=saver)
    app.invoke({"items": ["warm"]}, _cfg("t"))  # the thread's session exists: the write below is one commit
    config = app.get_state(_cfg("t")).config
    with _write_lock_held(path, 0.6):
        _wait_with_a_ticker(lambda: saver.aput_writes(config, [("items", ["late"])], "writer-task"))
    stored = saver.get_tuple(app.get_state(_cfg("t")).config)
    assert stored is not None
    assert ("writer-task", "items", ["late"]) in stored.pending_writes


def test_async_session_client_writes_wait_off_the_event_loop_and_reads_see_the_file(tmp_path: Path) -> None:
    """The same for AsyncSessionClient: a step written while another process holds the lock waits without
    freezing the loop; a second client on the file reads it (reads run in the coroutine)."""
    path = tmp_path / "client.db"
    client = AsyncSessionClient.local(path)

    async def prepare() -> tuple[str, str]:
        sid = (await client.create_session())["sessionId"]
        return sid, (await client.create_invocation(sessionIdentifier=sid))["invocationId"]

    sid, inv = asyncio.run(prepare())
    put = functools.partial(
        client.put_invocation_step,
        sessionIdentifier=sid,
        invocationIdentifier=inv,
        invocationStepTime=dt.datetime.now(dt.timezone.utc),
        payload={"contentBlocks": [{"text": "written while locked"}]},
    )
    with _write_lock_held(path, 0.6):
        _wait_with_a_ticker(put)

    async def read() -> list[str]:
        other = AsyncSessionClient.local(path)
        steps = (await other.list_invocation_steps(sessionIdentifier=sid))["invocationStepSummaries"]
        got = [
            await other.get_invocation_step(
                sessionIdentifier=sid, invocationIdentifier=inv, invocationStepId=s["invocationStepId"]
            )
            for s in steps
        ]
        await other.close()
        return [g["invocationStep"]["payload"]["contentBlocks"][0]["text"] for g in got]

    assert asyncio.run(read()) == ["written while locked"]


def test_llama_index_async_writes_wait_off_the_event_loop(tmp_path: Path) -> None:
    """The LlamaIndex chat store on AsyncSessionClient: an added message waits for the lock without freezing
    the loop, and is there afterwards."""
    pytest.importorskip("llama_index.core")
    from llama_index.core.llms import ChatMessage

    from bedrock_sessions.llama_index import SessionDBChatStore

    path = tmp_path / "chat.db"
    store = SessionDBChatStore(AsyncSessionClient.local(path))
    asyncio.run(store.add_message("ana", ChatMessage(role="user", content="first")))
    with _write_lock_held(path, 0.6):
        _wait_with_a_ticker(lambda: store.add_message("ana", ChatMessage(role="user", content="second")))
    fresh = SessionDBChatStore(AsyncSessionClient.local(path))
    got = asyncio.run(fresh.get_messages("ana"))
    assert [m.content for m in got] == ["first", "second"]


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


_EXIT_AFTER_ASYNC_CALLS = """
import asyncio, sys
from bedrock_sessions import AsyncSessionClient

async def main(endpoint):
    client = AsyncSessionClient.bedrock(
        endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    sessions = await asyncio.gather(*(client.create_session() for _ in range(40)))
    await asyncio.gather(*(client.get_session(sessionIdentifier=s["sessionId"]) for s in sessions))
    # The last calls are started and not awaited: the interpreter exits while the core completes them.
    for s in sessions[:10]:
        asyncio.ensure_future(client.get_session(sessionIdentifier=s["sessionId"]))
    await asyncio.sleep(0)
    print("done", flush=True)

asyncio.run(main(sys.argv[1]))
"""


def test_a_process_exits_cleanly_right_after_concurrent_native_async_calls(tmp_path: Path) -> None:
    """Over the network the async calls are the core's futures, completed from its runtime threads; the core waits
    for them at interpreter exit (a runtime thread attaching to a finalizing interpreter aborts the process).
    Eight processes each exit right after 80 concurrent calls, some still in flight: each exits with 0."""
    from bedrock_sessions.server import LocalServer

    with LocalServer(str(tmp_path / "server.db"), latency=0.002) as server:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _EXIT_AFTER_ASYNC_CALLS, server.endpoint_url],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(8)
        ]
        results = [(p.communicate(timeout=60), p.returncode) for p in procs]
    for (out, err), code in results:
        assert code == 0 and out.strip() == "done", (code, out, err[-2000:])
