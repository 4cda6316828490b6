"""The 14 session operations through boto3 and the local server over real TCP (127.0.0.1): status codes, request
ids, response members, percent-encoded ARNs, timestamps, image bytes, and the boto3 paginators across pages."""

from __future__ import annotations

import base64
import datetime as dt
import re
import urllib.parse
from typing import Any

import pytest
from _server_support import SESSION_ARN_PREFIX, RequestLog, http
from _support import KMS_KEY_ARN, OPERATIONS, T0, UUID_RE, image_block, new_uuid, s3_image_block, text_payload

pytestmark = pytest.mark.timeout(60)

UTC = dt.timezone.utc
RFC3339_US = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")

# Success status and the members of each response (besides ResponseMetadata), from the wire mapping.
EXPECTED = {
    "CreateSession": (201, {"createdAt", "sessionArn", "sessionId", "sessionStatus"}),
    "GetSession": (200, {"createdAt", "lastUpdatedAt", "sessionArn", "sessionId", "sessionStatus", "sessionMetadata",
                         "encryptionKeyArn"}),
    "ListSessions": (200, {"sessionSummaries", "nextToken"}),
    "UpdateSession": (200, {"createdAt", "lastUpdatedAt", "sessionArn", "sessionId", "sessionStatus"}),
    "EndSession": (200, {"sessionArn", "sessionId", "sessionStatus"}),
    "DeleteSession": (200, set()),
    "CreateInvocation": (201, {"createdAt", "invocationId", "sessionId"}),
    "ListInvocations": (200, {"invocationSummaries", "nextToken"}),
    "PutInvocationStep": (201, {"invocationStepId"}),
    "GetInvocationStep": (200, {"invocationStep"}),
    "ListInvocationSteps": (200, {"invocationStepSummaries", "nextToken"}),
    "TagResource": (200, set()),
    "UntagResource": (200, set()),
    "ListTagsForResource": (200, {"tags"}),
}


def run_every_operation(c: Any) -> dict[str, dict[str, Any]]:
    """Calls each of the 14 operations once (with every optional member it has), returns op -> response."""
    out: dict[str, dict[str, Any]] = {}
    created = c.create_session(sessionMetadata={"user": "ana"}, tags={"team": "ai"}, encryptionKeyArn=KMS_KEY_ARN)
    out["CreateSession"] = created
    c.create_session()
    sid, arn = created["sessionId"], created["sessionArn"]
    out["ListSessions"] = c.list_sessions(maxResults=1)
    out["GetSession"] = c.get_session(sessionIdentifier=sid)
    out["UpdateSession"] = c.update_session(sessionIdentifier=arn, sessionMetadata={"user": "bo"})
    iid = new_uuid()
    out["CreateInvocation"] = c.create_invocation(sessionIdentifier=sid, invocationId=iid, description="turn 1")
    c.create_invocation(sessionIdentifier=sid)
    out["ListInvocations"] = c.list_invocations(sessionIdentifier=sid, maxResults=1)
    step = new_uuid()
    out["PutInvocationStep"] = c.put_invocation_step(
        sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step, invocationStepTime=T0,
        payload=text_payload("hello"),
    )
    c.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0,
                          payload=text_payload("again"))
    out["GetInvocationStep"] = c.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid,
                                                     invocationStepId=step)
    out["ListInvocationSteps"] = c.list_invocation_steps(sessionIdentifier=sid, invocationIdentifier=iid, maxResults=1)
    out["TagResource"] = c.tag_resource(resourceArn=arn, tags={"env": "dev"})
    out["UntagResource"] = c.untag_resource(resourceArn=arn, tagKeys=["team"])
    out["ListTagsForResource"] = c.list_tags_for_resource(resourceArn=arn)
    out["EndSession"] = c.end_session(sessionIdentifier=sid)
    out["DeleteSession"] = c.delete_session(sessionIdentifier=arn)
    return out


def test_every_operation_succeeds_with_its_status_and_members(server, boto):
    server.reset_stats()
    responses = run_every_operation(boto)
    assert set(responses) == set(OPERATIONS.values())
    for op, resp in responses.items():
        status, members = EXPECTED[op]
        md = resp["ResponseMetadata"]
        assert md["HTTPStatusCode"] == status, op
        assert md["RetryAttempts"] == 0, op
        assert set(resp) - {"ResponseMetadata"} == members, op
    # the server saw each of the 14 operations (and nothing else)
    ops = server.stats()["operations"]
    assert set(ops) == set(OPERATIONS.values())


def test_response_values(boto):
    r = run_every_operation(boto)
    created = r["CreateSession"]
    sid, arn = created["sessionId"], created["sessionArn"]
    assert UUID_RE.fullmatch(sid) and arn == SESSION_ARN_PREFIX + sid
    assert created["sessionStatus"] == "ACTIVE"
    got = r["GetSession"]
    assert got["sessionMetadata"] == {"user": "ana"} and got["encryptionKeyArn"] == KMS_KEY_ARN
    assert r["UpdateSession"]["sessionId"] == sid
    listed = r["ListSessions"]["sessionSummaries"]  # maxResults=1, newest first: the session created second
    assert len(listed) == 1 and listed[0]["sessionId"] != sid and r["ListSessions"]["nextToken"]
    assert r["ListInvocations"]["invocationSummaries"][0]["sessionId"] == sid
    step = r["GetInvocationStep"]["invocationStep"]
    assert step["payload"] == text_payload("hello")
    assert step["invocationStepId"] == r["PutInvocationStep"]["invocationStepId"]
    assert step["invocationId"] == r["CreateInvocation"]["invocationId"] and step["sessionId"] == sid
    assert r["ListTagsForResource"]["tags"] == {"env": "dev"}
    assert r["EndSession"]["sessionStatus"] == "ENDED" and r["EndSession"]["sessionArn"] == arn


def test_request_ids_present_unique_and_in_the_header(boto):
    ids = []
    for resp in run_every_operation(boto).values():
        md = resp["ResponseMetadata"]
        assert md["RequestId"] and md["HTTPHeaders"]["x-amzn-requestid"] == md["RequestId"]
        ids.append(md["RequestId"])
    for _ in range(10):
        ids.append(boto.list_sessions()["ResponseMetadata"]["RequestId"])
    assert len(set(ids)) == len(ids)


def test_delete_tag_untag_answer_an_empty_body(server, boto):
    """Raw HTTP: DeleteSession, TagResource and UntagResource answer 200 with no body."""
    created = boto.create_session(tags={"a": "1"})
    sid, arn = created["sessionId"], created["sessionArn"]
    enc = urllib.parse.quote(arn, safe="")
    base = server.endpoint_url
    for method, path, body in [
        ("POST", f"/tags/{enc}", {"tags": {"b": "2"}}),
        ("DELETE", f"/tags/{enc}?tagKeys=a&tagKeys=b", None),
    ]:
        resp = http(base, method, path, body)
        assert (resp.status, resp.body) == (200, b""), (method, path)
        assert resp.headers["x-amzn-requestid"]
    assert http(base, "PATCH", f"/sessions/{sid}").status == 200
    resp = http(base, "DELETE", f"/sessions/{sid}/")
    assert (resp.status, resp.body) == (200, b"")


# ---------------------------------------------------------------- ARNs as identifiers, percent-encoded
def test_arns_travel_percent_encoded_in_every_path_label(server, boto):
    log = RequestLog(boto)
    created = boto.create_session(tags={"t": "v"})
    sid, arn = created["sessionId"], created["sessionArn"]
    enc = urllib.parse.quote(arn, safe="")
    assert "%3A" in enc and "%2F" in enc
    iid = boto.create_invocation(sessionIdentifier=arn)["invocationId"]
    step = boto.put_invocation_step(sessionIdentifier=arn, invocationIdentifier=iid, invocationStepTime=T0,
                                    payload=text_payload("x"))["invocationStepId"]
    calls = [
        ("get_session", {"sessionIdentifier": arn}),
        ("update_session", {"sessionIdentifier": arn}),
        ("list_invocations", {"sessionIdentifier": arn}),
        ("get_invocation_step", {"sessionIdentifier": arn, "invocationIdentifier": iid, "invocationStepId": step}),
        ("list_invocation_steps", {"sessionIdentifier": arn}),
        ("tag_resource", {"resourceArn": arn, "tags": {"u": "w"}}),
        ("untag_resource", {"resourceArn": arn, "tagKeys": ["t"]}),
        ("list_tags_for_resource", {"resourceArn": arn}),
        ("end_session", {"sessionIdentifier": arn}),
        ("delete_session", {"sessionIdentifier": arn}),
    ]
    for name, kwargs in calls:
        resp = getattr(boto, name)(**kwargs)
        path = urllib.parse.urlsplit(log.last_url).path
        assert enc in path and arn not in path, (name, path)
        if "sessionId" in resp:
            assert resp["sessionId"] == sid
    assert log.requests[1][1].endswith(f"/sessions/{enc}/invocations/")


@pytest.mark.parametrize("case", ["upper-hex", "lower-hex"])
def test_raw_percent_encoded_arn_labels(server, boto, case):
    created = boto.create_session(tags={"k": "v"})
    arn = created["sessionArn"]
    enc = urllib.parse.quote(arn, safe="")
    if case == "lower-hex":
        enc = enc.replace("%3A", "%3a").replace("%2F", "%2f")
    base = server.endpoint_url
    got = http(base, "GET", f"/sessions/{enc}/")
    assert got.status == 200 and got.json()["sessionArn"] == arn
    assert http(base, "GET", f"/tags/{enc}").json() == {"tags": {"k": "v"}}
    assert http(base, "PATCH", f"/sessions/{enc}").json()["sessionStatus"] == "ENDED"


# ---------------------------------------------------------------- timestamps
def test_timestamps_round_trip_tz_aware(boto):
    sid = boto.create_session()["sessionId"]
    iid = boto.create_invocation(sessionIdentifier=sid)["invocationId"]
    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
    cases = [
        dt.datetime(2030, 6, 1, 12, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        dt.datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=ist),
        dt.datetime(1999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        T0,
    ]
    for when in cases:
        step = boto.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=when,
                                        payload=text_payload("t"))["invocationStepId"]
        got = boto.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid,
                                       invocationStepId=step)["invocationStep"]["invocationStepTime"]
        assert got.tzinfo is not None and got.utcoffset() == dt.timedelta(0), got
        assert got == when, (when, got)
    for s in boto.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]:
        assert s["invocationStepTime"].utcoffset() == dt.timedelta(0)
    created = boto.get_session(sessionIdentifier=sid)
    for key in ("createdAt", "lastUpdatedAt"):
        assert created[key].tzinfo is not None
        assert abs(created[key] - dt.datetime.now(UTC)) < dt.timedelta(minutes=5)


def test_timestamps_on_the_wire_are_rfc3339_utc_microseconds(server, boto):
    sid = boto.create_session()["sessionId"]
    iid = boto.create_invocation(sessionIdentifier=sid)["invocationId"]
    step = boto.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0,
                                    payload=text_payload("t"))["invocationStepId"]
    base = server.endpoint_url
    session = http(base, "GET", f"/sessions/{sid}/").json()
    stamps = [session["createdAt"], session["lastUpdatedAt"]]
    got = http(base, "POST", f"/sessions/{sid}/invocationSteps/{step}", {"invocationIdentifier": iid}).json()
    stamps.append(got["invocationStep"]["invocationStepTime"])
    stamps += [s["createdAt"] for s in http(base, "POST", f"/sessions/{sid}/invocations/").json()["invocationSummaries"]]
    for stamp in stamps:
        assert RFC3339_US.fullmatch(stamp), stamp
    assert got["invocationStep"]["invocationStepTime"] == "2025-01-02T03:04:05.000000Z"


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("2025-01-02T03:04:05Z", dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02T03:04:05.1Z", dt.datetime(2025, 1, 2, 3, 4, 5, 100000, tzinfo=UTC)),
        ("2025-01-02T03:04:05.123456Z", dt.datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2025-01-02T03:04:05.123456789Z", dt.datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        ("2025-01-02T05:04:05.5+02:00", dt.datetime(2025, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
        ("2025-01-01T22:04:05-05:00", dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_server_accepts_iso8601_variants(server, boto, wire, expected):
    """The wire rule: accept 0-9 fraction digits and `Z` or an offset (sent raw, as other SDKs may)."""
    sid = boto.create_session()["sessionId"]
    iid = boto.create_invocation(sessionIdentifier=sid)["invocationId"]
    resp = http(server.endpoint_url, "PUT", f"/sessions/{sid}/invocationSteps/",
                {"invocationIdentifier": iid, "invocationStepTime": wire, "payload": text_payload("x")})
    assert resp.status == 201, resp.body
    step = resp.json()["invocationStepId"]
    got = boto.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step)
    assert got["invocationStep"]["invocationStepTime"] == expected


# ---------------------------------------------------------------- image bytes
ALL_BYTES = bytes(range(256)) * 3


@pytest.mark.parametrize("fmt", ["png", "jpeg", "gif", "webp"])
def test_image_bytes_round_trip(server, boto, fmt):
    sid = boto.create_session()["sessionId"]
    iid = boto.create_invocation(sessionIdentifier=sid)["invocationId"]
    payload = {"contentBlocks": [
        {"text": "look: é 日本"},
        image_block(ALL_BYTES, fmt),
        image_block(b"\x00", fmt),
        s3_image_block(f"s3://bucket-1/cat.{fmt}", fmt),
    ]}
    step = boto.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0,
                                    payload=payload)["invocationStepId"]
    got = boto.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step)
    blocks = got["invocationStep"]["payload"]["contentBlocks"]
    assert blocks == payload["contentBlocks"]
    assert type(blocks[1]["image"]["source"]["bytes"]) is bytes
    # on the wire: base64 inside JSON
    raw = http(server.endpoint_url, "POST", f"/sessions/{sid}/invocationSteps/{step}", {"invocationIdentifier": iid})
    wire_bytes = raw.json()["invocationStep"]["payload"]["contentBlocks"][1]["image"]["source"]["bytes"]
    assert base64.b64decode(wire_bytes, validate=True) == ALL_BYTES


def test_large_image_round_trip(boto):
    data = bytes(range(256)) * (3 * 1024 * 1024 // 256)  # 3 MB, under the 3.75 MB image limit
    sid = boto.create_session()["sessionId"]
    iid = boto.create_invocation(sessionIdentifier=sid)["invocationId"]
    step = boto.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0,
                                    payload={"contentBlocks": [image_block(data, "png")]})["invocationStepId"]
    got = boto.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step)
    assert got["invocationStep"]["payload"]["contentBlocks"][0]["image"]["source"]["bytes"] == data


# ---------------------------------------------------------------- tags in the query string
def test_untag_keys_with_special_characters(boto):
    arn = boto.create_session()["sessionArn"]
    keys = {"a b": "1", "x+y": "2", "k/=:@": "3", "plain": "4", "_.-": "5"}
    boto.tag_resource(resourceArn=arn, tags=keys)
    log = RequestLog(boto)
    boto.untag_resource(resourceArn=arn, tagKeys=["a b", "x+y", "k/=:@"])
    query = urllib.parse.urlsplit(log.last_url).query
    assert query.count("tagKeys=") == 3 and "+" not in query
    assert boto.list_tags_for_resource(resourceArn=arn)["tags"] == {"plain": "4", "_.-": "5"}


# ---------------------------------------------------------------- pagination with boto3's paginators
LISTINGS = {
    "list_sessions": ("sessionSummaries", "sessionId"),
    "list_invocations": ("invocationSummaries", "invocationId"),
    "list_invocation_steps": ("invocationStepSummaries", "invocationStepId"),
}


def populate(c: Any, listing: str, n: int) -> tuple[list[str], dict[str, Any]]:
    """n items, newest first (createdAt ties: the later insert first), and the kwargs that list them."""
    if listing == "list_sessions":
        return [c.create_session()["sessionId"] for _ in range(n)][::-1], {}
    sid = c.create_session()["sessionId"]
    if listing == "list_invocations":
        return [c.create_invocation(sessionIdentifier=sid)["invocationId"] for _ in range(n)][::-1], {
            "sessionIdentifier": sid}
    iid = c.create_invocation(sessionIdentifier=sid)["invocationId"]
    ids = [
        c.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid,
                              invocationStepTime=T0 + dt.timedelta(seconds=i), payload=text_payload(str(i)))[
            "invocationStepId"]
        for i in range(n)
    ]
    return ids[::-1], {"sessionIdentifier": sid}


@pytest.mark.parametrize("listing", list(LISTINGS))
def test_paginator_walks_every_page(boto, listing):
    c = boto
    key, id_key = LISTINGS[listing]
    expected, kwargs = populate(c, listing, 25)
    log = RequestLog(c)
    pages = list(c.get_paginator(listing).paginate(**kwargs, PaginationConfig={"PageSize": 10}))
    assert [len(p[key]) for p in pages] == [10, 10, 5]
    assert [item[id_key] for p in pages for item in p[key]] == expected
    assert all("nextToken" in p for p in pages[:-1]) and "nextToken" not in pages[-1]
    # maxResults and nextToken travel in the query string
    queries = [urllib.parse.parse_qs(urllib.parse.urlsplit(url).query) for _, url in log.requests]
    assert [q["maxResults"] for q in queries] == [["10"]] * 3
    assert "nextToken" not in queries[0] and queries[1]["nextToken"] == [pages[0]["nextToken"]]
    # default page size (10) with the paginator's defaults
    assert [len(p[key]) for p in c.get_paginator(listing).paginate(**kwargs)] == [10, 10, 5]


@pytest.mark.parametrize("listing", list(LISTINGS))
def test_paginator_max_items_and_starting_token(boto, listing):
    key, id_key = LISTINGS[listing]
    expected, kwargs = populate(boto, listing, 12)
    paginator = boto.get_paginator(listing)
    first = paginator.paginate(**kwargs, PaginationConfig={"MaxItems": 5, "PageSize": 3}).build_full_result()
    assert [i[id_key] for i in first[key]] == expected[:5]
    rest = paginator.paginate(**kwargs, PaginationConfig={"StartingToken": first["NextToken"], "PageSize": 4}
                              ).build_full_result()
    assert [i[id_key] for i in rest[key]] == expected[5:]
    assert "NextToken" not in rest


def test_paginator_steps_of_one_invocation(boto):
    sid = boto.create_session()["sessionId"]
    i1 = boto.create_invocation(sessionIdentifier=sid)["invocationId"]
    i2 = boto.create_invocation(sessionIdentifier=sid)["invocationId"]
    mine = []
    for n in range(7):
        for inv in (i1, i2):
            r = boto.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=inv,
                                         invocationStepTime=T0 + dt.timedelta(seconds=n), payload=text_payload("s"))
            if inv == i1:
                mine.append(r["invocationStepId"])
    result = boto.get_paginator("list_invocation_steps").paginate(
        sessionIdentifier=sid, invocationIdentifier=i1, PaginationConfig={"PageSize": 2}).build_full_result()
    assert [s["invocationStepId"] for s in result["invocationStepSummaries"]] == mine[::-1]
    everything = boto.get_paginator("list_invocation_steps").paginate(sessionIdentifier=sid).build_full_result()
    assert len(everything["invocationStepSummaries"]) == 14
