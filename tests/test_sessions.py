"""create/get/list/update/end/delete sessions, metadata limits, KMS key ARNs, identifiers, timestamps."""

from __future__ import annotations

import datetime as dt

import pytest
from _support import (
    KMS_KEY_ARN,
    SESSION_ARN_RE,
    T0,
    UTC,
    UUID_RE,
    list_all,
    new_session,
    other_arn,
    raises_code,
)

from bedrock_sessions import ManualClock


# ---------------------------------------------------------------- create / get
def test_create_session_returns_ids_arn_status(client):
    resp = client.create_session()
    assert UUID_RE.fullmatch(resp["sessionId"]), resp["sessionId"]
    m = SESSION_ARN_RE.fullmatch(resp["sessionArn"])
    assert m, resp["sessionArn"]
    assert m.group(1) == "us-east-1" and m.group(2) == "000000000000"
    assert m.group(3) == resp["sessionId"]
    assert resp["sessionStatus"] == "ACTIVE"
    assert isinstance(resp["createdAt"], dt.datetime)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201


def test_session_ids_are_distinct(client):
    ids = {client.create_session()["sessionId"] for _ in range(5)}
    assert len(ids) == 5


def test_get_session_returns_what_was_created(client):
    created = client.create_session(sessionMetadata={"user": "ana", "empty": ""}, encryptionKeyArn=KMS_KEY_ARN)
    got = client.get_session(sessionIdentifier=created["sessionId"])
    assert got["sessionId"] == created["sessionId"]
    assert got["sessionArn"] == created["sessionArn"]
    assert got["sessionStatus"] == "ACTIVE"
    assert got["sessionMetadata"] == {"user": "ana", "empty": ""}
    assert got["encryptionKeyArn"] == KMS_KEY_ARN
    assert got["createdAt"] == created["createdAt"]
    assert got["lastUpdatedAt"] >= got["createdAt"]
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_get_session_without_metadata_or_key(client):
    sid, _ = new_session(client)
    got = client.get_session(sessionIdentifier=sid)
    assert got.get("sessionMetadata", {}) == {}
    assert "encryptionKeyArn" not in got


def test_get_session_by_arn(client):
    sid, arn = new_session(client, sessionMetadata={"k": "v"})
    got = client.get_session(sessionIdentifier=arn)
    assert got["sessionId"] == sid
    assert got["sessionMetadata"] == {"k": "v"}


def test_get_unknown_session(client):
    new_session(client)
    with raises_code("ResourceNotFoundException", operation="GetSession"):
        client.get_session(sessionIdentifier="00000000-0000-4000-8000-000000000000")


@pytest.mark.parametrize("which", ["region", "account"])
def test_arn_of_other_region_or_account_is_not_found(client, which):
    _, arn = new_session(client)
    foreign = other_arn(arn, region="eu-west-1") if which == "region" else other_arn(arn, account="123456789012")
    with raises_code("ResourceNotFoundException"):
        client.get_session(sessionIdentifier=foreign)


def test_region_and_account_options(make_client):
    client = make_client(region="eu-west-3", account_id="123456789012")
    sid, arn = new_session(client)
    assert arn == f"arn:aws:bedrock:eu-west-3:123456789012:session/{sid}"
    assert client.get_session(sessionIdentifier=arn)["sessionId"] == sid
    with raises_code("ResourceNotFoundException"):
        client.get_session(sessionIdentifier=f"arn:aws:bedrock:us-east-1:000000000000:session/{sid}")


# ---------------------------------------------------------------- metadata limits
def test_metadata_50_entries_ok_51_rejected(client):
    fifty = {f"k{i}": f"v{i}" for i in range(50)}
    sid, _ = new_session(client, sessionMetadata=fifty)
    assert client.get_session(sessionIdentifier=sid)["sessionMetadata"] == fifty
    with raises_code("ValidationException", "sessionMetadata"):
        client.create_session(sessionMetadata={f"k{i}": "v" for i in range(51)})
    with raises_code("ValidationException", "sessionMetadata"):
        client.update_session(sessionIdentifier=sid, sessionMetadata={f"k{i}": "v" for i in range(51)})


def test_metadata_key_length_1_to_100(client):
    sid, _ = new_session(client, sessionMetadata={"a": "1", "k" * 100: "2"})
    assert client.get_session(sessionIdentifier=sid)["sessionMetadata"] == {"a": "1", "k" * 100: "2"}
    with raises_code("ValidationException", "sessionMetadata"):
        client.create_session(sessionMetadata={"k" * 101: "v"})
    with raises_code("ValidationException", "sessionMetadata"):
        client.create_session(sessionMetadata={"": "v"})
    with raises_code("ValidationException", "sessionMetadata"):
        client.update_session(sessionIdentifier=sid, sessionMetadata={"k" * 101: "v"})


def test_metadata_value_length_0_to_5000(client):
    sid, _ = new_session(client, sessionMetadata={"big": "é" * 5000, "none": ""})
    got = client.get_session(sessionIdentifier=sid)["sessionMetadata"]
    assert got == {"big": "é" * 5000, "none": ""}
    with raises_code("ValidationException", "sessionMetadata"):
        client.create_session(sessionMetadata={"big": "v" * 5001})
    with raises_code("ValidationException", "sessionMetadata"):
        client.update_session(sessionIdentifier=sid, sessionMetadata={"big": "v" * 5001})


def test_rejected_create_leaves_nothing(client):
    with raises_code("ValidationException"):
        client.create_session(sessionMetadata={"k" * 101: "v"})
    assert client.list_sessions()["sessionSummaries"] == []


# ---------------------------------------------------------------- KMS key ARN
@pytest.mark.parametrize(
    "arn",
    [
        KMS_KEY_ARN,
        "arn:aws-cn:kms:cn-north-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab",
    ],
)
def test_kms_key_arn_accepted(client, arn):
    sid, _ = new_session(client, encryptionKeyArn=arn)
    assert client.get_session(sessionIdentifier=sid)["encryptionKeyArn"] == arn


@pytest.mark.parametrize(
    "arn",
    [
        "",
        "not-an-arn",
        "arn:aws:kms:us-east-1:123456789012:alias/my-key",
        "arn:aws:kms:us-east-1:12345678901:key/1234abcd-12ab-34cd-56ef-1234567890ab",  # 11-digit account
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890a",  # 35-char key id
        "arn:aws:s3:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws-xx:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
    ],
)
def test_kms_key_arn_rejected(client, arn):
    with raises_code("ValidationException", "encryptionKeyArn"):
        client.create_session(encryptionKeyArn=arn)


def test_encryption_key_cannot_be_changed_by_update(client):
    sid, _ = new_session(client, encryptionKeyArn=KMS_KEY_ARN)
    with raises_code("ValidationException", "encryptionKeyArn"):
        client.update_session(sessionIdentifier=sid, encryptionKeyArn=KMS_KEY_ARN)


# ---------------------------------------------------------------- update
def test_update_replaces_metadata_whole(make_client):
    clock = ManualClock(start=T0)
    client = make_client(clock=clock)
    sid, _ = new_session(client, sessionMetadata={"a": "1", "b": "2"})
    clock.advance(5)
    resp = client.update_session(sessionIdentifier=sid, sessionMetadata={"c": "3"})
    assert resp["sessionId"] == sid
    assert resp["sessionStatus"] == "ACTIVE"
    assert resp["createdAt"] == T0
    assert resp["lastUpdatedAt"] == T0 + dt.timedelta(seconds=5)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    got = client.get_session(sessionIdentifier=sid)
    assert got["sessionMetadata"] == {"c": "3"}
    assert got["lastUpdatedAt"] == T0 + dt.timedelta(seconds=5)


def test_update_without_metadata_only_moves_last_updated(make_client):
    clock = ManualClock(start=T0)
    client = make_client(clock=clock)
    sid, arn = new_session(client, sessionMetadata={"a": "1"})
    clock.advance(7.25)
    resp = client.update_session(sessionIdentifier=arn)
    assert resp["lastUpdatedAt"] == T0 + dt.timedelta(seconds=7.25)
    got = client.get_session(sessionIdentifier=sid)
    assert got["sessionMetadata"] == {"a": "1"}
    assert got["createdAt"] == T0
    assert got["lastUpdatedAt"] == T0 + dt.timedelta(seconds=7.25)


def test_update_with_empty_metadata_clears_it(client):
    sid, _ = new_session(client, sessionMetadata={"a": "1"})
    client.update_session(sessionIdentifier=sid, sessionMetadata={})
    assert client.get_session(sessionIdentifier=sid).get("sessionMetadata", {}) == {}


def test_update_unknown_session(client):
    with raises_code("ResourceNotFoundException", operation="UpdateSession"):
        client.update_session(sessionIdentifier="00000000-0000-4000-8000-000000000000", sessionMetadata={})


def test_reads_do_not_move_last_updated(make_client):
    clock = ManualClock(start=T0)
    client = make_client(clock=clock)
    sid, arn = new_session(client)
    clock.advance(10)
    client.get_session(sessionIdentifier=sid)
    client.list_sessions()
    client.list_invocations(sessionIdentifier=sid)
    client.list_invocation_steps(sessionIdentifier=sid)
    assert client.get_session(sessionIdentifier=sid)["lastUpdatedAt"] == T0


# ---------------------------------------------------------------- list
def test_list_sessions_newest_first_with_summaries(make_client):
    clock = ManualClock(start=T0)
    client = make_client(clock=clock)
    ids = []
    for _ in range(4):
        ids.append(new_session(client)[0])
        clock.advance(1)
    resp = client.list_sessions()
    assert [s["sessionId"] for s in resp["sessionSummaries"]] == ids[::-1]
    assert "nextToken" not in resp
    first = resp["sessionSummaries"][-1]
    assert first["createdAt"] == T0 and first["lastUpdatedAt"] == T0
    assert first["sessionStatus"] == "ACTIVE"
    assert first["sessionArn"].endswith("session/" + ids[0])
    assert set(first) == {"createdAt", "lastUpdatedAt", "sessionArn", "sessionId", "sessionStatus"}


def test_list_sessions_ties_later_insert_first(make_client):
    client = make_client(clock=ManualClock(start=T0))
    ids = [new_session(client)[0] for _ in range(5)]
    assert [s["sessionId"] for s in list_all(client, "list_sessions", "sessionSummaries", maxResults=2)] == ids[::-1]


def test_list_sessions_empty(client):
    resp = client.list_sessions()
    assert resp["sessionSummaries"] == []
    assert "nextToken" not in resp


def test_list_sessions_shows_status(client):
    active, _ = new_session(client)
    ended, _ = new_session(client)
    client.end_session(sessionIdentifier=ended)
    statuses = {s["sessionId"]: s["sessionStatus"] for s in client.list_sessions()["sessionSummaries"]}
    assert statuses == {active: "ACTIVE", ended: "ENDED"}


# ---------------------------------------------------------------- end / delete (details in test_lifecycle)
def test_end_session_response(client):
    sid, arn = new_session(client)
    resp = client.end_session(sessionIdentifier=arn)
    assert resp["sessionId"] == sid and resp["sessionArn"] == arn and resp["sessionStatus"] == "ENDED"
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert client.get_session(sessionIdentifier=sid)["sessionStatus"] == "ENDED"


def test_delete_session_response(client):
    sid, _ = new_session(client)
    client.end_session(sessionIdentifier=sid)
    resp = client.delete_session(sessionIdentifier=sid)
    assert set(resp) == {"ResponseMetadata"}
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    with raises_code("ResourceNotFoundException"):
        client.get_session(sessionIdentifier=sid)


def test_end_and_delete_unknown(client):
    unknown = "00000000-0000-4000-8000-000000000000"
    with raises_code("ResourceNotFoundException", operation="EndSession"):
        client.end_session(sessionIdentifier=unknown)
    with raises_code("ResourceNotFoundException", operation="DeleteSession"):
        client.delete_session(sessionIdentifier=unknown)


# ---------------------------------------------------------------- timestamps and response metadata
def test_timestamps_are_aware_utc(client):
    sid, _ = new_session(client)
    stamps = []
    created = client.create_session()
    stamps.append(created["createdAt"])
    got = client.get_session(sessionIdentifier=sid)
    stamps += [got["createdAt"], got["lastUpdatedAt"]]
    upd = client.update_session(sessionIdentifier=sid)
    stamps += [upd["createdAt"], upd["lastUpdatedAt"]]
    for s in client.list_sessions()["sessionSummaries"]:
        stamps += [s["createdAt"], s["lastUpdatedAt"]]
    for ts in stamps:
        assert isinstance(ts, dt.datetime)
        assert ts.tzinfo is not None and ts.utcoffset() == dt.timedelta(0), ts
    # the system clock: created "now"
    assert abs(created["createdAt"] - dt.datetime.now(UTC)) < dt.timedelta(minutes=5)


def test_manual_clock_drives_timestamps(make_client):
    clock = ManualClock(start=T0)
    client = make_client(clock=clock)
    assert clock.now() == T0
    a = client.create_session()
    clock.set(T0 + dt.timedelta(days=1, microseconds=250_001))
    b = client.create_session()
    assert a["createdAt"] == T0
    assert b["createdAt"] == T0 + dt.timedelta(days=1, microseconds=250_001)


def test_response_metadata(client):
    resp = client.create_session()
    md = resp["ResponseMetadata"]
    assert isinstance(md["RequestId"], str) and md["RequestId"]
    assert isinstance(md["HTTPHeaders"], dict)
    assert md["RetryAttempts"] == 0
    other = client.get_session(sessionIdentifier=resp["sessionId"])["ResponseMetadata"]
    assert other["RequestId"] != md["RequestId"]


# ---------------------------------------------------------------- context managers
def test_sync_client_is_context_manager(store_kind, open_raw):
    raw = open_raw("sync")
    with raw as c:
        assert c is raw
        sid, _ = new_session(c)
        assert c.get_session(sessionIdentifier=sid)["sessionId"] == sid
