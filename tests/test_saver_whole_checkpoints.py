"""A checkpoint round-trips whole: channel values of a channel without a version are kept, as the replaced saver
and SqliteSaver keep them (they came back as ``{}`` before)."""

from __future__ import annotations

import sqlite3

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.sqlite import SqliteSaver

from bedrock_sessions import BedrockSessionSaver, SessionClient
from bedrock_sessions.server import LocalServer


def _checkpoint() -> dict:
    cp = empty_checkpoint()
    cp["channel_values"] = {"key": "value", "versioned": [1, 2]}
    cp["channel_versions"] = {"versioned": 1}
    return cp


def _round_trip(saver: object, thread: str) -> dict:
    cp = _checkpoint()
    config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    saved = saver.put(config, cp, {"source": "input", "step": -1}, {"versioned": 1})  # type: ignore[attr-defined]
    return saver.get_tuple(saved).checkpoint  # type: ignore[attr-defined]


def test_sqlite_saver_keeps_unversioned_values():
    """The reference behaviour this test holds us to."""
    with sqlite3.connect(":memory:", check_same_thread=False) as conn:
        got = _round_trip(SqliteSaver(conn), "t")
    assert got["channel_values"] == {"key": "value", "versioned": [1, 2]}


@pytest.mark.parametrize("kind", ["memory", "local", "server"])
def test_unversioned_channel_values_are_kept(kind, tmp_path, aws_credentials):
    if kind == "memory":
        saver = BedrockSessionSaver(client=SessionClient.memory())
        thread = "ana"
    elif kind == "local":
        saver = BedrockSessionSaver(client=SessionClient.local(str(tmp_path / "s.db")))
        thread = "ana"
    else:
        server = LocalServer(str(tmp_path / "server.db")).start()
        saver = BedrockSessionSaver(endpoint_url=server.endpoint_url, region_name="us-east-1")
        thread = saver.create_thread()
    try:
        got = _round_trip(saver, thread)
        assert got["channel_values"] == {"key": "value", "versioned": [1, 2]}
        assert got["channel_versions"] == {"versioned": 1}
    finally:
        if kind == "server":
            server.stop()


def test_async_round_trip_keeps_them_too(tmp_path):
    import asyncio

    async def main() -> dict:
        saver = BedrockSessionSaver(client=SessionClient.local(str(tmp_path / "a.db")))
        cp = _checkpoint()
        saved = await saver.aput({"configurable": {"thread_id": "bo", "checkpoint_ns": ""}}, cp,
                                 {"source": "input", "step": -1}, {"versioned": 1})
        return (await saver.aget_tuple(saved)).checkpoint

    assert asyncio.run(main())["channel_values"] == {"key": "value", "versioned": [1, 2]}
