"""put_invocation_step / get_invocation_step / list_invocation_steps: payloads, limits, quotas, order."""

from __future__ import annotations

import datetime as dt

import pytest
from _support import (
    T0,
    UTC,
    UUID_RE,
    image_block,
    list_all,
    new_invocation,
    new_session,
    new_uuid,
    put_text,
    raises_code,
    s3_image_block,
    text_payload,
)

from bedrock_sessions import SessionClient

MB = 1024 * 1024


@pytest.fixture
def inv(client):
    """(client, sessionId, invocationId)."""
    sid, _ = new_session(client)
    return client, sid, new_invocation(client, sid)


def get_step(client, sid, iid, step_id):
    return client.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step_id)[
        "invocationStep"
    ]


# ---------------------------------------------------------------- put / get round trips
def test_text_step_round_trip(inv):
    client, sid, iid = inv
    when = dt.datetime(2025, 3, 4, 5, 6, 7, 123000, tzinfo=UTC)
    resp = client.put_invocation_step(
        sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=when, payload=text_payload("hi", "ünïcode ✓")
    )
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 201
    step_id = resp["invocationStepId"]
    assert UUID_RE.fullmatch(step_id), step_id
    got = client.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step_id)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    step = got["invocationStep"]
    assert step["invocationStepId"] == step_id
    assert step["invocationId"] == iid
    assert step["sessionId"] == sid
    assert step["invocationStepTime"] == when
    assert step["invocationStepTime"].utcoffset() == dt.timedelta(0)
    assert step["payload"] == {"contentBlocks": [{"text": "hi"}, {"text": "ünïcode ✓"}]}


def test_generated_step_ids_are_distinct_lower_case_uuids(inv):
    client, sid, iid = inv
    ids = [put_text(client, sid, iid, f"t{i}") for i in range(5)]
    assert len(set(ids)) == 5
    assert all(UUID_RE.fullmatch(i) for i in ids)


def test_step_with_given_id(inv):
    client, sid, iid = inv
    step_id = new_uuid()
    assert put_text(client, sid, iid, "x", step_id=step_id) == step_id
    assert get_step(client, sid, iid, step_id)["payload"] == text_payload("x")


def test_step_time_in_other_timezone_comes_back_utc(inv):
    client, sid, iid = inv
    when = dt.datetime(2025, 1, 2, 5, 4, 5, 250000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    step_id = put_text(client, sid, iid, when=when)
    got = get_step(client, sid, iid, step_id)["invocationStepTime"]
    assert got == when
    assert got.utcoffset() == dt.timedelta(0)
    assert got.hour == 3


@pytest.mark.parametrize("fmt", ["png", "jpeg", "gif", "webp"])
def test_image_bytes_round_trip(inv, fmt):
    client, sid, iid = inv
    data = bytes(range(256)) * 4 + b"\x00\xff"
    payload = {"contentBlocks": [{"text": "look"}, image_block(data, fmt)]}
    step_id = client.put_invocation_step(
        sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0, payload=payload
    )["invocationStepId"]
    got = get_step(client, sid, iid, step_id)["payload"]
    assert got == payload
    image_bytes = got["contentBlocks"][1]["image"]["source"]["bytes"]
    assert type(image_bytes) is bytes
    assert image_bytes == data


def test_image_bytes_accept_bytearray(inv):
    client, sid, iid = inv
    for data in (bytearray(b"abc\x00"),):
        step_id = client.put_invocation_step(
            sessionIdentifier=sid,
            invocationIdentifier=iid,
            invocationStepTime=T0,
            payload={"contentBlocks": [image_block(data)]},
        )["invocationStepId"]
        got = get_step(client, sid, iid, step_id)["payload"]["contentBlocks"][0]["image"]["source"]["bytes"]
        assert got == bytes(data) and type(got) is bytes


@pytest.mark.parametrize("fmt", ["png", "jpeg", "gif", "webp"])
def test_s3_image_round_trip(inv, fmt):
    client, sid, iid = inv
    payload = {"contentBlocks": [s3_image_block("s3://my-bucket.example/a/b c.png", fmt)]}
    step_id = client.put_invocation_step(
        sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0, payload=payload
    )["invocationStepId"]
    assert get_step(client, sid, iid, step_id)["payload"] == payload


@pytest.mark.parametrize(
    "uri",
    [
        "http://my-bucket/key",
        "s3://My-Bucket/key",
        "s3://my-bucket/",
        "s3://my-bucket",
        "s3://ab/key",  # bucket of 2 characters
        "",
    ],
)
def test_s3_uri_pattern(inv, uri):
    client, sid, iid = inv
    with raises_code("ValidationException", "uri", "s3Location", "payload"):
        client.put_invocation_step(
            sessionIdentifier=sid,
            invocationIdentifier=iid,
            invocationStepTime=T0,
            payload={"contentBlocks": [s3_image_block(uri)]},
        )


def test_image_format_enum(inv):
    client, sid, iid = inv
    with raises_code("ValidationException", "format"):
        client.put_invocation_step(
            sessionIdentifier=sid,
            invocationIdentifier=iid,
            invocationStepTime=T0,
            payload={"contentBlocks": [image_block(b"x", "bmp")]},
        )


# ---------------------------------------------------------------- malformed payloads
BAD_PAYLOADS = {
    "no-blocks": {"contentBlocks": []},
    "no-contentBlocks": {},
    "empty-text": {"contentBlocks": [{"text": ""}]},
    "block-with-both": {"contentBlocks": [{"text": "t", **image_block()}]},
    "block-with-neither": {"contentBlocks": [{}]},
    "empty-image-bytes": {"contentBlocks": [image_block(b"")]},
    "source-with-both": {
        "contentBlocks": [
            {"image": {"format": "png", "source": {"bytes": b"x", "s3Location": {"uri": "s3://my-bucket/k"}}}}
        ]
    },
    "source-with-neither": {"contentBlocks": [{"image": {"format": "png", "source": {}}}]},
    "image-without-format": {"contentBlocks": [{"image": {"source": {"bytes": b"x"}}}]},
    "text-not-str": {"contentBlocks": [{"text": 5}]},
    "bytes-not-bytes": {"contentBlocks": [{"image": {"format": "png", "source": {"bytes": 12}}}]},
    "unknown-block-member": {"contentBlocks": [{"text": "t", "video": "v"}]},
    "blocks-not-list": {"contentBlocks": "text"},
}


@pytest.mark.parametrize("name", list(BAD_PAYLOADS))
def test_malformed_payload_rejected(inv, name):
    client, sid, iid = inv
    with raises_code("ValidationException", "payload", "contentBlocks", "text", "image", "source", "bytes", "format"):
        client.put_invocation_step(
            sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0, payload=BAD_PAYLOADS[name]
        )
    assert client.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"] == []


def test_payload_not_a_dict(inv):
    client, sid, iid = inv
    with raises_code("ValidationException", "payload"):
        client.put_invocation_step(
            sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0, payload="hello"
        )


# ---------------------------------------------------------------- per-request limits
def test_twenty_images_ok_twenty_one_rejected(inv):
    client, sid, iid = inv
    twenty = {"contentBlocks": [image_block(bytes([i]) * 10) for i in range(20)]}
    step_id = client.put_invocation_step(
        sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0, payload=twenty
    )["invocationStepId"]
    assert get_step(client, sid, iid, step_id)["payload"] == twenty
    blocks = [image_block(b"i") for _ in range(10)] + [s3_image_block() for _ in range(11)]
    with raises_code("ValidationException", "payload", "contentBlocks", "image"):
        client.put_invocation_step(
            sessionIdentifier=sid,
            invocationIdentifier=iid,
            invocationStepTime=T0,
            payload={"contentBlocks": [{"text": "21 images"}, *blocks]},
        )


def test_image_size_limit_3_75_mb(inv):
    client, sid, iid = inv
    ok = b"\x01" * 3_750_000  # under 3.75 MB however a MB is counted
    step_id = client.put_invocation_step(
        sessionIdentifier=sid,
        invocationIdentifier=iid,
        invocationStepTime=T0,
        payload={"contentBlocks": [image_block(ok)]},
    )["invocationStepId"]
    assert get_step(client, sid, iid, step_id)["payload"]["contentBlocks"][0]["image"]["source"]["bytes"] == ok
    too_big = b"\x02" * (int(3.75 * MB) + 1)  # over 3.75 MB however a MB is counted
    with raises_code("ValidationException", "bytes", "image", "payload", "contentBlocks"):
        client.put_invocation_step(
            sessionIdentifier=sid,
            invocationIdentifier=iid,
            invocationStepTime=T0,
            payload={"contentBlocks": [image_block(too_big)]},
        )
    assert len(client.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]) == 1


def test_max_step_bytes_counts_utf8_text_and_image_bytes(make_client):
    client = make_client(max_step_bytes=1000)
    sid, _ = new_session(client)
    iid = new_invocation(client, sid)
    exact = {"contentBlocks": [{"text": "é" * 400}, image_block(b"\x00" * 200)]}  # 800 + 200 bytes
    client.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0, payload=exact)
    for over in (
        {"contentBlocks": [{"text": "é" * 400}, image_block(b"\x00" * 201)]},  # 1001 bytes
        {"contentBlocks": [{"text": "é" * 500 + "x"}]},  # 501 characters, 1001 bytes
        {"contentBlocks": [{"text": "a" * 1001}]},
        {"contentBlocks": [{"text": "a" * 600}, {"text": "b" * 401}]},
    ):
        with raises_code("ValidationException", "payload"):
            client.put_invocation_step(
                sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0, payload=over
            )
    assert len(client.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]) == 1


def test_default_max_step_bytes_is_50_mb(client):
    sid, _ = new_session(client)
    iid = new_invocation(client, sid)
    with raises_code("ValidationException", "payload"):
        client.put_invocation_step(
            sessionIdentifier=sid,
            invocationIdentifier=iid,
            invocationStepTime=T0,
            payload={"contentBlocks": [{"text": "a" * (50 * MB + 1)}]},
        )


def test_step_quota(make_client):
    client = make_client(max_steps_per_session=5)
    sid, _ = new_session(client)
    i1 = new_invocation(client, sid)
    i2 = new_invocation(client, sid)
    ids = [put_text(client, sid, i1, "a"), put_text(client, sid, i1, "b"), put_text(client, sid, i2, "c")]
    ids += [put_text(client, sid, i2, "d"), put_text(client, sid, i1, "e")]
    with raises_code("ServiceQuotaExceededException", operation="PutInvocationStep"):
        put_text(client, sid, i2, "f")
    with raises_code("ServiceQuotaExceededException"):
        put_text(client, sid, new_invocation(client, sid), "g")
    steps = list_all(client, "list_invocation_steps", "invocationStepSummaries", sessionIdentifier=sid)
    assert sorted(s["invocationStepId"] for s in steps) == sorted(ids)
    # another session has its own quota
    other, _ = new_session(client)
    put_text(client, other, new_invocation(client, other))


def test_identical_retry_at_quota_succeeds(make_client):
    client = make_client(max_steps_per_session=2)
    sid, _ = new_session(client)
    iid = new_invocation(client, sid)
    put_text(client, sid, iid, "a")
    last = new_uuid()
    assert put_text(client, sid, iid, "b", when=T0, step_id=last) == last
    assert put_text(client, sid, iid, "b", when=T0, step_id=last) == last
    with raises_code("ServiceQuotaExceededException"):
        put_text(client, sid, iid, "c")


def test_default_step_quota_is_1000():
    client = SessionClient.memory()
    sid, _ = new_session(client)
    iid = new_invocation(client, sid)
    for i in range(1000):
        put_text(client, sid, iid, str(i), when=T0)
    with raises_code("ServiceQuotaExceededException"):
        put_text(client, sid, iid, "one too many")
    client.close()


# ---------------------------------------------------------------- idempotency and conflicts
def test_identical_retry_is_idempotent(inv):
    client, sid, iid = inv
    step_id = new_uuid()
    payload = {"contentBlocks": [{"text": "t"}, image_block(b"img")]}
    for _ in range(3):
        resp = client.put_invocation_step(
            sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step_id, invocationStepTime=T0, payload=payload
        )
        assert resp["invocationStepId"] == step_id
    steps = client.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]
    assert [s["invocationStepId"] for s in steps] == [step_id]


@pytest.mark.parametrize("change", ["payload", "time", "invocation"])
def test_same_step_id_different_content_conflicts(inv, change):
    client, sid, iid = inv
    other_iid = new_invocation(client, sid)
    step_id = put_text(client, sid, iid, "original", when=T0, step_id=new_uuid())
    kwargs = {"text": "original", "when": T0, "invocation": iid}
    if change == "payload":
        kwargs["text"] = "changed"
    elif change == "time":
        kwargs["when"] = T0 + dt.timedelta(milliseconds=1)
    else:
        kwargs["invocation"] = other_iid
    with raises_code("ConflictException", operation="PutInvocationStep"):
        put_text(client, sid, kwargs["invocation"], kwargs["text"], when=kwargs["when"], step_id=step_id)
    step = get_step(client, sid, iid, step_id)
    assert step["payload"] == text_payload("original") and step["invocationStepTime"] == T0


def test_same_step_id_in_two_sessions(client):
    step_id = new_uuid()
    for _ in range(2):
        sid, _ = new_session(client)
        iid = new_invocation(client, sid)
        assert put_text(client, sid, iid, step_id=step_id) == step_id


def test_step_in_unknown_invocation(inv):
    client, sid, _ = inv
    with raises_code("ResourceNotFoundException", operation="PutInvocationStep"):
        put_text(client, sid, new_uuid())


def test_step_in_invocation_of_another_session(client):
    a, _ = new_session(client)
    b, _ = new_session(client)
    ib = new_invocation(client, b)
    with raises_code("ResourceNotFoundException"):
        put_text(client, a, ib)


def test_step_in_unknown_session(client):
    with raises_code("ResourceNotFoundException"):
        put_text(client, new_uuid(), new_uuid())


def test_get_step_with_wrong_invocation(inv):
    client, sid, iid = inv
    other = new_invocation(client, sid)
    step_id = put_text(client, sid, iid)
    with raises_code("ResourceNotFoundException", operation="GetInvocationStep"):
        get_step(client, sid, other, step_id)
    with raises_code("ResourceNotFoundException"):
        get_step(client, sid, new_uuid(), step_id)


def test_get_unknown_step(inv):
    client, sid, iid = inv
    put_text(client, sid, iid)
    with raises_code("ResourceNotFoundException"):
        get_step(client, sid, iid, new_uuid())
    with raises_code("ResourceNotFoundException"):
        get_step(client, new_uuid(), iid, new_uuid())


def test_put_step_moves_last_updated(make_client):
    from bedrock_sessions import ManualClock

    clock = ManualClock(start=T0)
    client = make_client(clock=clock)
    sid, _ = new_session(client)
    iid = new_invocation(client, sid)
    clock.advance(9)
    put_text(client, sid, iid, when=T0 - dt.timedelta(days=3))
    assert client.get_session(sessionIdentifier=sid)["lastUpdatedAt"] == T0 + dt.timedelta(seconds=9)


# ---------------------------------------------------------------- list_invocation_steps
def test_list_steps_with_and_without_invocation(inv):
    client, sid, i1 = inv
    i2 = new_invocation(client, sid)
    a = put_text(client, sid, i1, "a", when=T0)
    b = put_text(client, sid, i2, "b", when=T0 + dt.timedelta(seconds=1))
    c = put_text(client, sid, i1, "c", when=T0 + dt.timedelta(seconds=2))
    every = client.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]
    assert [s["invocationStepId"] for s in every] == [c, b, a]
    assert [s["invocationId"] for s in every] == [i1, i2, i1]
    assert all(s["sessionId"] == sid for s in every)
    assert every[0]["invocationStepTime"] == T0 + dt.timedelta(seconds=2)
    assert set(every[0]) == {"invocationId", "invocationStepId", "invocationStepTime", "sessionId"}
    only1 = client.list_invocation_steps(sessionIdentifier=sid, invocationIdentifier=i1)["invocationStepSummaries"]
    assert [s["invocationStepId"] for s in only1] == [c, a]
    only2 = client.list_invocation_steps(sessionIdentifier=sid, invocationIdentifier=i2)["invocationStepSummaries"]
    assert [s["invocationStepId"] for s in only2] == [b]


def test_list_steps_newest_by_step_time_not_insertion(inv):
    client, sid, iid = inv
    times = [T0 + dt.timedelta(seconds=s) for s in (5, 1, 9, 3, 7)]
    ids = {put_text(client, sid, iid, when=t): t for t in times}
    listed = client.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]
    assert [s["invocationStepTime"] for s in listed] == sorted(times, reverse=True)
    assert [ids[s["invocationStepId"]] for s in listed] == sorted(times, reverse=True)


def test_list_steps_ties_later_insert_first(inv):
    client, sid, iid = inv
    older = put_text(client, sid, iid, when=T0 - dt.timedelta(seconds=1))
    same = [put_text(client, sid, iid, str(i), when=T0) for i in range(6)]
    newer = put_text(client, sid, iid, when=T0 + dt.timedelta(seconds=1))
    expected = [newer, *same[::-1], older]
    paged = list_all(client, "list_invocation_steps", "invocationStepSummaries", sessionIdentifier=sid, maxResults=3)
    assert [s["invocationStepId"] for s in paged] == expected
    by_inv = list_all(
        client, "list_invocation_steps", "invocationStepSummaries", sessionIdentifier=sid, invocationIdentifier=iid,
        maxResults=2,
    )
    assert [s["invocationStepId"] for s in by_inv] == expected


def test_list_steps_unknown_session(client):
    with raises_code("ResourceNotFoundException", operation="ListInvocationSteps"):
        client.list_invocation_steps(sessionIdentifier=new_uuid())


def test_step_time_microsecond_precision(inv):
    client, sid, iid = inv
    step_id = put_text(client, sid, iid, when=dt.datetime(2025, 1, 2, 3, 4, 5, 987654, tzinfo=UTC))
    for ts in (
        get_step(client, sid, iid, step_id)["invocationStepTime"],
        client.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"][0]["invocationStepTime"],
    ):
        assert ts == dt.datetime(2025, 1, 2, 3, 4, 5, 987654, tzinfo=UTC)
        assert ts.tzinfo is not None and ts.utcoffset() == dt.timedelta(0)
