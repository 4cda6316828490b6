"""ACTIVE -> ENDED / EXPIRED, read-only sessions, delete, expiry with a ManualClock."""

from __future__ import annotations

import datetime as dt

import pytest
from _support import T0, image_block, new_invocation, new_session, new_uuid, put_text, raises_code

from bedrock_sessions import ManualClock


def writes(client, sid, iid):
    """The writes a read-only session refuses, as (name, thunk)."""
    return [
        ("update_session", lambda: client.update_session(sessionIdentifier=sid, sessionMetadata={"x": "y"})),
        ("update_session-bare", lambda: client.update_session(sessionIdentifier=sid)),
        ("create_invocation", lambda: client.create_invocation(sessionIdentifier=sid)),
        ("put_invocation_step", lambda: put_text(client, sid, iid, "late")),
    ]


def session_with_content(client, **kwargs):
    sid, arn = new_session(client, sessionMetadata={"m": "1"}, tags={"t": "1"}, **kwargs)
    iid = new_invocation(client, sid)
    step = client.put_invocation_step(
        sessionIdentifier=sid,
        invocationIdentifier=iid,
        invocationStepTime=T0,
        payload={"contentBlocks": [{"text": "x"}, image_block(b"img")]},
    )["invocationStepId"]
    return sid, arn, iid, step


# ---------------------------------------------------------------- ENDED
def test_ended_session_is_read_only(client):
    sid, arn, iid, step = session_with_content(client)
    client.end_session(sessionIdentifier=sid)
    for name, write in writes(client, sid, iid):
        with raises_code("ConflictException"):
            write()
    # and it is still readable, unchanged
    got = client.get_session(sessionIdentifier=arn)
    assert got["sessionStatus"] == "ENDED" and got["sessionMetadata"] == {"m": "1"}
    assert [i["invocationId"] for i in client.list_invocations(sessionIdentifier=sid)["invocationSummaries"]] == [iid]
    assert [s["invocationStepId"] for s in client.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]] == [step]
    assert client.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step)[
        "invocationStep"
    ]["payload"]["contentBlocks"][1]["image"]["source"]["bytes"] == b"img"
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"t": "1"}


def test_ended_session_refuses_identical_step_retry_too(client):
    sid, _ = new_session(client)
    iid = new_invocation(client, sid)
    step = put_text(client, sid, iid, "x", when=T0, step_id=new_uuid())
    client.end_session(sessionIdentifier=sid)
    with raises_code("ConflictException"):
        put_text(client, sid, iid, "y", when=T0, step_id=step)


def test_end_twice_conflicts(client):
    sid, arn = new_session(client)
    client.end_session(sessionIdentifier=sid)
    with raises_code("ConflictException", operation="EndSession"):
        client.end_session(sessionIdentifier=sid)
    with raises_code("ConflictException"):
        client.end_session(sessionIdentifier=arn)
    assert client.get_session(sessionIdentifier=sid)["sessionStatus"] == "ENDED"


def test_end_does_not_move_ended_status_back_after_time(make_client):
    clock = ManualClock(start=T0)
    client = make_client(clock=clock, idle_timeout=60)
    sid, _ = new_session(client)
    client.end_session(sessionIdentifier=sid)
    clock.advance(3600)
    assert client.get_session(sessionIdentifier=sid)["sessionStatus"] == "ENDED"


# ---------------------------------------------------------------- delete
def test_delete_active_conflicts(client):
    sid, arn, iid, step = session_with_content(client)
    with raises_code("ConflictException", operation="DeleteSession"):
        client.delete_session(sessionIdentifier=sid)
    with raises_code("ConflictException"):
        client.delete_session(sessionIdentifier=arn)
    assert client.get_session(sessionIdentifier=sid)["sessionStatus"] == "ACTIVE"
    assert len(client.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]) == 1


@pytest.mark.parametrize("form", ["id", "arn"])
def test_delete_after_end_removes_everything(client, form):
    keep, keep_arn, keep_iid, keep_step = session_with_content(client)
    sid, arn, iid, step = session_with_content(client)
    ident = sid if form == "id" else arn
    client.end_session(sessionIdentifier=ident)
    client.delete_session(sessionIdentifier=ident)
    for call in (
        lambda: client.get_session(sessionIdentifier=sid),
        lambda: client.get_session(sessionIdentifier=arn),
        lambda: client.list_invocations(sessionIdentifier=sid),
        lambda: client.list_invocation_steps(sessionIdentifier=sid),
        lambda: client.list_invocation_steps(sessionIdentifier=sid, invocationIdentifier=iid),
        lambda: client.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step),
        lambda: client.list_tags_for_resource(resourceArn=arn),
        lambda: client.tag_resource(resourceArn=arn, tags={"a": "b"}),
        lambda: client.untag_resource(resourceArn=arn, tagKeys=["t"]),
        lambda: client.update_session(sessionIdentifier=sid),
        lambda: client.create_invocation(sessionIdentifier=sid),
        lambda: put_text(client, sid, iid),
        lambda: client.end_session(sessionIdentifier=sid),
        lambda: client.delete_session(sessionIdentifier=sid),
    ):
        with raises_code("ResourceNotFoundException"):
            call()
    assert [s["sessionId"] for s in client.list_sessions()["sessionSummaries"]] == [keep]
    # the other session is untouched
    assert client.list_tags_for_resource(resourceArn=keep_arn)["tags"] == {"t": "1"}
    assert client.get_invocation_step(
        sessionIdentifier=keep, invocationIdentifier=keep_iid, invocationStepId=keep_step
    )["invocationStep"]["invocationStepId"] == keep_step


def test_ids_of_a_deleted_session_are_free_again(client):
    sid, _ = new_session(client)
    iid = new_invocation(client, sid)
    step = put_text(client, sid, iid, step_id=new_uuid())
    client.end_session(sessionIdentifier=sid)
    client.delete_session(sessionIdentifier=sid)
    other, _ = new_session(client)
    assert new_invocation(client, other, invocationId=iid) == iid
    assert put_text(client, other, iid, step_id=step) == step


# ---------------------------------------------------------------- expiry
@pytest.fixture
def clocked(make_client):
    clock = ManualClock(start=T0)
    return make_client(clock=clock, idle_timeout=60), clock


def status(client, sid):
    return client.get_session(sessionIdentifier=sid)["sessionStatus"]


def test_expires_after_idle_timeout(clocked):
    client, clock = clocked
    sid, _ = new_session(client)
    clock.advance(59)
    assert status(client, sid) == "ACTIVE"
    clock.advance(2)
    assert status(client, sid) == "EXPIRED"
    listed = {s["sessionId"]: s["sessionStatus"] for s in client.list_sessions()["sessionSummaries"]}
    assert listed == {sid: "EXPIRED"}


def test_expired_session_refuses_writes(clocked):
    client, clock = clocked
    sid, arn = new_session(client, tags={"t": "1"})
    iid = new_invocation(client, sid)
    step = put_text(client, sid, iid, "before")
    clock.advance(61)
    for name, write in writes(client, sid, iid):
        with raises_code("ConflictException"):
            write()
        assert status(client, sid) == "EXPIRED", name
    # reads still work
    assert [s["invocationStepId"] for s in client.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]] == [step]
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"t": "1"}


def test_expired_session_can_be_ended_then_deleted(clocked):
    client, clock = clocked
    sid, _ = new_session(client)
    clock.advance(61)
    resp = client.end_session(sessionIdentifier=sid)
    assert resp["sessionStatus"] == "ENDED"
    assert status(client, sid) == "ENDED"
    client.delete_session(sessionIdentifier=sid)
    with raises_code("ResourceNotFoundException"):
        client.get_session(sessionIdentifier=sid)


def test_expired_session_can_be_deleted_without_end(clocked):
    client, clock = clocked
    sid, _ = new_session(client)
    iid = new_invocation(client, sid)
    put_text(client, sid, iid)
    clock.advance(61)
    client.delete_session(sessionIdentifier=sid)
    with raises_code("ResourceNotFoundException"):
        client.list_invocation_steps(sessionIdentifier=sid)
    assert client.list_sessions()["sessionSummaries"] == []


@pytest.mark.parametrize("write", ["update_session", "create_invocation", "put_invocation_step"])
def test_writes_keep_a_session_alive(clocked, write):
    client, clock = clocked
    sid, _ = new_session(client)
    iid = new_invocation(client, sid)
    for _ in range(3):
        clock.advance(40)
        if write == "update_session":
            resp = client.update_session(sessionIdentifier=sid)
            assert resp["sessionStatus"] == "ACTIVE"
        elif write == "create_invocation":
            client.create_invocation(sessionIdentifier=sid)
        else:
            put_text(client, sid, iid, when=T0)
        got = client.get_session(sessionIdentifier=sid)
        assert got["sessionStatus"] == "ACTIVE"
        assert got["lastUpdatedAt"] == clock.now()
    clock.advance(61)
    assert status(client, sid) == "EXPIRED"


def test_reads_do_not_keep_a_session_alive(clocked):
    client, clock = clocked
    sid, arn = new_session(client)
    iid = new_invocation(client, sid)
    step = put_text(client, sid, iid)
    for _ in range(2):
        clock.advance(40)
        client.get_session(sessionIdentifier=sid)
        client.list_invocations(sessionIdentifier=sid)
        client.list_invocation_steps(sessionIdentifier=sid)
        client.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step)
        client.list_tags_for_resource(resourceArn=arn)
        client.list_sessions()
    assert status(client, sid) == "EXPIRED"


def test_default_idle_timeout_is_one_hour(make_client):
    clock = ManualClock(start=T0)
    client = make_client(clock=clock)
    sid, _ = new_session(client)
    clock.advance(3599)
    assert status(client, sid) == "ACTIVE"
    clock.advance(2)
    assert status(client, sid) == "EXPIRED"


def test_expiry_with_clock_set(clocked):
    client, clock = clocked
    sid, _ = new_session(client)
    clock.set(T0 + dt.timedelta(days=20))
    assert status(client, sid) == "EXPIRED"
