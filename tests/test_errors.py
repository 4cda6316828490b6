"""Error classes and codes; identifiers (id / ARN / malformed) everywhere; unknown kwargs, wrong types, missing
required members."""

from __future__ import annotations

import contextlib
import datetime as dt

import botocore.exceptions
import pytest
from _support import (
    T0,
    image_block,
    new_invocation,
    new_session,
    new_uuid,
    other_arn,
    put_text,
    raises_code,
    text_payload,
)

from bedrock_sessions import BedrockSessionsError, exceptions


# ---------------------------------------------------------------- error classes
CODES = {
    "ValidationException": 400,
    "ResourceNotFoundException": 404,
    "ConflictException": 409,
    "ServiceQuotaExceededException": 400,
    "AccessDeniedException": 403,
    "ThrottlingException": 429,
    "InternalServerException": 500,
}


@pytest.mark.parametrize("code", list(CODES))
def test_error_classes(code, client):
    cls = getattr(exceptions, code)
    assert issubclass(cls, BedrockSessionsError)
    assert issubclass(cls, botocore.exceptions.ClientError)
    assert getattr(client.exceptions, code) is cls


def test_validation_is_value_error_and_not_found_is_lookup_error():
    assert issubclass(exceptions.ValidationException, ValueError)
    assert issubclass(exceptions.ResourceNotFoundException, LookupError)
    assert not issubclass(exceptions.ConflictException, (ValueError, LookupError))


def test_not_found_error_details(client):
    unknown = new_uuid()
    with pytest.raises(client.exceptions.ResourceNotFoundException) as info:
        client.get_session(sessionIdentifier=unknown)
    err = info.value
    assert isinstance(err, botocore.exceptions.ClientError)
    assert isinstance(err, LookupError)
    assert err.response["Error"]["Code"] == "ResourceNotFoundException"
    assert isinstance(err.response["Error"]["Message"], str) and err.response["Error"]["Message"]
    assert err.operation_name == "GetSession"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "ResourceNotFoundException" in str(err) and "GetSession" in str(err)


def test_validation_error_details(client):
    with pytest.raises(ValueError) as info:
        client.list_sessions(maxResults=0)
    err = info.value
    assert isinstance(err, client.exceptions.ValidationException)
    assert isinstance(err, botocore.exceptions.ClientError)
    assert err.response["Error"]["Code"] == "ValidationException"
    assert err.operation_name == "ListSessions"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_conflict_and_quota_error_details(make_client):
    client = make_client(max_steps_per_session=1)
    sid, _ = new_session(client)
    with pytest.raises(client.exceptions.ConflictException) as info:
        client.delete_session(sessionIdentifier=sid)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert info.value.operation_name == "DeleteSession"
    iid = new_invocation(client, sid)
    put_text(client, sid, iid)
    with pytest.raises(client.exceptions.ServiceQuotaExceededException) as info:
        put_text(client, sid, iid)
    assert info.value.response["Error"]["Code"] == "ServiceQuotaExceededException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_catch_as_client_error_like_boto3_code(client):
    try:
        client.get_session(sessionIdentifier=new_uuid())
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "ResourceNotFoundException"
    else:
        pytest.fail("no error")


# ---------------------------------------------------------------- sessionIdentifier: id and ARN everywhere
@pytest.fixture
def world(client):
    sid, arn = new_session(client, tags={"t": "v"})
    iid = new_invocation(client, sid)
    step = put_text(client, sid, iid, "x", when=T0)
    return client, sid, arn, iid, step


# operation -> kwargs builder taking (session identifier, invocation id, step id)
SESSION_OPS = {
    "get_session": lambda s, i, st: {"sessionIdentifier": s},
    "update_session": lambda s, i, st: {"sessionIdentifier": s, "sessionMetadata": {"a": "b"}},
    "create_invocation": lambda s, i, st: {"sessionIdentifier": s},
    "list_invocations": lambda s, i, st: {"sessionIdentifier": s},
    "put_invocation_step": lambda s, i, st: {
        "sessionIdentifier": s,
        "invocationIdentifier": i,
        "invocationStepTime": T0,
        "payload": text_payload("y"),
    },
    "get_invocation_step": lambda s, i, st: {"sessionIdentifier": s, "invocationIdentifier": i, "invocationStepId": st},
    "list_invocation_steps": lambda s, i, st: {"sessionIdentifier": s},
    "end_session": lambda s, i, st: {"sessionIdentifier": s},
}


@pytest.mark.parametrize("op", list(SESSION_OPS))
@pytest.mark.parametrize("form", ["id", "arn"])
def test_session_identifier_forms(world, op, form):
    client, sid, arn, iid, step = world
    resp = getattr(client, op)(**SESSION_OPS[op](sid if form == "id" else arn, iid, step))
    if "sessionId" in resp:
        assert resp["sessionId"] == sid
    if op == "get_invocation_step":
        assert resp["invocationStep"]["sessionId"] == sid


@pytest.mark.parametrize("form", ["id", "arn"])
def test_delete_session_identifier_forms(client, form):
    sid, arn = new_session(client)
    client.end_session(sessionIdentifier=sid)
    client.delete_session(sessionIdentifier=sid if form == "id" else arn)
    with raises_code("ResourceNotFoundException"):
        client.get_session(sessionIdentifier=sid)


@pytest.mark.parametrize("op", [*SESSION_OPS, "delete_session"])
@pytest.mark.parametrize("which", ["region", "account", "unknown-id"])
def test_unknown_session_arn_is_not_found(world, op, which):
    client, sid, arn, iid, step = world
    if which == "region":
        foreign = other_arn(arn, region="us-west-2")
    elif which == "account":
        foreign = other_arn(arn, account="111122223333")
    else:
        foreign = other_arn(arn)[:-36] + new_uuid()
    build = SESSION_OPS.get(op, lambda s, i, st: {"sessionIdentifier": s})
    with raises_code("ResourceNotFoundException"):
        getattr(client, op)(**build(foreign, iid, step))
    assert client.get_session(sessionIdentifier=sid)["sessionStatus"] == "ACTIVE"


def bad_identifiers(sid, arn):
    return {
        "upper-case-id": sid.upper(),
        "not-uuid": "my-session",
        "empty": "",
        "id-with-space": sid + " ",
        "braced-id": "{" + sid + "}",
        "percent-encoded-arn": arn.replace(":", "%3A").replace("/", "%2F"),
        "percent-colon-only": arn.replace(":", "%3A"),
        "arn-other-service": arn.replace(":bedrock:", ":s3:"),
        "arn-other-resource": arn.replace(":session/", ":agent/"),
        "arn-trailing-slash": arn + "/",
        "arn-upper-id": arn[:-36] + sid.upper(),
        "arn-bad-account": arn.replace(":000000000000:", ":0000:"),
        "arn-prefix-junk": "x" + arn,
        "id-suffix-junk": sid + "x",
    }


_Z = "00000000-0000-4000-8000-000000000000"
BAD_KEYS = list(bad_identifiers(_Z, "arn:aws:bedrock:us-east-1:000000000000:session/" + _Z))


@pytest.mark.parametrize("op", [*SESSION_OPS, "delete_session"])
@pytest.mark.parametrize("bad", BAD_KEYS)
def test_malformed_session_identifier(world, op, bad):
    client, sid, arn, iid, step = world
    value = bad_identifiers(sid, arn)[bad]
    build = SESSION_OPS.get(op, lambda s, i, st: {"sessionIdentifier": s})
    with raises_code("ValidationException", "sessionIdentifier"):
        getattr(client, op)(**build(value, iid, step))
    assert client.get_session(sessionIdentifier=sid)["sessionStatus"] == "ACTIVE"


def test_percent_encoded_arn_is_not_an_arn_for_tags(world):
    client, sid, arn, iid, step = world
    with raises_code("ValidationException", "resourceArn"):
        client.list_tags_for_resource(resourceArn=arn.replace(":", "%3A").replace("/", "%2F"))


def test_arn_with_colons_and_slashes_everywhere(world):
    """The plain ARN string (':' and '/') works on every operation that takes one."""
    client, sid, arn, iid, step = world
    assert ":" in arn and "/" in arn
    assert client.get_session(sessionIdentifier=arn)["sessionArn"] == arn
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"t": "v"}
    client.tag_resource(resourceArn=arn, tags={"u": "w"})
    client.untag_resource(resourceArn=arn, tagKeys=["t"])
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"u": "w"}
    new_iid = client.create_invocation(sessionIdentifier=arn)["invocationId"]
    new_step = put_text(client, arn, new_iid)
    assert client.get_invocation_step(sessionIdentifier=arn, invocationIdentifier=new_iid, invocationStepId=new_step)[
        "invocationStep"
    ]["invocationStepId"] == new_step
    assert len(client.list_invocation_steps(sessionIdentifier=arn)["invocationStepSummaries"]) == 2
    assert client.end_session(sessionIdentifier=arn)["sessionArn"] == arn
    client.delete_session(sessionIdentifier=arn)


# ---------------------------------------------------------------- other identifiers
@pytest.mark.parametrize("bad", ["nope", "", "ABCDEF01-2345-4678-9abc-def012345678", "arn:aws:bedrock:x"])
def test_malformed_invocation_and_step_identifiers(world, bad):
    client, sid, arn, iid, step = world
    with raises_code("ValidationException", "invocationIdentifier"):
        put_text(client, sid, bad)
    with raises_code("ValidationException", "invocationIdentifier"):
        client.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=bad, invocationStepId=step)
    with raises_code("ValidationException", "invocationIdentifier"):
        client.list_invocation_steps(sessionIdentifier=sid, invocationIdentifier=bad)
    with raises_code("ValidationException", "invocationStepId"):
        client.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=bad)
    with raises_code("ValidationException", "invocationStepId"):
        put_text(client, sid, iid, step_id=bad)


# ---------------------------------------------------------------- unknown kwargs, wrong types, missing members
def test_unknown_kwarg(world):
    client, sid, arn, iid, step = world
    with raises_code("ValidationException", "sessionName", operation="CreateSession"):
        client.create_session(sessionName="x")
    with raises_code("ValidationException", "sessionID"):
        client.get_session(sessionID=sid)
    with raises_code("ValidationException", "maxItems"):
        client.list_sessions(maxItems=3)
    with raises_code("ValidationException", "invocationStepId"):
        client.create_invocation(sessionIdentifier=sid, invocationStepId=step)


def test_positional_arguments_refused(world):
    client, sid, arn, iid, step = world
    with pytest.raises((TypeError, ValueError)):
        client.get_session(sid)


WRONG_TYPES = [
    ("create_session", {"sessionMetadata": "a=b"}, "sessionMetadata"),
    ("create_session", {"sessionMetadata": {"a": 1}}, "sessionMetadata"),
    ("create_session", {"sessionMetadata": {1: "a"}}, "sessionMetadata"),
    ("create_session", {"tags": ["a"]}, "tags"),
    ("create_session", {"tags": {"a": None}}, "tags"),
    ("create_session", {"encryptionKeyArn": 5}, "encryptionKeyArn"),
    ("get_session", {"sessionIdentifier": 5}, "sessionIdentifier"),
    ("get_session", {"sessionIdentifier": None}, "sessionIdentifier"),
    ("list_sessions", {"maxResults": "5"}, "maxResults"),
    ("list_sessions", {"maxResults": 2.5}, "maxResults"),
    ("list_sessions", {"nextToken": 7}, "nextToken"),
    ("create_invocation", {"sessionIdentifier": "S", "description": 5}, "description"),
    ("create_invocation", {"sessionIdentifier": "S", "invocationId": 5}, "invocationId"),
    ("put_invocation_step", {"invocationStepTime": [1]}, "invocationStepTime"),
    ("put_invocation_step", {"invocationStepTime": "not a time"}, "invocationStepTime"),
    ("put_invocation_step", {"payload": ["text"]}, "payload"),
    ("put_invocation_step", {"invocationIdentifier": 5}, "invocationIdentifier"),
    ("list_invocation_steps", {"sessionIdentifier": "S", "invocationIdentifier": 5}, "invocationIdentifier"),
    ("tag_resource", {"resourceArn": "A", "tags": "a=b"}, "tags"),
    ("untag_resource", {"resourceArn": "A", "tagKeys": "a"}, "tagKeys"),
    ("untag_resource", {"resourceArn": "A", "tagKeys": [5]}, "tagKeys"),
    ("list_tags_for_resource", {"resourceArn": 5}, "resourceArn"),
]


@pytest.mark.parametrize(("op", "kwargs", "field"), WRONG_TYPES, ids=[f"{o}-{f}-{i}" for i, (o, _, f) in enumerate(WRONG_TYPES)])
def test_wrong_type(world, op, kwargs, field):
    client, sid, arn, iid, step = world
    call = dict(kwargs)
    for k, v in call.items():
        if v == "S":
            call[k] = sid
        elif v == "A":
            call[k] = arn
    if op == "put_invocation_step":
        base = {"sessionIdentifier": sid, "invocationIdentifier": iid, "invocationStepTime": T0, "payload": text_payload("z")}
        call = {**base, **call}
    with raises_code("ValidationException", field):
        getattr(client, op)(**call)


MISSING = [
    ("get_session", "sessionIdentifier"),
    ("update_session", "sessionIdentifier"),
    ("end_session", "sessionIdentifier"),
    ("delete_session", "sessionIdentifier"),
    ("create_invocation", "sessionIdentifier"),
    ("list_invocations", "sessionIdentifier"),
    ("put_invocation_step", "sessionIdentifier"),
    ("put_invocation_step", "invocationIdentifier"),
    ("put_invocation_step", "invocationStepTime"),
    ("put_invocation_step", "payload"),
    ("get_invocation_step", "sessionIdentifier"),
    ("get_invocation_step", "invocationIdentifier"),
    ("get_invocation_step", "invocationStepId"),
    ("list_invocation_steps", "sessionIdentifier"),
    ("tag_resource", "resourceArn"),
    ("tag_resource", "tags"),
    ("untag_resource", "resourceArn"),
    ("untag_resource", "tagKeys"),
    ("list_tags_for_resource", "resourceArn"),
]


def full_kwargs(op, sid, arn, iid, step):
    return {
        "get_session": {"sessionIdentifier": sid},
        "update_session": {"sessionIdentifier": sid},
        "end_session": {"sessionIdentifier": sid},
        "delete_session": {"sessionIdentifier": sid},
        "create_invocation": {"sessionIdentifier": sid},
        "list_invocations": {"sessionIdentifier": sid},
        "put_invocation_step": {
            "sessionIdentifier": sid,
            "invocationIdentifier": iid,
            "invocationStepTime": T0,
            "payload": {"contentBlocks": [image_block()]},
        },
        "get_invocation_step": {"sessionIdentifier": sid, "invocationIdentifier": iid, "invocationStepId": step},
        "list_invocation_steps": {"sessionIdentifier": sid},
        "tag_resource": {"resourceArn": arn, "tags": {"k": "v"}},
        "untag_resource": {"resourceArn": arn, "tagKeys": ["t"]},
        "list_tags_for_resource": {"resourceArn": arn},
    }[op]


@pytest.mark.parametrize(("op", "member"), MISSING, ids=[f"{o}-{m}" for o, m in MISSING])
def test_missing_required_member(world, op, member):
    client, sid, arn, iid, step = world
    kwargs = full_kwargs(op, sid, arn, iid, step)
    del kwargs[member]
    with raises_code("ValidationException", member):
        getattr(client, op)(**kwargs)
    # nothing changed
    assert client.get_session(sessionIdentifier=sid)["sessionStatus"] == "ACTIVE"
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"t": "v"}
    assert len(client.list_invocation_steps(sessionIdentifier=sid)["invocationStepSummaries"]) == 1


def test_none_for_optional_member_is_rejected(world):
    client, sid, arn, iid, step = world
    with raises_code("ValidationException", "description"):
        client.create_invocation(sessionIdentifier=sid, description=None)


def test_timestamps_accept_aware_datetimes(world):
    client, sid, arn, iid, step = world
    when = dt.datetime(2030, 6, 1, 12, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    sid2 = put_text(client, sid, iid, when=when)
    got = client.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=sid2)
    assert got["invocationStep"]["invocationStepTime"] == when


# ---------------------------------------------------------------- typed reasons
@pytest.mark.parametrize("kind", ["memory", "file", "bedrock-over-http"])
def test_errors_say_what_they_are_about(kind, tmp_path):
    """One code covers several cases (a missing session or invocation or step; an id taken): ``exc.reason`` tells
    them apart without reading the message, on the embedded store and from the service's answers alike."""
    import pickle

    from bedrock_sessions import SessionClient
    from bedrock_sessions.server import LocalServer

    with contextlib.ExitStack() as stack:
        if kind == "memory":
            c = SessionClient.memory()
        elif kind == "file":
            c = SessionClient.local(str(tmp_path / "s.db"))
        else:
            server = stack.enter_context(LocalServer(str(tmp_path / "s.db"), host="127.0.0.1"))
            c = SessionClient.bedrock(endpoint_url=server.endpoint_url, region_name="us-east-1",
                                      aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
        stack.callback(c.close)
        sid, _ = new_session(c)
        inv = new_invocation(c, sid)
        cases = [
            (lambda: c.get_session(sessionIdentifier=new_uuid()), "SessionNotFound"),
            (lambda: c.list_invocation_steps(sessionIdentifier=sid, invocationIdentifier=new_uuid()),
             "InvocationNotFound"),
            (lambda: c.get_invocation_step(sessionIdentifier=sid, invocationIdentifier=inv,
                                           invocationStepId=new_uuid()), "StepNotFound"),
            (lambda: c.create_invocation(sessionIdentifier=sid, invocationId=inv), "AlreadyExists"),
            (lambda: c.delete_session(sessionIdentifier=sid), None),  # ACTIVE: a conflict of another kind
        ]
        for call, reason in cases:
            with pytest.raises(BedrockSessionsError) as info:
                call()
            assert info.value.reason == reason, (info.value, reason)
            assert pickle.loads(pickle.dumps(info.value)).reason == reason
