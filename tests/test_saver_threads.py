"""Threads and sessions: any thread id on the embedded store, session ids and ARNs map to their session,
delete_thread removes the session, errors name the thread, and the step budget per turn."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

pytest.importorskip("langgraph")

from _lg_graphs import record_counts, stored_steps, three_nodes  # noqa: E402

from bedrock_sessions import BedrockSessionSaver, SessionClient  # noqa: E402
from bedrock_sessions.exceptions import ConflictException, ServiceQuotaExceededException  # noqa: E402


@pytest.fixture
def client(tmp_path: Path) -> SessionClient:
    c = SessionClient.local(str(tmp_path / "threads.db"))
    yield c
    c.close()


def _steps(client: SessionClient, session_id: str) -> int:
    pages = client.get_paginator("list_invocation_steps").paginate(sessionIdentifier=session_id)
    return sum(len(p["invocationStepSummaries"]) for p in pages)


def _session_of(client: SessionClient, thread_id: str) -> str:
    for page in client.get_paginator("list_sessions").paginate():
        for s in page["sessionSummaries"]:
            meta = client.get_session(sessionIdentifier=s["sessionId"])["sessionMetadata"]
            if meta.get("langgraph:thread_id") == thread_id:
                return s["sessionId"]
    raise AssertionError(f"no session for thread {thread_id}")


def test_any_thread_id_gets_its_own_session(client: SessionClient) -> None:
    app = three_nodes().compile(checkpointer=BedrockSessionSaver(client=client))
    for thread in ("alice/cart", "bob"):
        app.invoke({"items": [thread]}, {"configurable": {"thread_id": thread}})
    a, b = _session_of(client, "alice/cart"), _session_of(client, "bob")
    assert a != b
    assert app.get_state({"configurable": {"thread_id": "bob"}}).values["items"] == ["bob", "plan", "act", "reply"]
    meta = client.get_session(sessionIdentifier=a)["sessionMetadata"]
    assert meta == {"langgraph:thread_id": "alice/cart", "langgraph:layout": "bs1"}


@pytest.mark.parametrize("form", ["sessionId", "sessionArn"])
def test_session_id_or_arn_as_thread_id_maps_to_that_session(client: SessionClient, form: str) -> None:
    created = client.create_session(sessionMetadata={"owner": "shop"})
    thread_id = created[form]
    app = three_nodes().compile(checkpointer=BedrockSessionSaver(client=client))
    app.invoke({"items": ["hi"]}, {"configurable": {"thread_id": thread_id}})
    assert _steps(client, created["sessionId"]) > 0
    assert len(client.list_sessions()["sessionSummaries"]) == 1, "no other session was created"
    assert app.get_state({"configurable": {"thread_id": thread_id}}).values["items"][-1] == "reply"


def test_create_thread_returns_a_session_id(client: SessionClient) -> None:
    saver = BedrockSessionSaver(client=client)
    thread_id = saver.create_thread(metadata={"user": "ana"}, tags={"app": "shoes"})
    info = client.get_session(sessionIdentifier=thread_id)
    assert info["sessionMetadata"]["user"] == "ana"
    assert client.list_tags_for_resource(resourceArn=info["sessionArn"])["tags"] == {"app": "shoes"}
    three_nodes().compile(checkpointer=saver).invoke({"items": ["x"]}, {"configurable": {"thread_id": thread_id}})
    assert _steps(client, thread_id) > 0


def test_delete_thread_ends_and_deletes_the_session(client: SessionClient) -> None:
    saver = BedrockSessionSaver(client=client)
    cfg = {"configurable": {"thread_id": "to-delete"}}
    three_nodes().compile(checkpointer=saver).invoke({"items": ["x"]}, cfg)
    sid = _session_of(client, "to-delete")
    saver.delete_thread("to-delete")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_session(sessionIdentifier=sid)
    assert saver.get_tuple(cfg) is None
    # The thread id is free again: a new run starts from scratch in a new session.
    three_nodes().compile(checkpointer=saver).invoke({"items": ["again"]}, cfg)
    assert saver.get_tuple(cfg).checkpoint["channel_values"]["items"] == ["again", "plan", "act", "reply"]


def test_with_allowlist_copies_share_the_native_handle(client: SessionClient) -> None:
    saver = BedrockSessionSaver(client=client)
    clone = saver.with_allowlist([("my_module", "MyType")])
    assert clone._native is saver._native
    plain = copy.copy(saver)
    assert plain._native is saver._native
    cfg = {"configurable": {"thread_id": "shared"}}
    three_nodes().compile(checkpointer=clone).invoke({"items": ["x"]}, cfg)
    assert saver.get_tuple(cfg) is not None


def test_ended_session_error_names_the_thread(client: SessionClient) -> None:
    created = client.create_session()
    client.end_session(sessionIdentifier=created["sessionId"])
    app = three_nodes().compile(checkpointer=BedrockSessionSaver(client=client))
    with pytest.raises(ConflictException) as err:
        app.invoke({"items": ["x"]}, {"configurable": {"thread_id": created["sessionId"]}})
    assert created["sessionId"] in str(err.value) and "ENDED" in str(err.value)


def test_quota_too_small_for_a_generation_is_an_error_naming_the_thread(tmp_path: Path) -> None:
    """A full session moves the thread on (test_rollover.py); a quota that cannot hold even the next generation's
    seed (one step here) makes the write give up after following the thread through a few generations."""
    client = SessionClient.local(str(tmp_path / "quota.db"), max_steps_per_session=1)
    app = three_nodes().compile(checkpointer=BedrockSessionSaver(client=client))
    cfg = {"configurable": {"thread_id": "busy-thread"}}
    with pytest.raises(ServiceQuotaExceededException) as err:
        app.invoke({"items": ["x"]}, cfg)
    assert "busy-thread" in str(err.value)
    assert err.value.response["Error"]["Code"] == "ServiceQuotaExceededException"


def test_steps_per_turn_not_more_than_the_replaced_saver(client: SessionClient) -> None:
    """Both savers run the same 3-node graph for 5 turns; steps are counted through the session API."""
    old_mod = pytest.importorskip("langgraph_checkpoint_aws.checkpoint.bedrock_sessions")
    turns = 5
    counts: dict[str, int] = {}
    for name, saver in (("old", old_mod.BedrockSessionSaver(client=client)), ("ours", BedrockSessionSaver(client=client))):
        sid = client.create_session()["sessionId"]
        app = three_nodes().compile(checkpointer=saver)
        for i in range(turns):
            app.invoke({"items": [str(i)]}, {"configurable": {"thread_id": sid}})
        counts[name] = _steps(client, sid)
        assert app.get_state({"configurable": {"thread_id": sid}}).values["items"][-1] == "reply"
        if name == "ours":
            records = record_counts(stored_steps(client, sid))
    assert counts["ours"] <= counts["old"], counts
    # 5 checkpoints (input, after __start__, one per node) and 4 put_writes (__start__ + 3 nodes) per turn; a
    # task's writes share a step with the checkpoint that follows them when both are in flight together.
    assert records == {"checkpoint": 5 * turns, "writes": 4 * turns}, records
    assert counts["ours"] <= 9 * turns, counts


def test_bytes_stored_once(client: SessionClient) -> None:
    """The state is stored once per checkpoint (the replaced saver stores it twice)."""
    big = "x" * 200_000
    sizes: dict[str, int] = {}
    old_mod = pytest.importorskip("langgraph_checkpoint_aws.checkpoint.bedrock_sessions")
    for name, saver in (("old", old_mod.BedrockSessionSaver(client=client)), ("ours", BedrockSessionSaver(client=client))):
        sid = client.create_session()["sessionId"]
        three_nodes().compile(checkpointer=saver).invoke({"items": [big]}, {"configurable": {"thread_id": sid}})
        total = 0
        for page in client.get_paginator("list_invocation_steps").paginate(sessionIdentifier=sid):
            for s in page["invocationStepSummaries"]:
                step = client.get_invocation_step(
                    sessionIdentifier=sid, invocationIdentifier=s["invocationId"], invocationStepId=s["invocationStepId"]
                )["invocationStep"]
                total += sum(len(b.get("text", "")) for b in step["payload"]["contentBlocks"])
        sizes[name] = total
    assert sizes["ours"] * 1.8 < sizes["old"], sizes
