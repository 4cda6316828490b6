"""create_invocation / list_invocations."""

from __future__ import annotations

import datetime as dt

import pytest
from _support import T0, UUID_RE, list_all, new_invocation, new_session, new_uuid, raises_code

from bedrock_sessions import ManualClock


def test_create_invocation_generates_lower_case_uuid(client):
    sid, _ = new_session(client)
    resp = client.create_invocation(sessionIdentifier=sid)
    assert UUID_RE.fullmatch(resp["invocationId"]), resp["invocationId"]
    assert resp["sessionId"] == sid
    assert isinstance(resp["createdAt"], dt.datetime)
    assert resp["createdAt"].utcoffset() == dt.timedelta(0)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201
    others = {new_invocation(client, sid) for _ in range(4)}
    assert len(others | {resp["invocationId"]}) == 5


def test_create_invocation_with_given_id_and_description(client):
    sid, arn = new_session(client)
    iid = new_uuid()
    resp = client.create_invocation(sessionIdentifier=arn, invocationId=iid, description="first turn")
    assert resp["invocationId"] == iid
    assert resp["sessionId"] == sid
    listed = client.list_invocations(sessionIdentifier=sid)["invocationSummaries"]
    assert [i["invocationId"] for i in listed] == [iid]
    assert listed[0]["sessionId"] == sid
    assert listed[0]["createdAt"] == resp["createdAt"]


def test_duplicate_invocation_id_conflicts(client):
    sid, _ = new_session(client)
    iid = new_uuid()
    client.create_invocation(sessionIdentifier=sid, invocationId=iid)
    with raises_code("ConflictException", operation="CreateInvocation"):
        client.create_invocation(sessionIdentifier=sid, invocationId=iid)
    with raises_code("ConflictException"):
        client.create_invocation(sessionIdentifier=sid, invocationId=iid, description="again")
    assert len(client.list_invocations(sessionIdentifier=sid)["invocationSummaries"]) == 1


def test_same_invocation_id_in_two_sessions(client):
    a, _ = new_session(client)
    b, _ = new_session(client)
    iid = new_uuid()
    assert new_invocation(client, a, invocationId=iid) == iid
    assert new_invocation(client, b, invocationId=iid) == iid


@pytest.mark.parametrize("length", [1, 200])
def test_description_length_ok(client, length):
    sid, _ = new_session(client)
    new_invocation(client, sid, description="d" * length)


@pytest.mark.parametrize("description", ["", "d" * 201])
def test_description_length_rejected(client, description):
    sid, _ = new_session(client)
    with raises_code("ValidationException", "description"):
        client.create_invocation(sessionIdentifier=sid, description=description)
    assert client.list_invocations(sessionIdentifier=sid)["invocationSummaries"] == []


@pytest.mark.parametrize(
    "bad", ["not-a-uuid", "ABCDEF01-2345-4678-9abc-def012345678", "", "abcdef0123454678" + "9abcdef012345678"]
)
def test_invocation_id_must_be_lower_case_uuid(client, bad):
    sid, _ = new_session(client)
    with raises_code("ValidationException", "invocationId"):
        client.create_invocation(sessionIdentifier=sid, invocationId=bad)


def test_create_invocation_unknown_session(client):
    with raises_code("ResourceNotFoundException", operation="CreateInvocation"):
        client.create_invocation(sessionIdentifier=new_uuid())


def test_create_invocation_moves_last_updated(make_client):
    clock = ManualClock(start=T0)
    client = make_client(clock=clock)
    sid, _ = new_session(client)
    clock.advance(3)
    resp = client.create_invocation(sessionIdentifier=sid)
    assert resp["createdAt"] == T0 + dt.timedelta(seconds=3)
    assert client.get_session(sessionIdentifier=sid)["lastUpdatedAt"] == T0 + dt.timedelta(seconds=3)


def test_list_invocations_newest_first(make_client):
    clock = ManualClock(start=T0)
    client = make_client(clock=clock)
    sid, _ = new_session(client)
    ids = []
    for _ in range(3):
        ids.append(new_invocation(client, sid))
        clock.advance(0.5)
    # ties: same createdAt, later insert first
    ids += [new_invocation(client, sid) for _ in range(3)]
    listed = list_all(client, "list_invocations", "invocationSummaries", sessionIdentifier=sid, maxResults=4)
    assert [i["invocationId"] for i in listed] == ids[::-1]


def test_list_invocations_only_of_that_session(client):
    a, _ = new_session(client)
    b, b_arn = new_session(client)
    ia = new_invocation(client, a)
    ib = new_invocation(client, b)
    assert [i["invocationId"] for i in client.list_invocations(sessionIdentifier=a)["invocationSummaries"]] == [ia]
    assert [i["invocationId"] for i in client.list_invocations(sessionIdentifier=b_arn)["invocationSummaries"]] == [ib]


def test_list_invocations_unknown_session(client):
    with raises_code("ResourceNotFoundException", operation="ListInvocations"):
        client.list_invocations(sessionIdentifier=new_uuid())


def test_list_invocations_default_page_size_10(client):
    sid, _ = new_session(client)
    ids = [new_invocation(client, sid) for _ in range(11)]
    page = client.list_invocations(sessionIdentifier=sid)
    assert len(page["invocationSummaries"]) == 10
    assert page["nextToken"]
    rest = client.list_invocations(sessionIdentifier=sid, nextToken=page["nextToken"])
    assert len(rest["invocationSummaries"]) == 1
    assert "nextToken" not in rest
    got = {i["invocationId"] for i in page["invocationSummaries"] + rest["invocationSummaries"]}
    assert got == set(ids)
