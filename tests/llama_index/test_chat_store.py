"""The BaseChatStore behaviour suite: every operation sequence runs on LlamaIndex's SimpleChatStore — the reference —
and on our SessionChatStore over each backend, through the sync methods and through the async ones; results and the
stored state must agree after every step. Two reference crashes (IndexError) are pinned in
``test_reference_divergences`` instead of being compared.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from _li_support import Backend, dump, msg, rich_messages
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.storage.chat_store.simple_chat_store import SimpleChatStore

from bedrock_sessions.llama_index import SessionChatStore


def _m(x: Any) -> ChatMessage:
    return x if isinstance(x, ChatMessage) else msg(x)


def run_sync(store: Any, op: tuple[Any, ...]) -> Any:
    name, *args = op
    if name == "set":
        return store.set_messages(args[0], [_m(x) for x in args[1]])
    if name == "get":
        return dump(store.get_messages(args[0]))
    if name == "add":
        return store.add_message(args[0], _m(args[1]), *args[2:])
    if name == "delete_all":
        return dump(store.delete_messages(args[0]))
    if name == "delete_at":
        return dump(store.delete_message(args[0], args[1]))
    if name == "delete_last":
        return dump(store.delete_last_message(args[0]))
    if name == "keys":
        return sorted(store.get_keys())
    raise ValueError(name)


async def run_async(store: Any, op: tuple[Any, ...]) -> Any:
    name, *args = op
    if name == "set":
        return await store.aset_messages(args[0], [_m(x) for x in args[1]])
    if name == "get":
        return dump(await store.aget_messages(args[0]))
    if name == "add":
        if len(args) > 2:  # insertion at a position: a SimpleChatStore extra, sync only there
            return await asyncio.to_thread(store.add_message, args[0], _m(args[1]), *args[2:])
        return await store.async_add_message(args[0], _m(args[1]))
    if name == "delete_all":
        return dump(await store.adelete_messages(args[0]))
    if name == "delete_at":
        return dump(await store.adelete_message(args[0], args[1]))
    if name == "delete_last":
        return dump(await store.adelete_last_message(args[0]))
    if name == "keys":
        return sorted(await store.aget_keys())
    raise ValueError(name)


SCENARIOS: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {
    "basics": (
        ["k"],
        [
            ("get", "k"),
            ("keys",),
            ("add", "k", "m1"),
            ("add", "k", "m2"),
            ("get", "k"),
            ("set", "k", ["s1", "s2", "s3"]),
            ("add", "k", "m3"),
            ("get", "k"),
            ("keys",),
        ],
    ),
    "positions": (
        ["k"],
        [
            ("set", "k", ["a", "b", "c", "d", "e"]),
            ("delete_at", "k", 1),
            ("delete_at", "k", -1),
            ("delete_at", "k", -3),
            ("delete_at", "k", 5),
            ("delete_at", "k", 2),
            ("delete_at", "absent", 0),
            ("add", "k", "front", 0),
            ("add", "k", "middle", 1),
            ("add", "k", "from-end", -1),
            ("add", "k", "far", 99),
            ("delete_last", "k"),
            ("delete_last", "absent"),
            ("get", "k"),
        ],
    ),
    "key-lifecycle": (
        ["a", "b"],
        [
            ("delete_all", "a"),
            ("set", "a", []),
            ("keys",),
            ("get", "a"),
            ("delete_all", "a"),
            ("keys",),
            ("delete_all", "a"),
            ("add", "b", "b1"),
            ("delete_at", "b", 0),
            ("keys",),
            ("delete_all", "b"),
            ("keys",),
            ("add", "a", "a1"),
            ("keys",),
        ],
    ),
    "rich-messages": (
        ["k"],
        [
            ("set", "k", rich_messages()[:5]),
            *[("add", "k", m) for m in rich_messages()[5:]],
            ("delete_at", "k", 2),
            ("delete_last", "k"),
            ("get", "k"),
            ("delete_all", "k"),
        ],
    ),
}


def _snapshot_sync(store: Any, keys: list[str]) -> Any:
    return {"keys": sorted(store.get_keys()), **{k: dump(store.get_messages(k)) for k in keys}}


async def _snapshot_async(store: Any, keys: list[str]) -> Any:
    return {"keys": sorted(await store.aget_keys()), **{k: dump(await store.aget_messages(k)) for k in keys}}


def compare_sync(ops: list[tuple[Any, ...]], ours: list[Any], keys: list[str], every: int = 1) -> None:
    ref = SimpleChatStore()
    for i, op in enumerate(ops):
        expected = run_sync(ref, op)
        for s in ours:
            assert run_sync(s, op) == expected, f"op #{i} {op}"
        if i % every == 0 or i == len(ops) - 1:
            want = _snapshot_sync(ref, keys)
            for s in ours:
                assert _snapshot_sync(s, keys) == want, f"state after op #{i} {op}"


async def compare_async(ops: list[tuple[Any, ...]], ours: list[Any], keys: list[str], every: int = 1) -> None:
    ref = SimpleChatStore()
    for i, op in enumerate(ops):
        expected = await run_async(ref, op)
        for s in ours:
            assert await run_async(s, op) == expected, f"op #{i} {op}"
        if i % every == 0 or i == len(ops) - 1:
            want = await _snapshot_async(ref, keys)
            for s in ours:
                assert await _snapshot_async(s, keys) == want, f"state after op #{i} {op}"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_scenario_agrees_with_reference(scenario: str, mode: str, li_backend: Backend) -> None:
    keys, ops = SCENARIOS[scenario]
    ours = [
        SessionChatStore(li_backend.client()),
        SessionChatStore(li_backend.client(), namespace="other", snapshot_every=1),
    ]
    if mode == "sync":
        compare_sync(ops, ours, keys)
    else:
        asyncio.run(compare_async(ops, ours, keys))


def _random_ops(seed: int, n: int) -> list[tuple[Any, ...]]:
    rnd = random.Random(seed)
    ops: list[tuple[Any, ...]] = []
    sizes = {"a": 0, "b": 0}
    present = {"a": False, "b": False}
    counter = iter(range(10_000))
    for _ in range(n):
        key = rnd.choice("ab")
        roll = rnd.random()
        if roll < 0.4:
            if rnd.random() < 0.2:
                ops.append(("add", key, f"{key}{next(counter)}", rnd.randint(-3, sizes[key] + 1)))
            else:
                ops.append(("add", key, f"{key}{next(counter)}"))
            sizes[key] += 1
            present[key] = True
        elif roll < 0.5:
            batch = [f"{key}{next(counter)}" for _ in range(rnd.randint(0, 4))]
            ops.append(("set", key, batch))
            sizes[key], present[key] = len(batch), True
        elif roll < 0.65 and sizes[key]:
            ops.append(("delete_at", key, rnd.randint(-sizes[key], sizes[key])))  # sizes[key]: out of range
            sizes[key] -= 0 if ops[-1][2] == sizes[key] else 1
        elif roll < 0.72 and sizes[key]:
            ops.append(("delete_last", key))
            sizes[key] -= 1
        elif roll < 0.77:
            ops.append(("delete_all", key))
            sizes[key], present[key] = 0, False
        elif roll < 0.9:
            ops.append(("get", key))
        else:
            ops.append(("keys",))
    return ops


@pytest.mark.parametrize(("kind", "mode"), [("memory", "sync"), ("file", "async"), ("bedrock", "sync")])
def test_random_sequences_agree_with_reference(kind: str, mode: str, make_backend: Any) -> None:
    backend = make_backend(kind)
    ops = _random_ops(11, 60)
    ours = [SessionChatStore(backend.client(), snapshot_every=3)]
    if mode == "sync":
        compare_sync(ops, ours, ["a", "b"], every=6)
    else:
        asyncio.run(compare_async(ops, ours, ["a", "b"], every=6))


def test_reference_divergences() -> None:
    """SimpleChatStore raises IndexError in two cases where ours answers None (out of range, nothing to delete)."""
    ref, ours = SimpleChatStore(), SessionChatStore.memory()
    for s in (ref, ours):
        s.set_messages("k", [msg("a"), msg("b")])
        s.set_messages("empty", [])
    with pytest.raises(IndexError):
        ref.delete_message("k", -3)
    assert ours.delete_message("k", -3) is None
    with pytest.raises(IndexError):
        ref.delete_last_message("empty")
    assert ours.delete_last_message("empty") is None
    assert dump(ours.get_messages("k")) == dump(ref.get_messages("k"))


def test_store_is_a_serializable_component(tmp_path: Any) -> None:
    store = SessionChatStore.local(tmp_path / "s.db", namespace="n1", snapshot_every=5)
    store.add_message("k", msg("hello"))
    d = store.to_dict()
    assert d["class_name"] == "SessionChatStore" and d["namespace"] == "n1" and d["snapshot_every"] == 5
    again = SessionChatStore.from_dict(d)  # reopens the embedded file it names
    assert dump(again.get_messages("k")) == dump([msg("hello")])
    with pytest.raises(TypeError, match="client is required"):
        SessionChatStore()


def test_faults_and_retries_change_nothing(aws_credentials: Any) -> None:
    """Over a server that throttles, fails and drops connections (after committing, too), the SDK's retries and the
    idempotent step writes keep our store equal to the reference."""
    from bedrock_sessions import SessionClient
    from bedrock_sessions.server import LocalServer

    with LocalServer(SessionClient.memory(), fault_rate=0.2, faults=["throttle", "500", "drop-after"], seed=7) as server:
        index = server.client.create_session()["sessionId"]
        client = SessionClient.bedrock(
            endpoint_url=server.endpoint_url, region_name="us-east-1", aws_access_key_id="testing",
            aws_secret_access_key="testing", thread_index=index, max_attempts=10,
        )
        ours = [SessionChatStore(client, snapshot_every=3)]
        compare_sync(_random_ops(5, 40), ours, ["a", "b"], every=5)
        assert server.stats()["faults"] > 5
