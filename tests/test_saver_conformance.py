"""LangGraph's checkpointer conformance suite (langgraph-checkpoint-conformance), all eight capabilities,
on the embedded store (memory and SQLite file), through the async methods and through the sync ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
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
