"""LangGraph's checkpointer conformance suite (langgraph-checkpoint-conformance), all eight capabilities,
on the embedded store (memory and SQLite file), through the async methods and through the sync ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langgraph.checkpoint.conformance")

from langgraph.checkpoint.base import BaseCheckpointSaver  # noqa: E402
from langgraph.checkpoint.conformance import checkpointer_test, validate  # noqa: E402

from bedrock_sessions import BedrockSessionSaver, SessionClient  # noqa: E402

ALL_CAPABILITIES = {"put", "put_writes", "get_tuple", "list", "delete_thread", "delete_for_runs", "copy_thread", "prune"}
EXPECTED_TESTS = 81


class SyncDriven(BaseCheckpointSaver):
    """Drives a saver's SYNC methods from the suite's async calls (each one in a worker thread, as
    LangGraph's sync loop does), so the suite checks the sync half too."""

    def __init__(self, inner: BedrockSessionSaver) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner

    async def aget_tuple(self, config: Any) -> Any:
        return await asyncio.to_thread(self.inner.get_tuple, config)

    async def alist(self, config: Any, **kwargs: Any) -> AsyncIterator[Any]:
        it: Iterator[Any] = self.inner.list(config, **kwargs)
        while True:
            item = await asyncio.to_thread(next, it, None)
            if item is None:
                return
            yield item

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        return await asyncio.to_thread(self.inner.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: Any, writes: Sequence[Any], task_id: str, task_path: str = "") -> None:
        await asyncio.to_thread(self.inner.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.inner.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.inner.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.inner.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(self.inner.prune, thread_ids, strategy=strategy)

    def get_next_version(self, current: Any, channel: Any) -> Any:
        return self.inner.get_next_version(current, channel)


def _run_suite(make_saver: Any, name: str) -> None:
    @checkpointer_test(name=name)
    async def factory() -> AsyncIterator[BaseCheckpointSaver]:
        yield make_saver()

    report = asyncio.run(validate(factory))
    lines = []
    passed = 0
    for cap, result in sorted(report.results.items()):
        passed += result.tests_passed
        lines.append(f"{cap}: detected={result.detected} passed={result.tests_passed} failed={result.tests_failed} {result.failures}")
    summary = "\n".join(lines)
    assert set(report.results) == ALL_CAPABILITIES, summary
    for cap, result in report.results.items():
        assert result.detected, f"{cap} not detected\n{summary}"
        assert result.tests_failed == 0 and result.passed, summary
    assert passed == EXPECTED_TESTS, f"{passed}/{EXPECTED_TESTS}\n{summary}"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("door", ["async", "sync"])
@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_conformance_81_of_81(store: str, door: str, tmp_path: Path) -> None:
    counter = iter(range(1000))

    def make_saver() -> BaseCheckpointSaver:
        if store == "memory":
            client = SessionClient.memory()
        else:
            client = SessionClient.local(str(tmp_path / f"conformance-{next(counter)}.db"))
        saver = BedrockSessionSaver(client=client)
        return saver if door == "async" else SyncDriven(saver)

    _run_suite(make_saver, f"BedrockSessionSaver[{store},{door}]")


# -- The same suite across rollovers -------------------------------------------------------------------------------
#
# The suite is run again on savers whose store takes ROLLOVER_QUOTA steps per session, and the test checks that
# threads really rolled over to new sessions while it ran.
#
# On its own the suite writes at most 5 steps to one thread (test_prune_keep_latest_across_namespaces; test_list_*
# and test_put_writes_across_namespaces 4, most tests 1 to 3). No quota the suite can pass under makes many
# threads roll over. At 4 steps per session only that prune test's thread rolls over (the "none" case below). At 3,
# test_put_writes_across_namespaces cannot pass: the seeds of its two namespaces (root checkpoint, its writes, child
# checkpoint) fill a new 3-step generation, so its next write gives up after 8 generations. That is the minimum
# quota docs/saver.md documents. So in the "room" cases each thread's sessions are also filled with ballast: steps of
# an invocation that is not the saver's. Such steps count against the quota, and the saver must skip them when it
# reads, seeds and copies (as in a session shared with other writers, or holding the replaced saver's steps).
# After each put and put_writes of the suite, the thread's newest session is filled once, the first time it is
# seen, up to ROLLOVER_QUOTA - room steps. With room 0, every later write of the thread finds its session full and
# rolls the thread over (chains up to 5 generations). With room 1, every second write does.
ROLLOVER_QUOTA = 4  # the smallest that makes sense: a 2- or 3-namespace thread's seeds plus the write that rolled it
META_THREAD = "langgraph:thread_id"  # src/saver/layout.rs META_THREAD
META_GENERATION = "langgraph:generation"  # META_GENERATION: how many generations came before this session
META_PREVIOUS = "langgraph:previous"  # META_PREVIOUS: the earlier generations, newest first, space-separated


class Ballasted(BaseCheckpointSaver):
    """Passes the suite's calls to ``front`` (the saver itself, or SyncDriven over it). Unless ``room`` is None, it
    fills the thread's sessions with ballast after each write (see above). It records the distinct writes made to
    each thread. It also takes a census of the store's sessions before any call that deletes some."""

    def __init__(self, front: BaseCheckpointSaver, saver: BedrockSessionSaver, client: SessionClient,
                 room: int | None, census: dict[str, dict[str, str]], writes: dict[str, set[Any]]) -> None:
        super().__init__(serde=saver.serde)
        self.front, self.saver, self.client, self.room = front, saver, client, room
        self.census, self.writes = census, writes
        self.filled: set[str] = set()

    def _count_steps(self, sid: str) -> int:
        return sum(len(page["invocationStepSummaries"])
                   for page in self.client.get_paginator("list_invocation_steps").paginate(sessionIdentifier=sid))

    def _after_write(self, config: Any, write: Any) -> None:
        tid = config["configurable"]["thread_id"]
        self.writes.setdefault(tid, set()).add(write)
        if self.room is None:
            return
        sid = self.saver._native.resolve_thread(tid, False)
        if sid is None or sid in self.filled:
            return
        self.filled.add(sid)
        missing = ROLLOVER_QUOTA - self.room - self._count_steps(sid)
        if missing <= 0:
            return
        inv = self.client.create_invocation(sessionIdentifier=sid, description="ballast")["invocationId"]
        for _ in range(missing):
            self.client.put_invocation_step(
                sessionIdentifier=sid, invocationIdentifier=inv, invocationStepTime=datetime.now(timezone.utc),
                payload={"contentBlocks": [{"text": "ballast"}]},
            )

    def take_census(self) -> None:
        """Records the metadata of every session it has not seen yet (session ids are never reused)."""
        for page in self.client.get_paginator("list_sessions").paginate():
            for summary in page["sessionSummaries"]:
                sid = summary["sessionId"]
                if sid not in self.census:
                    self.census[sid] = self.client.get_session(sessionIdentifier=sid).get("sessionMetadata") or {}

    async def aget_tuple(self, config: Any) -> Any:
        return await self.front.aget_tuple(config)

    async def alist(self, config: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async for item in self.front.alist(config, **kwargs):
            yield item

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        stored = await self.front.aput(config, checkpoint, metadata, new_versions)
        self._after_write(config, ("put", checkpoint["id"]))
        return stored

    async def aput_writes(self, config: Any, writes: Sequence[Any], task_id: str, task_path: str = "") -> None:
        await self.front.aput_writes(config, writes, task_id, task_path)
        # A repeated call (same checkpoint, task and writes) stores nothing: test_put_writes_idempotent's retry.
        conf = config["configurable"]
        self._after_write(config, ("put_writes", conf.get("checkpoint_ns", ""), conf.get("checkpoint_id"), task_id,
                                   task_path, repr(list(writes))))

    # The census is taken before each call that deletes sessions, so it also counts the generations of the
    # threads the suite deletes.
    async def adelete_thread(self, thread_id: str) -> None:
        self.take_census()
        await self.front.adelete_thread(thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.take_census()
        await self.front.adelete_for_runs(run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self.front.acopy_thread(source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self.take_census()
        await self.front.aprune(thread_ids, strategy=strategy)

    def get_next_version(self, current: Any, channel: Any) -> Any:
        return self.front.get_next_version(current, channel)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("room", [None, 0, 1], ids=["room=none", "room=0", "room=1"])
@pytest.mark.parametrize("door", ["async", "sync"])
@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_conformance_81_of_81_across_rollovers(store: str, door: str, room: int | None, tmp_path: Path) -> None:
    savers: list[Ballasted] = []
    census: dict[str, dict[str, str]] = {}
    writes: dict[str, set[Any]] = {}  # thread -> the distinct writes the suite made to it

    def make_saver() -> BaseCheckpointSaver:
        if store == "memory":
            client = SessionClient.memory(max_steps_per_session=ROLLOVER_QUOTA)
        else:
            path = tmp_path / f"conformance-{len(savers)}.db"
            client = SessionClient.local(str(path), max_steps_per_session=ROLLOVER_QUOTA)
        saver = BedrockSessionSaver(client=client)
        front = saver if door == "async" else SyncDriven(saver)
        savers.append(Ballasted(front, saver, client, room, census, writes))
        return savers[-1]

    _run_suite(make_saver, f"BedrockSessionSaver[{store},{door},quota={ROLLOVER_QUOTA},room={room}]")

    # Proof from the sessions' own metadata that threads rolled over inside the suite. A rollover creates a session
    # whose langgraph:generation is >= 1 and whose langgraph:previous names its predecessor. Every thread whose
    # distinct writes did not all fit in its first session must have one. Its first session holds ROLLOVER_QUOTA of
    # them without ballast, or the first write plus `room` with it. Without rollovers (a quota the store ignores,
    # ballast the saver counts wrongly, a saver that writes past the quota...) every session has generation 0, and
    # this fails.
    for s in savers:
        s.take_census()
    generations: dict[str, list[int]] = {}
    for sid, meta in census.items():
        generation = int(meta.get(META_GENERATION, "0"))
        generations.setdefault(meta.get(META_THREAD, ""), []).append(generation)
        if generation >= 1:
            # The predecessor is a session of the same thread that the census saw (it runs before any deletion).
            previous = meta.get(META_PREVIOUS, "").split()[0]
            assert census[previous].get(META_THREAD) == meta.get(META_THREAD), (sid, meta, census.get(previous))
    rolled = {tid for tid, gens in generations.items() if max(gens) >= 1}
    first_session_holds = ROLLOVER_QUOTA if room is None else 1 + room
    must_roll = {tid for tid, made in writes.items() if len(made) > first_session_holds}
    missed = sorted(must_roll - rolled)
    assert not missed, f"{len(missed)} of {len(must_roll)} threads never rolled over, e.g. {missed[:3]}"
    rollovers = sum(1 for gens in generations.values() for g in gens if g >= 1)
    print(f"{store},{door},room={room}: {len(census)} sessions of {len(generations)} threads, {rollovers} rollovers, "
          f"{len(rolled)} threads rolled over (>= {len(must_roll)} expected), deepest generation "
          f"{max(max(g) for g in generations.values())}")
    # Not vacuous: without ballast one thread must roll over (5 writes), with it 58 (room 0) or 28 (room 1).
    assert must_roll and rollovers >= len(must_roll), (len(must_roll), rollovers)
    if room is not None:
        assert len(must_roll) >= 20, len(must_roll)
