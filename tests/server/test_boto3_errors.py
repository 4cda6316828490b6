"""Every error the local server can produce, as boto3 sees it over HTTP: the status code, the ``x-amzn-ErrorType``
header, the request id, the JSON body ``{"message", "__type"}``, botocore's generated exception class, and boto3's
retry habits (429/5xx retried, 400/404/409 not).

Codes covered: ValidationException (400), ServiceQuotaExceededException (400), ResourceNotFoundException (404),
ConflictException (409), ThrottlingException (429) and InternalServerException (500) — the last two through
fault injection.

AccessDeniedException (403) cannot be produced yet: the server does no authentication or authorization (any
request, signed or not, with any credentials, is served), so no request can be denied. It is not faked here;
``test_no_authentication_so_no_access_denied`` pins the current behaviour so that adding auth shows up.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

import botocore.exceptions
import pytest
from _server_support import SESSION_ARN_PREFIX, boto3_config, http
from _support import T0, new_uuid, text_payload

from bedrock_sessions import SessionClient

pytestmark = pytest.mark.timeout(60)

STATUS = {
    "ValidationException": 400,
    "ServiceQuotaExceededException": 400,
    "ResourceNotFoundException": 404,
    "ConflictException": 409,
    "ThrottlingException": 429,
    "InternalServerException": 500,
}


def check_error(err: BaseException, client: Any, code: str, *fields: str, operation: str | None = None) -> None:
    """The AWS error ``code`` as boto3 reports it, with everything the protocol puts on the wire."""
    assert isinstance(err, botocore.exceptions.ClientError), repr(err)
    assert isinstance(err, getattr(client.exceptions, code)), repr(err)
    resp = err.response
    assert resp["Error"]["Code"] == code, str(err)
    message = resp["Error"]["Message"]
    assert isinstance(message, str) and message
    if fields:
        assert any(f in message for f in fields), f"message does not name {fields}: {message!r}"
    md = resp["ResponseMetadata"]
    assert md["HTTPStatusCode"] == STATUS[code]
    headers = md["HTTPHeaders"]
    assert headers["x-amzn-errortype"] == code
    assert headers["x-amzn-requestid"] and md["RequestId"] == headers["x-amzn-requestid"]
    assert headers["content-type"] == "application/json"
    if operation is not None:
        assert err.operation_name == operation


def expect(client: Any, code: str, call: Any, *fields: str, operation: str | None = None) -> Any:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    check_error(info.value, client, code, *fields, operation=operation)
    return info.value


@pytest.fixture
def world(boto):
    created = boto.create_session(tags={"t": "v"})
    sid, arn = created["sessionId"], created["sessionArn"]
    iid = boto.create_invocation(sessionIdentifier=sid)["invocationId"]
    step = boto.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0,
                                    payload=text_payload("x"))["invocationStepId"]
    return sid, arn, iid, step


# ---------------------------------------------------------------- ValidationException
@pytest.mark.parametrize("listing", ["list_sessions", "list_invocations", "list_invocation_steps"])
@pytest.mark.parametrize("validate", [True, False], ids=["botocore-validation", "no-client-validation"])
def test_max_results_5000_is_refused_by_the_server(make_boto, server, world, listing, validate):
    """botocore checks only minimums: maxResults=5000 is sent even with client-side validation on."""
    c = make_boto(server, validate=validate)
    sid = world[0]
    kwargs = {} if listing == "list_sessions" else {"sessionIdentifier": sid}
    server.reset_stats()
    expect(c, "ValidationException", lambda: getattr(c, listing)(maxResults=5000, **kwargs), "maxResults")
    assert server.stats()["requests"] == 1  # it reached the server


@pytest.mark.parametrize(
    ("name", "build", "field"),
    [
        ("maxResults-0", lambda s, a, i, st: ("list_sessions", {"maxResults": 0}), "maxResults"),
        ("maxResults-1001", lambda s, a, i, st: ("list_invocations", {"sessionIdentifier": s, "maxResults": 1001}),
         "maxResults"),
        ("garbage-nextToken", lambda s, a, i, st: ("list_sessions", {"nextToken": "garbage"}), "nextToken"),
        ("not-a-uuid", lambda s, a, i, st: ("get_session", {"sessionIdentifier": "my-session"}), "sessionIdentifier"),
        ("upper-case-id", lambda s, a, i, st: ("get_session", {"sessionIdentifier": s.upper()}), "sessionIdentifier"),
        ("arn-of-other-service", lambda s, a, i, st: ("end_session", {"sessionIdentifier": a.replace(":bedrock:",
                                                                                                      ":s3:")}),
         "sessionIdentifier"),
        ("bad-invocationId", lambda s, a, i, st: ("create_invocation", {"sessionIdentifier": s, "invocationId": "x"}),
         "invocationId"),
        ("empty-description", lambda s, a, i, st: ("create_invocation", {"sessionIdentifier": s, "description": ""}),
         "description"),
        ("bad-step-id", lambda s, a, i, st: ("get_invocation_step", {"sessionIdentifier": s,
                                                                     "invocationIdentifier": i,
                                                                     "invocationStepId": "nope"}),
         "invocationStepId"),
        ("no-content-blocks", lambda s, a, i, st: ("put_invocation_step", {
            "sessionIdentifier": s, "invocationIdentifier": i, "invocationStepTime": T0,
            "payload": {"contentBlocks": []}}), "contentBlocks"),
        ("empty-text", lambda s, a, i, st: ("put_invocation_step", {
            "sessionIdentifier": s, "invocationIdentifier": i, "invocationStepTime": T0,
            "payload": {"contentBlocks": [{"text": ""}]}}), "text"),
        ("metadata-51-entries", lambda s, a, i, st: ("update_session", {
            "sessionIdentifier": s, "sessionMetadata": {f"k{n}": "v" for n in range(51)}}), "sessionMetadata"),
        ("bad-kms-arn", lambda s, a, i, st: ("create_session", {"encryptionKeyArn": "not-an-arn"}),
         "encryptionKeyArn"),
        ("tag-pattern", lambda s, a, i, st: ("tag_resource", {"resourceArn": a, "tags": {"a*": "v"}}), "tags"),
        ("empty-tag-keys", lambda s, a, i, st: ("untag_resource", {"resourceArn": a, "tagKeys": []}), "tagKeys"),
        ("resourceArn-is-id", lambda s, a, i, st: ("list_tags_for_resource", {"resourceArn": s}), "resourceArn"),
        ("resourceArn-of-agent", lambda s, a, i, st: ("list_tags_for_resource", {
            "resourceArn": a.replace(":session/", ":agent/")}), "resourceArn"),
        ("resourceArn-trailing-slash", lambda s, a, i, st: ("tag_resource", {"resourceArn": a + "/",
                                                                             "tags": {"k": "v"}}), "resourceArn"),
        ("resourceArn-percent-encoded", lambda s, a, i, st: ("untag_resource", {
            "resourceArn": a.replace(":", "%3A"), "tagKeys": ["t"]}), "resourceArn"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_validation_exception_from_the_server(server, raw_boto, world, name, build, field):
    """What botocore would refuse (or cannot check) is sent as is: the server refuses it, nothing changes."""
    sid, arn, iid, step = world
    op, kwargs = build(sid, arn, iid, step)
    expect(raw_boto, "ValidationException", lambda: getattr(raw_boto, op)(**kwargs), field)
    assert raw_boto.get_session(sessionIdentifier=sid)["sessionStatus"] == "ACTIVE"
    assert raw_boto.list_tags_for_resource(resourceArn=arn)["tags"] == {"t": "v"}
    assert len(raw_boto.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]) == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PUT", "/sessions/", b"{not json", "JSON"),
        ("PUT", "/sessions/", b"[1, 2]", "JSON object"),
        ("PUT", "/sessions/S/invocationSteps/", {"invocationIdentifier": "I", "invocationStepTime": "yesterday",
                                                 "payload": text_payload("x")}, "invocationStepTime"),
        ("PUT", "/sessions/S/invocationSteps/", {"invocationIdentifier": "I", "invocationStepTime": "2025-01-02T03:04:05",
                                                 "payload": text_payload("x")}, "invocationStepTime"),
        ("PUT", "/sessions/S/invocationSteps/", {
            "invocationIdentifier": "I", "invocationStepTime": "2025-01-02T03:04:05Z",
            "payload": {"contentBlocks": [{"image": {"format": "png", "source": {"bytes": "!!not base64!!"}}}]}},
         "bytes"),
        ("POST", "/sessions/?maxResults=ten", None, "maxResults"),
        ("GET", "/sessions/%FF%FE/", None, "UTF-8"),
    ],
    ids=["bad-json", "json-not-object", "bad-time", "time-without-zone", "bad-base64", "maxResults-not-int",
         "path-not-utf8"],
)
def test_validation_of_raw_requests(server, boto, world, method, path, body, field):
    """Requests no SDK would build: refused with a 400 ValidationException, header and JSON body."""
    sid, arn, iid, step = world
    path = path.replace("/S/", f"/{sid}/")
    if isinstance(body, dict) and body.get("invocationIdentifier") == "I":
        body = {**body, "invocationIdentifier": iid}
    resp = http(server.endpoint_url, method, path, body)
    assert resp.status == 400, resp.body
    assert resp.headers["x-amzn-errortype"] == "ValidationException"
    assert resp.headers["x-amzn-requestid"]
    doc = resp.json()
    assert set(doc) == {"message", "__type"} and doc["__type"] == "ValidationException"
    assert field in doc["message"], doc["message"]
    assert len(boto.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]) == 1


def test_unknown_query_parameters_are_ignored(server, world):
    resp = http(server.endpoint_url, "POST", "/sessions/?foo=bar&maxResults=1")
    assert resp.status == 200 and len(resp.json()["sessionSummaries"]) == 1


# ---------------------------------------------------------------- ResourceNotFoundException
def test_resource_not_found(boto, world):
    sid, arn, iid, step = world
    unknown = new_uuid()
    calls = [
        ("GetSession", lambda: boto.get_session(sessionIdentifier=unknown)),
        ("GetSession", lambda: boto.get_session(sessionIdentifier=SESSION_ARN_PREFIX + unknown)),
        ("GetSession", lambda: boto.get_session(sessionIdentifier=arn.replace("us-east-1", "eu-west-1"))),
        ("UpdateSession", lambda: boto.update_session(sessionIdentifier=unknown)),
        ("EndSession", lambda: boto.end_session(sessionIdentifier=unknown)),
        ("DeleteSession", lambda: boto.delete_session(sessionIdentifier=unknown)),
        ("CreateInvocation", lambda: boto.create_invocation(sessionIdentifier=unknown)),
        ("ListInvocations", lambda: boto.list_invocations(sessionIdentifier=unknown)),
        ("PutInvocationStep", lambda: boto.put_invocation_step(
            sessionIdentifier=sid, invocationIdentifier=new_uuid(), invocationStepTime=T0, payload=text_payload("x"))),
        ("GetInvocationStep", lambda: boto.get_invocation_step(
            sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=new_uuid())),
        ("ListInvocationSteps", lambda: boto.list_invocation_steps(sessionIdentifier=unknown)),
        ("TagResource", lambda: boto.tag_resource(resourceArn=SESSION_ARN_PREFIX + unknown, tags={"a": "b"})),
        ("UntagResource", lambda: boto.untag_resource(resourceArn=SESSION_ARN_PREFIX + unknown, tagKeys=["a"])),
        ("ListTagsForResource", lambda: boto.list_tags_for_resource(resourceArn=SESSION_ARN_PREFIX + unknown)),
    ]
    for op, call in calls:
        expect(boto, "ResourceNotFoundException", call, operation=op)


# ---------------------------------------------------------------- ConflictException
def test_conflicts(boto, world):
    sid, arn, iid, step = world
    expect(boto, "ConflictException", lambda: boto.delete_session(sessionIdentifier=sid), operation="DeleteSession")
    expect(boto, "ConflictException", lambda: boto.create_invocation(sessionIdentifier=sid, invocationId=iid),
           operation="CreateInvocation")
    expect(boto, "ConflictException", lambda: boto.put_invocation_step(
        sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step, invocationStepTime=T0,
        payload=text_payload("different")), operation="PutInvocationStep")
    boto.end_session(sessionIdentifier=sid)
    expect(boto, "ConflictException", lambda: boto.end_session(sessionIdentifier=sid), operation="EndSession")
    expect(boto, "ConflictException", lambda: boto.update_session(sessionIdentifier=sid), operation="UpdateSession")
    expect(boto, "ConflictException", lambda: boto.create_invocation(sessionIdentifier=sid))
    expect(boto, "ConflictException", lambda: boto.put_invocation_step(
        sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0, payload=text_payload("y")))


# ---------------------------------------------------------------- ServiceQuotaExceededException
def test_service_quota_exceeded(make_server, make_boto):
    server = make_server(max_steps_per_session=2)
    c = make_boto(server)
    sid = c.create_session()["sessionId"]
    iid = c.create_invocation(sessionIdentifier=sid)["invocationId"]
    for n in range(2):
        c.put_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0,
                              payload=text_payload(str(n)))
    expect(c, "ServiceQuotaExceededException", lambda: c.put_invocation_step(
        sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0, payload=text_payload("3")),
        operation="PutInvocationStep")
    assert len(c.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]) == 2


def test_step_over_max_step_bytes_is_a_validation_error(make_server, make_boto):
    server = make_server(max_step_bytes=100)
    c = make_boto(server)
    sid = c.create_session()["sessionId"]
    iid = c.create_invocation(sessionIdentifier=sid)["invocationId"]
    expect(c, "ValidationException", lambda: c.put_invocation_step(
        sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0, payload=text_payload("x" * 101)),
        "payload")


# ---------------------------------------------------------------- retry habits of boto3 on these errors
def test_client_errors_are_not_retried(server, make_boto, world):
    c = make_boto(server, retries={"total_max_attempts": 3, "mode": "standard"})
    sid = world[0]
    server.reset_stats()
    for code, call in [
        ("ValidationException", lambda: c.list_sessions(maxResults=5000)),
        ("ResourceNotFoundException", lambda: c.get_session(sessionIdentifier=new_uuid())),
        ("ConflictException", lambda: c.delete_session(sessionIdentifier=sid)),
    ]:
        err = expect(c, code, call)
        assert err.response["ResponseMetadata"]["RetryAttempts"] == 0
    assert server.stats()["requests"] == 3


# ---------------------------------------------------------------- ThrottlingException / InternalServerException
@pytest.mark.parametrize(("fault", "code"), [("throttle", "ThrottlingException"), ("500", "InternalServerException")])
def test_injected_error_faults_with_retries_disabled(make_server, make_boto, fault, code):
    faulty = make_server(fault_rate=1.0, faults=[fault])
    c = make_boto(faulty)
    err = expect(c, code, lambda: c.create_session(), operation="CreateSession")
    assert err.response["ResponseMetadata"]["RetryAttempts"] == 0
    stats = faulty.stats()
    assert (stats["requests"], stats["faults"]) == (1, 1)
    # the operation was not run: a clean server over the same store sees no session
    clean = make_boto(make_server(db=faulty.client))
    assert clean.list_sessions()["sessionSummaries"] == []


@pytest.mark.parametrize(("fault", "code"), [("throttle", "ThrottlingException"), ("500", "InternalServerException")])
def test_injected_error_faults_are_retried_by_boto3(make_server, make_boto, fault, code):
    faulty = make_server(fault_rate=1.0, faults=[fault])
    c = make_boto(faulty, retries={"total_max_attempts": 3, "mode": "standard"})
    err = expect(c, code, lambda: c.list_sessions())
    assert err.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert faulty.stats()["requests"] == 3 and faulty.stats()["faults"] == 3


def test_injected_error_body_and_headers(make_server):
    for fault, code in [("throttle", "ThrottlingException"), ("500", "InternalServerException")]:
        faulty = make_server(fault_rate=1.0, faults=[fault])
        resp = http(faulty.endpoint_url, "POST", "/sessions/")
        assert resp.status == STATUS[code]
        assert resp.headers["x-amzn-errortype"] == code and resp.headers["x-amzn-requestid"]
        assert resp.json()["__type"] == code and resp.json()["message"]


@pytest.mark.parametrize(("fault", "committed"), [("drop-before", False), ("drop-after", True)])
def test_dropped_connections(make_server, make_boto, fault, committed):
    """A dropped connection is a ConnectionClosedError (no HTTP status); drop-after ran the operation first."""
    faulty = make_server(fault_rate=1.0, faults=[fault])
    c = make_boto(faulty)
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        c.create_session(sessionMetadata={"n": "1"})
    clean = make_boto(make_server(db=faulty.client))
    sessions = clean.list_sessions()["sessionSummaries"]
    assert len(sessions) == (1 if committed else 0)


# ---------------------------------------------------------------- the error body on the wire
def test_error_body_and_headers_on_the_wire(make_server):
    server = make_server(max_steps_per_session=1)
    base = server.endpoint_url
    sid = http(base, "PUT", "/sessions/", {}).json()["sessionId"]
    iid = http(base, "PUT", f"/sessions/{sid}/invocations/", {}).json()["invocationId"]
    step = {"invocationIdentifier": iid, "invocationStepTime": "2025-01-02T03:04:05Z", "payload": text_payload("x")}
    assert http(base, "PUT", f"/sessions/{sid}/invocationSteps/", step).status == 201
    cases = [
        ("ValidationException", ("POST", "/sessions/?maxResults=0", None)),
        ("ResourceNotFoundException", ("GET", f"/sessions/{new_uuid()}/", None)),
        ("ConflictException", ("DELETE", f"/sessions/{sid}/", None)),
        ("ServiceQuotaExceededException", ("PUT", f"/sessions/{sid}/invocationSteps/", step)),
    ]
    request_ids = set()
    for code, (method, path, body) in cases:
        resp = http(base, method, path, body)
        assert resp.status == STATUS[code], (code, resp.body)
        assert resp.headers["x-amzn-errortype"] == code
        assert resp.headers["content-type"] == "application/json"
        doc = resp.json()
        assert set(doc) == {"message", "__type"} and doc["__type"] == code and doc["message"]
        request_ids.add(resp.headers["x-amzn-requestid"])
    assert len(request_ids) == len(cases)


# ---------------------------------------------------------------- paths that name no operation
def test_unknown_routes_are_404_unknown_operation(server):
    for method, path in [("GET", "/nope"), ("POST", "/sessions/a/b/c/d"), ("PATCH", "/sessions/"), ("GET", "/tags/"),
                         ("PUT", "/tags/x"), ("GET", "/")]:
        resp = http(server.endpoint_url, method, path, b"" if method in ("PUT", "POST", "PATCH") else None)
        assert resp.status == 404, (method, path)
        assert resp.headers["x-amzn-errortype"] == "UnknownOperationException"
        assert resp.headers["x-amzn-requestid"]
        assert resp.json()["__type"] == "UnknownOperationException"
    assert server.stats()["requests"] == 0  # not API requests


def test_empty_labels_through_boto3(raw_boto, world):
    """Where an empty URI label makes another operation's path (the behaviour tests skip these over HTTP):
    EndSession's ``PATCH /sessions/`` and ListTagsForResource's ``GET /tags/`` name no operation (404);
    GetInvocationStep's ``POST /sessions/{id}/invocationSteps/`` is ListInvocationSteps' path."""
    sid, arn, iid, step = world
    for call in (lambda: raw_boto.end_session(sessionIdentifier=""),
                 lambda: raw_boto.list_tags_for_resource(resourceArn="")):
        with pytest.raises(botocore.exceptions.ClientError) as info:
            call()
        assert info.value.response["Error"]["Code"] == "UnknownOperationException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    resp = raw_boto.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId="")
    assert "invocationStep" not in resp  # a ListInvocationSteps answer, parsed as GetInvocationStep's shape
    for call in (lambda: raw_boto.get_session(sessionIdentifier=""),
                 lambda: raw_boto.delete_session(sessionIdentifier=""),
                 lambda: raw_boto.create_invocation(sessionIdentifier="")):
        expect(raw_boto, "ValidationException", call, "sessionIdentifier")
    assert raw_boto.get_session(sessionIdentifier=sid)["sessionStatus"] == "ACTIVE"


# ---------------------------------------------------------------- no authentication: no AccessDeniedException
def test_no_authentication_so_no_access_denied(server, make_boto):
    """Unsigned requests and requests signed with any credentials are served: the server has no auth, so
    AccessDeniedException (403) is never produced (see the module docstring)."""
    unsigned = http(server.endpoint_url, "PUT", "/sessions/", {})
    assert unsigned.status == 201
    forged = http(server.endpoint_url, "GET", f"/sessions/{unsigned.json()['sessionId']}/",
                  headers={"Authorization": "AWS4-HMAC-SHA256 Credential=nobody/20250101/us-east-1/bedrock/aws4_request,"
                                            " SignedHeaders=host, Signature=00"})
    assert forged.status == 200
    other = server.boto3_client(aws_access_key_id="AKIAOTHER", aws_secret_access_key="x", aws_session_token=None,
                                config=boto3_config())
    try:
        assert other.list_sessions()["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        other.close()


def test_server_over_a_given_session_client(make_server, make_boto, tmp_path):
    """LocalServer(db=SessionClient): the server serves that client's store; both see the same data."""
    with SessionClient.local(str(tmp_path / "shared.db")) as store:
        server = make_server(db=store)
        c = make_boto(server)
        sid = c.create_session()["sessionId"]
        assert store.get_session(sessionIdentifier=sid)["sessionStatus"] == "ACTIVE"
        store.end_session(sessionIdentifier=sid)
        assert c.get_session(sessionIdentifier=sid)["sessionStatus"] == "ENDED"
        assert isinstance(c.get_session(sessionIdentifier=sid)["createdAt"], dt.datetime)
        enc = urllib.parse.quote(c.get_session(sessionIdentifier=sid)["sessionArn"], safe="")
        assert enc.startswith("arn%3Aaws%3Abedrock")
        server.stop()  # before the store closes; the server does not own it
        assert not server.running
        assert store.get_session(sessionIdentifier=sid)["sessionStatus"] == "ENDED"
