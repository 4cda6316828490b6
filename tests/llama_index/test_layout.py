"""What is stored, and what happens at the edges: image content blocks, events split over steps, the 1000-step quota
and idle expiry (a key moves to a new session), deleted sessions, keys that are session ids, concurrent writers, a
writer dying half-way through an event, and LangGraph's saver sharing the store."""

from __future__ import annotations

import asyncio
import base64
import threading
from typing import Any

import pytest
from _li_support import JPEG, Backend, dump, msg, png, text_of
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, TextBlock
from llama_index.core.storage.chat_store.base_db import MessageStatus

from bedrock_sessions import ManualClock, SessionClient
from bedrock_sessions.exceptions import ValidationException
from bedrock_sessions.llama_index import SessionChatStore, SessionDBChatStore


def raw_steps(admin: SessionClient, sid: str) -> list[dict[str, Any]]:
    """Every step payload of a session, oldest first."""
    out = []
    for inv in admin.list_invocations(sessionIdentifier=sid, maxResults=1000)["invocationSummaries"]:
        summaries = admin.list_invocation_steps(
            sessionIdentifier=sid, invocationIdentifier=inv["invocationId"], maxResults=1000
        )["invocationStepSummaries"]
        for s in reversed(summaries):
            step = admin.get_invocation_step(
                sessionIdentifier=sid, invocationIdentifier=inv["invocationId"], invocationStepId=s["invocationStepId"]
            )["invocationStep"]
            out.append(step["payload"])
    return out


def _image_message(*images: bytes) -> ChatMessage:
    return ChatMessage(role="user", blocks=[TextBlock(text="look"), *[ImageBlock(image=i) for i in images]])


def test_images_are_image_content_blocks(li_backend: Backend) -> None:
    store = SessionChatStore(li_backend.client())
    pic1, pic2 = png(5), JPEG
    store.add_message("k", _image_message(pic1, pic2, b"plain bytes, not an image format"))
    steps = raw_steps(li_backend.admin, store.session_of("k"))  # type: ignore[arg-type]
    assert len(steps) == 1
    blocks = steps[0]["contentBlocks"]
    images = [(b["image"]["format"], b["image"]["source"]["bytes"]) for b in blocks if "image" in b]
    assert images == [("png", pic1), ("jpeg", pic2)]
    text = "".join(b["text"] for b in blocks if "text" in b)
    assert base64.b64encode(pic1).decode() not in text and base64.b64encode(pic2).decode() not in text
    # bytes of no image format the API takes stay in the message's JSON (base64), as LlamaIndex dumps them
    assert base64.b64encode(b"plain bytes, not an image format").decode() in text
    again = SessionChatStore(li_backend.client())
    assert dump(again.get_messages("k")) == dump([_image_message(pic1, pic2, b"plain bytes, not an image format")])


def test_many_images_and_big_texts_are_split_over_steps(make_backend: Any) -> None:
    limit = 65536
    backend = make_backend("bedrock", max_step_bytes=limit)
    pics = [png(i, size=8) for i in range(45)]
    big = "x" * 150_000 + "é" * 30_000  # multi-byte characters on chunk boundaries
    msgs = [_image_message(*pics[:25]), msg(big), _image_message(*pics[25:])]

    async def main() -> None:
        store = SessionDBChatStore(backend.client(), max_step_bytes=limit)
        await store.add_messages("k", msgs)
        steps = raw_steps(backend.admin, store.session_of("k"))  # type: ignore[arg-type]
        assert len(steps) >= 4
        assert all(sum(1 for b in s["contentBlocks"] if "image" in b) <= 20 for s in steps)
        got = [(b["image"]["source"]["bytes"]) for s in steps for b in s["contentBlocks"] if "image" in b]
        assert got == pics
        cold = SessionDBChatStore(backend.client(), max_step_bytes=limit)
        assert dump(await cold.get_messages("k")) == dump(msgs)
        await cold.add_message("k", msg("after"))
        await store.archive_oldest_messages("k", 2)  # the first store catches up (several new steps), then writes
        assert [e[1] for e in await cold.get_entries("k")] == [MessageStatus.ARCHIVED] * 2 + [MessageStatus.ACTIVE] * 2

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["memory", "bedrock"])
def test_step_quota_moves_the_key_to_a_new_session(kind: str, make_backend: Any) -> None:
    backend = make_backend(kind, max_steps_per_session=10)
    opts = dict(max_steps_per_session=10, snapshot_every=4)

    async def main() -> None:
        a = SessionDBChatStore(backend.client(), **opts)
        b = SessionDBChatStore(backend.client(), **opts)  # another process, writing in turns with the first
        first = None
        sessions = set()
        for i in range(40):
            store = (a, b)[i % 2]
            if i % 5 == 0:
                await store.add_message("k", _image_message(png(i)))
            else:
                await store.add_message("k", msg(f"m{i}"))
            if i % 7 == 6:
                await store.archive_oldest_messages("k", 1)
            sid = store.session_of("k")
            first = first or sid
            sessions.add(sid)
        assert len(sessions) >= 5  # 40 messages, 10 steps a session
        # the old session ends with the marker that sends readers on
        last = raw_steps(backend.admin, first)[-1]["contentBlocks"][0]["text"]  # type: ignore[arg-type]
        assert '"k":"moved"' in last
        for reader in (a, b, SessionDBChatStore(backend.client(), **opts)):
            entries = await reader.get_entries("k")
            assert [e[0] for e in entries] == list(range(1, 41))
            assert sum(1 for e in entries if e[1] == MessageStatus.ARCHIVED) == 5
            images = [m for _, _, m in entries if len(m.blocks) > 1]
            assert [m.blocks[1].image for m in images] == [_image_message(png(i)).blocks[1].image for i in range(0, 40, 5)]
        assert await SessionDBChatStore(backend.client(), **opts).get_keys() == ["k"]

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["memory", "bedrock"])
def test_an_expired_session_is_replaced(kind: str, make_backend: Any) -> None:
    """Bedrock expires a session after an idle hour and refuses writes to it: the key moves on, with its messages."""
    clock = ManualClock()
    backend = make_backend(kind, clock=clock)

    async def main() -> None:
        writer = SessionDBChatStore(backend.client(), clock=clock)
        reader = SessionDBChatStore(backend.client(), clock=clock)  # keeps its cache across the hour
        await writer.add_messages("k", [msg("before"), _image_message(png(3))])
        assert len(await reader.get_messages("k")) == 2
        old = writer.session_of("k")
        clock.advance(1800)
        if backend.kind == "bedrock":
            # The thread index is a session too, and expires like any other: keep it alive, as other keys' traffic
            # would (an index idle for an hour takes no new bindings: see docs/llama-index.md).
            backend.admin.update_session(sessionIdentifier=backend.index, sessionMetadata={"purpose": "thread index"})
        clock.advance(1900)
        assert backend.admin.get_session(sessionIdentifier=old)["sessionStatus"] == "EXPIRED"
        assert len(await reader.get_messages("k")) == 2  # reads still work on an expired session
        await writer.add_message("k", msg("after"))
        new = writer.session_of("k")
        assert new != old
        for r in (reader, SessionDBChatStore(backend.client(), clock=clock)):
            assert [text_of(m) for m in await r.get_messages("k")] == ["before", "look", "after"]
            assert r.session_of("k") == new
        assert (await reader.get_messages("k"))[1].blocks[1].image == _image_message(png(3)).blocks[1].image

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["memory", "bedrock"])
def test_a_deleted_session_loses_its_messages_not_the_key(kind: str, make_backend: Any) -> None:
    backend = make_backend(kind)
    store = SessionChatStore(backend.client())
    store.add_message("k", msg("one"))
    sid = store.session_of("k")
    backend.admin.end_session(sessionIdentifier=sid)
    backend.admin.delete_session(sessionIdentifier=sid)
    assert store.get_messages("k") == []
    store.add_message("k", msg("two"))
    assert store.session_of("k") not in (None, sid)
    fresh = SessionChatStore(backend.client())
    assert [text_of(m) for m in fresh.get_messages("k")] == ["two"]
    assert fresh.get_keys() == ["k"]


def test_a_session_id_key_uses_that_session(li_backend: Backend) -> None:
    sid = li_backend.admin.create_session(sessionMetadata={"app": "shoes"})["sessionId"]
    arn = li_backend.admin.create_session()["sessionArn"]
    store = SessionChatStore(li_backend.client())
    store.add_message(sid, msg("in the caller's session"))
    store.add_message(arn, msg("named by its ARN"))
    assert store.session_of(sid) == sid
    assert store.session_of(arn) == arn.rsplit("/", 1)[1]
    md = li_backend.admin.get_session(sessionIdentifier=sid)["sessionMetadata"]
    assert md["app"] == "shoes" and any(k.startswith("llama_index:") for k in md)
    assert sorted(SessionChatStore(li_backend.client()).get_keys()) == sorted([sid, arn])


def test_returned_messages_are_the_callers(li_backend: Backend) -> None:
    """Changing a message a store returned changes nothing stored or cached."""
    store = SessionChatStore(li_backend.client(), max_staleness=3600.0)
    store.add_message("k", msg("hi", additional_kwargs={"tool_calls": [{"id": "1"}]}))
    got = store.get_messages("k")[0]
    got.additional_kwargs["tool_calls"].append({"id": "2"})
    got.blocks[0].text = "changed"  # type: ignore[union-attr]
    assert dump(store.get_messages("k")) == dump([msg("hi", additional_kwargs={"tool_calls": [{"id": "1"}]})])


def test_bedrock_without_a_thread_index_takes_session_ids_only(make_backend: Any) -> None:
    backend = make_backend("bedrock")
    client = SessionClient.bedrock(**backend.bedrock_args(thread_index=False))
    sid = client.create_session()["sessionId"]
    store = SessionChatStore(client)
    store.add_message(sid, msg("ok"))
    assert [text_of(m) for m in SessionChatStore(client).get_messages(sid)] == ["ok"]
    assert store.get_messages("ana") == []
    with pytest.raises(ValidationException, match="thread_index"):
        store.add_message("ana", msg("no"))


def test_concurrent_writers_lose_nothing(li_backend: Backend) -> None:
    async def main() -> None:
        stores = [SessionDBChatStore(li_backend.async_client()) for _ in range(3)]

        async def writer(n: int) -> None:
            for i in range(8):
                await stores[n].add_message("k", msg(f"w{n}-{i}"))

        await asyncio.gather(*(writer(n) for n in range(3)))
        texts = [text_of(m) for m in await SessionDBChatStore(li_backend.client()).get_messages("k")]
        assert sorted(texts) == sorted(f"w{n}-{i}" for n in range(3) for i in range(8))
        for n in range(3):  # each writer's messages in its order
            assert [t for t in texts if t.startswith(f"w{n}-")] == [f"w{n}-{i}" for i in range(8)]
        assert [text_of(m) for m in await stores[0].get_messages("k")] == texts

    asyncio.run(main())


def test_threads_share_one_store(li_backend: Backend) -> None:
    store = SessionChatStore(li_backend.client())
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(6):
                store.add_message("k", msg(f"t{n}-{i}"))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(SessionChatStore(li_backend.client()).get_messages("k")) == 24


def test_a_writer_dying_half_way_leaves_no_trace(make_backend: Any) -> None:
    """An event in two steps whose writer died after the first: readers ignore it, later writers go past it.

    The dead writer's step is put here through the session API, as the writer would have put it: the first part
    (of two) of a delta at the log's next sequence number, its step id derived as layout li1 derives it."""
    from datetime import datetime, timezone

    from bedrock_sessions import _core

    limit = 65536
    backend = make_backend("memory", max_step_bytes=limit)
    store = SessionChatStore(backend.client(), max_step_bytes=limit)
    store.add_message("k", msg("first"))
    sid = store.session_of("k")
    ids = _core.Li1Ids("chat", "default")
    head = '{"li":"li1","e":"deadbeef","p":0,"n":2,"k":"delta"}'
    backend.admin.put_invocation_step(
        sessionIdentifier=sid,
        invocationIdentifier=ids.invocation_id(),
        invocationStepId=ids.log_step_id(2),
        invocationStepTime=datetime.now(timezone.utc),
        payload={"contentBlocks": [{"text": head}, {"text": '{"k":"delta","ops":[["add",null,[[2,"active",{"ro'}]},
    )
    other = SessionChatStore(backend.client(), max_step_bytes=limit)
    assert [text_of(m) for m in other.get_messages("k")] == ["first"]
    other.add_message("k", msg("second"))
    store.add_message("k", msg("third"))
    for s in (store, other, SessionChatStore(backend.client(), max_step_bytes=limit)):
        assert [text_of(m) for m in s.get_messages("k")] == ["first", "second", "third"]


def test_namespaces_and_langgraph_threads_do_not_meet(make_backend: Any) -> None:
    from langgraph.checkpoint.base import empty_checkpoint

    from bedrock_sessions import BedrockSessionSaver

    backend = make_backend("file")
    a = SessionChatStore(backend.client(), namespace="a")
    b = SessionChatStore(backend.client(), namespace="b")
    a.add_message("ana", msg("from a"))
    assert b.get_messages("ana") == [] and b.get_keys() == []
    saver = BedrockSessionSaver(client=backend.client())
    cfg = {"configurable": {"thread_id": "ana", "checkpoint_ns": ""}}
    saver.put(cfg, empty_checkpoint(), {"source": "input", "step": -1}, {})
    assert [t.config["configurable"]["thread_id"] for t in saver.list(None)] == ["ana"]
    assert saver.get_tuple(cfg) is not None
    assert [text_of(m) for m in a.get_messages("ana")] == ["from a"] and a.get_keys() == ["ana"]
    assert a.session_of("ana") != saver._native.resolve_thread("ana", False)
    # a LangGraph thread id that looks like a session id is still only a thread: not the key's session
    uid = "0b6f3a52-5d1e-4c8e-9a8e-3f4f7f1f2a10"
    saver.put({"configurable": {"thread_id": uid, "checkpoint_ns": ""}}, empty_checkpoint(), {"source": "input"}, {})
    a.add_message(uid, msg("mine"))
    assert a.session_of(uid) != saver._native.resolve_thread(uid, False)
    assert saver.get_tuple({"configurable": {"thread_id": uid}}) is not None


def test_messages_round_trip_through_a_real_server_with_boto3(make_backend: Any) -> None:
    """What our store writes is plain Bedrock session data: boto3 reads it back through the local server."""
    backend = make_backend("bedrock")
    store = SessionChatStore(backend.client())
    store.add_message("k", _image_message(png(9)))
    b3 = backend.server.boto3_client()  # type: ignore[union-attr]
    sid = store.session_of("k")
    inv = b3.list_invocations(sessionIdentifier=sid)["invocationSummaries"][0]["invocationId"]
    step = b3.list_invocation_steps(sessionIdentifier=sid, invocationIdentifier=inv)["invocationStepSummaries"][0]
    payload = b3.get_invocation_step(
        sessionIdentifier=sid, invocationIdentifier=inv, invocationStepId=step["invocationStepId"]
    )["invocationStep"]["payload"]
    assert payload["contentBlocks"][-1]["image"]["source"]["bytes"] == png(9)


def test_bedrock_constructors(make_backend: Any) -> None:
    backend = make_backend("bedrock")
    args = backend.bedrock_args()
    chat = SessionChatStore.bedrock(**args, namespace="n", max_staleness=1.0)
    assert chat.namespace == "n" and chat.max_staleness == 1.0
    chat.add_message("k", msg("hello"))

    async def main() -> None:
        db = SessionDBChatStore.bedrock(**args, namespace="n")
        assert [text_of(m) for m in await db.get_messages("k")] == ["hello"]

    asyncio.run(main())
    from bedrock_sessions.llama_index import SessionWorkflowStore

    wf = SessionWorkflowStore.bedrock(**args)
    wf.save("k", "r", {"x": 1})
    assert SessionWorkflowStore.bedrock(**args).load_dict("k", "r") == {"x": 1}


@pytest.mark.parametrize("kind", ["memory", "bedrock"])
def test_memory_over_300_turns_with_a_small_step_quota(kind: str, make_backend: Any) -> None:
    """LlamaIndex's ``Memory`` over one key for 300 turns (600 messages) with 12 steps per session: the key moves on
    to new sessions dozens of times, and every message stays there, in order, for this process and a fresh one."""
    from llama_index.core.memory import Memory

    backend = make_backend(kind, max_steps_per_session=12)
    opts = dict(max_steps_per_session=12, snapshot_every=4)

    async def main() -> None:
        store = SessionDBChatStore(backend.client(), **opts)
        mem = Memory.from_defaults(session_id="long", chat_store=store, token_limit=1_000_000)
        sessions = set()
        for i in range(300):
            await mem.aput(msg(f"question {i}"))
            await mem.aput(msg(f"answer {i}", role="assistant"))
            sessions.add(store.session_of("long"))
        assert len(sessions) >= 20, len(sessions)
        want = [t for i in range(300) for t in (f"question {i}", f"answer {i}")]
        assert [m.content for m in await mem.aget_all()] == want
        fresh = Memory.from_defaults(session_id="long", chat_store=SessionDBChatStore(backend.client(), **opts),
                                     token_limit=1_000_000)
        assert [m.content for m in await fresh.aget_all()] == want

    asyncio.run(main())
