"""Our clients against botocore's own model of bedrock-agent-runtime: method names, input members, output shapes,
and boto3 code running unchanged."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import botocore
import botocore.session
import pytest
from _support import (
    KMS_KEY_ARN,
    OPERATIONS,
    T0,
    image_block,
    new_uuid,
    s3_image_block,
    text_payload,
)
from botocore.validate import ParamValidator

from bedrock_sessions import AsyncSessionClient, ManualClock, SessionClient

_session = botocore.session.get_session()
MODEL = _session.get_service_model("bedrock-agent-runtime")
PAGINATORS = _session.get_paginator_model("bedrock-agent-runtime")


def input_members(op: str) -> set[str]:
    return set(MODEL.operation_model(op).input_shape.members)


def check_input(op: str, params: dict[str, Any]) -> None:
    """The call is one boto3 itself would send (botocore's client-side validation)."""
    report = ParamValidator().validate(params, MODEL.operation_model(op).input_shape)
    assert not report.has_errors(), f"{op}: {report.generate_report()}"


# ---------------------------------------------------------------- a validator of responses
def validate_output(value: Any, shape: Any, path: str, top: bool = False) -> None:
    t = shape.type_name
    if t == "structure":
        assert isinstance(value, dict), f"{path}: {type(value).__name__} is not a dict"
        members = shape.members
        extra = set(value) - set(members) - ({"ResponseMetadata"} if top else set())
        assert not extra, f"{path}: unknown members {sorted(extra)}"
        for req in shape.required_members:
            assert req in value, f"{path}: required member {req} missing"
        if shape.metadata.get("union"):
            assert len([k for k in value if k in members]) == 1, f"{path}: a union needs exactly one member"
        for name, v in value.items():
            if name in members:
                validate_output(v, members[name], f"{path}.{name}")
        if top:
            md = value.get("ResponseMetadata")
            assert isinstance(md, dict), f"{path}: ResponseMetadata missing"
            assert isinstance(md["RequestId"], str)
            assert isinstance(md["HTTPStatusCode"], int)
            assert isinstance(md["HTTPHeaders"], dict)
            assert isinstance(md["RetryAttempts"], int)
    elif t == "list":
        assert isinstance(value, list), f"{path}: {type(value).__name__} is not a list"
        for i, item in enumerate(value):
            validate_output(item, shape.member, f"{path}[{i}]")
    elif t == "map":
        assert isinstance(value, dict), f"{path}: not a dict"
        for k, v in value.items():
            validate_output(k, shape.key, f"{path} key")
            validate_output(v, shape.value, f"{path}[{k!r}]")
    elif t == "string":
        assert isinstance(value, str), f"{path}: {type(value).__name__} is not a str"
        if getattr(shape, "enum", None):
            assert value in shape.enum, f"{path}: {value!r} not in {shape.enum}"
        if "pattern" in shape.metadata:
            pattern = shape.metadata["pattern"]
            assert re.fullmatch(pattern, value), f"{path}: {value!r} !~ {pattern}"
        if "min" in shape.metadata:
            assert len(value) >= shape.metadata["min"], f"{path}: shorter than {shape.metadata['min']}"
        if "max" in shape.metadata:
            assert len(value) <= shape.metadata["max"], f"{path}: longer than {shape.metadata['max']}"
    elif t == "timestamp":
        assert isinstance(value, dt.datetime), f"{path}: {type(value).__name__} is not a datetime"
        assert value.tzinfo is not None and value.utcoffset() == dt.timedelta(0), f"{path}: {value!r} not UTC-aware"
    elif t == "blob":
        assert type(value) is bytes, f"{path}: {type(value).__name__} is not bytes"
        if "min" in shape.metadata:
            assert len(value) >= shape.metadata["min"]
    elif t in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), f"{path}: not an int"
    elif t == "boolean":
        assert isinstance(value, bool), f"{path}: not a bool"
    else:  # pragma: no cover - the model of these operations has no other types
        raise AssertionError(f"{path}: unexpected shape type {t}")


def test_validator_catches_bad_responses():
    """The validator itself: each of these must be refused (so the shape test can fail)."""
    out = MODEL.operation_model("GetSession").output_shape
    good = {
        "createdAt": T0,
        "lastUpdatedAt": T0,
        "sessionArn": "arn:aws:bedrock:us-east-1:000000000000:session/abcdef01-2345-4678-9abc-def012345678",
        "sessionId": "abcdef01-2345-4678-9abc-def012345678",
        "sessionStatus": "ACTIVE",
        "ResponseMetadata": {"RequestId": "r", "HTTPStatusCode": 200, "HTTPHeaders": {}, "RetryAttempts": 0},
    }
    validate_output(good, out, "GetSession", top=True)
    bad_cases = [
        {**good, "sessionStatus": "GONE"},
        {**good, "createdAt": T0.replace(tzinfo=None)},
        {**good, "createdAt": "2025-01-01T00:00:00Z"},
        {**good, "sessionId": good["sessionId"].upper()},
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "lastUpdatedAt"},
        {k: v for k, v in good.items() if k != "ResponseMetadata"},
        {**good, "sessionMetadata": {"k": 1}},
        {**good, "sessionArn": good["sessionArn"] + "/"},
    ]
    for n, bad in enumerate(bad_cases):
        with pytest.raises(AssertionError):
            validate_output(bad, out, "GetSession", top=True)
            print("not refused:", n)
    step_out = MODEL.operation_model("GetInvocationStep").output_shape
    step = {
        "invocationStep": {
            "invocationId": good["sessionId"],
            "invocationStepId": good["sessionId"],
            "invocationStepTime": T0,
            "sessionId": good["sessionId"],
            "payload": {"contentBlocks": [{"image": {"format": "png", "source": {"bytes": "aGk="}}}]},
        },
        "ResponseMetadata": good["ResponseMetadata"],
    }
    with pytest.raises(AssertionError):
        validate_output(step, step_out, "GetInvocationStep", top=True)


# ---------------------------------------------------------------- (a) one method per operation
def test_model_has_the_14_operations():
    for method, op in OPERATIONS.items():
        assert op in MODEL.operation_names
        assert botocore.xform_name(op) == method
    assert {p for p in PAGINATORS._paginator_config} >= {"ListSessions", "ListInvocations", "ListInvocationSteps"}


@pytest.mark.parametrize("cls", [SessionClient, AsyncSessionClient])
@pytest.mark.parametrize("op", list(OPERATIONS.values()))
def test_client_has_method(cls, op):
    assert callable(getattr(cls, botocore.xform_name(op)))


def test_paginators_match_model(client):
    for op in ("ListSessions", "ListInvocations", "ListInvocationSteps"):
        cfg = PAGINATORS.get_paginator(op)
        assert (cfg["input_token"], cfg["output_token"], cfg["limit_key"]) == ("nextToken", "nextToken", "maxResults")
        assert client.can_paginate(botocore.xform_name(op))


# ---------------------------------------------------------------- (b) exactly the input members
@pytest.mark.parametrize("op", list(OPERATIONS.values()))
def test_unknown_member_rejected(client, op):
    with pytest.raises(client.exceptions.ValidationException) as info:
        getattr(client, botocore.xform_name(op))(notAMemberOfThisShape="x")
    assert "notAMemberOfThisShape" in info.value.response["Error"]["Message"]
    assert info.value.operation_name == op


def full_calls(client) -> list[tuple[str, dict[str, Any]]]:
    """For each operation, a call that sets every input member of botocore's shape (built as it goes)."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def run(op: str, **kw: Any) -> dict[str, Any]:
        calls.append((op, kw))
        return getattr(client, botocore.xform_name(op))(**kw)

    s = run("CreateSession", encryptionKeyArn=KMS_KEY_ARN, sessionMetadata={"a": "b"}, tags={"t": "v"})
    client.create_session()
    token = client.list_sessions(maxResults=1)["nextToken"]
    run("ListSessions", maxResults=5, nextToken=token)
    sid, arn = s["sessionId"], s["sessionArn"]
    run("GetSession", sessionIdentifier=sid)
    run("UpdateSession", sessionIdentifier=sid, sessionMetadata={"c": "d"})
    iid = new_uuid()
    run("CreateInvocation", sessionIdentifier=sid, description="d", invocationId=iid)
    client.create_invocation(sessionIdentifier=sid)
    token = client.list_invocations(sessionIdentifier=sid, maxResults=1)["nextToken"]
    run("ListInvocations", sessionIdentifier=sid, maxResults=5, nextToken=token)
    step = new_uuid()
    run(
        "PutInvocationStep",
        sessionIdentifier=sid,
        invocationIdentifier=iid,
        invocationStepId=step,
        invocationStepTime=T0,
        payload=text_payload("x"),
    )
    client.put_invocation_step(
        sessionIdentifier=sid, invocationIdentifier=iid, invocationStepTime=T0, payload=text_payload("y")
    )
    run("GetInvocationStep", sessionIdentifier=sid, invocationIdentifier=iid, invocationStepId=step)
    token = client.list_invocation_steps(sessionIdentifier=sid, invocationIdentifier=iid, maxResults=1)["nextToken"]
    run("ListInvocationSteps", sessionIdentifier=sid, invocationIdentifier=iid, maxResults=5, nextToken=token)
    run("TagResource", resourceArn=arn, tags={"u": "w"})
    run("UntagResource", resourceArn=arn, tagKeys=["u"])
    run("ListTagsForResource", resourceArn=arn)
    run("EndSession", sessionIdentifier=sid)
    run("DeleteSession", sessionIdentifier=sid)
    return calls


def test_every_input_member_accepted(client):
    calls = full_calls(client)
    assert sorted(op for op, _ in calls) == sorted(OPERATIONS.values())
    for op, kwargs in calls:
        assert set(kwargs) == input_members(op), op
        check_input(op, kwargs)


# ---------------------------------------------------------------- (c) responses validate against the output shapes
class Recorder:
    """Forwards calls to a client, checks each request with botocore's validator, keeps each response."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.responses: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if name not in OPERATIONS:
            return target

        def call(**kwargs: Any) -> Any:
            check_input(OPERATIONS[name], kwargs)
            resp = target(**kwargs)
            self.responses.append((OPERATIONS[name], resp))
            return resp

        return call


def realistic_sequence(c: Any, clock: ManualClock) -> None:
    a = c.create_session(sessionMetadata={"user": "ana"}, tags={"team": "ai"}, encryptionKeyArn=KMS_KEY_ARN)
    b = c.create_session()
    for s in (a, b):
        c.get_session(sessionIdentifier=s["sessionId"])
        c.get_session(sessionIdentifier=s["sessionArn"])
    c.update_session(sessionIdentifier=a["sessionId"], sessionMetadata={"user": "bo", "empty": ""})
    c.update_session(sessionIdentifier=b["sessionArn"])
    i1 = c.create_invocation(sessionIdentifier=a["sessionId"], description="turn 1")["invocationId"]
    i2 = c.create_invocation(sessionIdentifier=a["sessionArn"], invocationId=new_uuid())["invocationId"]
    steps = []
    payloads = [
        text_payload("hello"),
        {"contentBlocks": [{"text": "with image"}, image_block(b"\x89PNG\x00\x01", "png")]},
        {"contentBlocks": [s3_image_block("s3://bucket-1/a.jpeg", "jpeg"), image_block(b"GIF89a", "gif")]},
        {"contentBlocks": [image_block(b"RIFFxxxxWEBP", "webp")]},
    ]
    for n, p in enumerate(payloads):
        inv = i1 if n % 2 == 0 else i2
        sid = c.put_invocation_step(
            sessionIdentifier=a["sessionId"],
            invocationIdentifier=inv,
            invocationStepTime=T0 + dt.timedelta(seconds=n),
            payload=p,
        )["invocationStepId"]
        steps.append((inv, sid))
    for inv, sid in steps:
        c.get_invocation_step(sessionIdentifier=a["sessionArn"], invocationIdentifier=inv, invocationStepId=sid)
    for kw in ({}, {"maxResults": 1}):
        page = c.list_sessions(**kw)
        page = c.list_invocations(sessionIdentifier=a["sessionId"], **kw)
        page = c.list_invocation_steps(sessionIdentifier=a["sessionId"], **kw)
        c.list_invocation_steps(sessionIdentifier=a["sessionId"], invocationIdentifier=i1, **kw)
    page = c.list_invocation_steps(sessionIdentifier=a["sessionId"], maxResults=1)
    c.list_invocation_steps(sessionIdentifier=a["sessionId"], maxResults=1, nextToken=page["nextToken"])
    c.tag_resource(resourceArn=a["sessionArn"], tags={"env": "dev", "x": ""})
    c.list_tags_for_resource(resourceArn=a["sessionArn"])
    c.untag_resource(resourceArn=a["sessionArn"], tagKeys=["x", "absent"])
    c.list_tags_for_resource(resourceArn=b["sessionArn"])
    clock.advance(7200)  # b expires
    c.get_session(sessionIdentifier=b["sessionId"])
    c.list_sessions()
    c.end_session(sessionIdentifier=b["sessionId"])
    c.end_session(sessionIdentifier=a["sessionArn"])
    c.get_session(sessionIdentifier=a["sessionId"])
    c.list_sessions()
    c.delete_session(sessionIdentifier=b["sessionArn"])
    c.delete_session(sessionIdentifier=a["sessionId"])
    c.list_sessions()


OK_STATUS = {"CreateSession": 201, "CreateInvocation": 201, "PutInvocationStep": 201}


def test_responses_match_output_shapes(make_client):
    clock = ManualClock(start=T0)
    rec = Recorder(make_client(clock=clock))
    realistic_sequence(rec, clock)
    assert {op for op, _ in rec.responses} == set(OPERATIONS.values())
    statuses = set()
    for op, resp in rec.responses:
        validate_output(resp, MODEL.operation_model(op).output_shape, op, top=True)
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == OK_STATUS.get(op, 200), op
        statuses.add(resp.get("sessionStatus"))
    assert {"ACTIVE", "EXPIRED", "ENDED"} <= statuses | {
        s["sessionStatus"] for op, r in rec.responses if op == "ListSessions" for s in r["sessionSummaries"]
    }


# ---------------------------------------------------------------- (d) boto3 code runs unchanged
def boto3_style_program(client) -> dict[str, Any]:
    """Written against ``boto3.client("bedrock-agent-runtime")``: only boto3 calls and attributes."""
    session = client.create_session(sessionMetadata={"app": "demo"}, tags={"owner": "me"})
    session_id = session["sessionId"]
    invocation = client.create_invocation(sessionIdentifier=session_id, description="first")
    invocation_id = invocation["invocationId"]
    step_ids = []
    for n in range(12):
        resp = client.put_invocation_step(
            sessionIdentifier=session_id,
            invocationIdentifier=invocation_id,
            invocationStepTime=datetime_for(n),
            payload={"contentBlocks": [{"text": f"step {n}"}]},
        )
        step_ids.append(resp["invocationStepId"])
    paginator = client.get_paginator("list_invocation_steps")
    seen = []
    for page in paginator.paginate(
        sessionIdentifier=session_id, invocationIdentifier=invocation_id, PaginationConfig={"PageSize": 5}
    ):
        for summary in page["invocationStepSummaries"]:
            seen.append(summary["invocationStepId"])
    newest = client.get_invocation_step(
        sessionIdentifier=session_id, invocationIdentifier=invocation_id, invocationStepId=seen[0]
    )["invocationStep"]["payload"]["contentBlocks"][0]["text"]
    client.end_session(sessionIdentifier=session["sessionArn"])
    client.delete_session(sessionIdentifier=session_id)
    try:
        client.get_session(sessionIdentifier=session_id)
        found_after_delete = True
    except client.exceptions.ResourceNotFoundException:
        found_after_delete = False
    return {"written": step_ids, "seen": seen, "newest": newest, "found_after_delete": found_after_delete}


def datetime_for(n: int) -> dt.datetime:
    return dt.datetime(2025, 5, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=n)


def test_boto3_program_runs_unchanged(client):
    rec = Recorder(client)  # also proves every call is one boto3 accepts
    result = boto3_style_program(rec)
    assert result["seen"] == result["written"][::-1]
    assert result["newest"] == "step 11"
    assert result["found_after_delete"] is False
