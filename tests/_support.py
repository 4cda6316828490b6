"""Shared helpers of the test suite (plain functions, no fixtures)."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import uuid
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest

from bedrock_sessions import exceptions as bs_exceptions

UTC = dt.timezone.utc
UUID_PATTERN = r"[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}"
UUID_RE = re.compile(UUID_PATTERN)
SESSION_ARN_RE = re.compile(r"arn:aws:bedrock:([a-z0-9-]+):([0-9]{12}):session/(" + UUID_PATTERN + ")")

# The 14 session operations: boto3 method name -> service operation name.
OPERATIONS: dict[str, str] = {
    "create_session": "CreateSession",
    "get_session": "GetSession",
    "list_sessions": "ListSessions",
    "update_session": "UpdateSession",
    "end_session": "EndSession",
    "delete_session": "DeleteSession",
    "create_invocation": "CreateInvocation",
    "list_invocations": "ListInvocations",
    "put_invocation_step": "PutInvocationStep",
    "get_invocation_step": "GetInvocationStep",
    "list_invocation_steps": "ListInvocationSteps",
    "tag_resource": "TagResource",
    "untag_resource": "UntagResource",
    "list_tags_for_resource": "ListTagsForResource",
}

T0 = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

KMS_KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

# The KMS key ARNs tests name in CreateSession. The stores of the behaviour suite get a keyring that holds them (and no
# default key: a session that names none stays clear), so a session that names one is encrypted at rest; a store
# without key material refuses such a session (docs/encryption.md).
SUITE_KMS_KEYS = (
    KMS_KEY_ARN,
    "arn:aws-cn:kms:cn-north-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab",
)
_suite_keyrings: dict[bool, str] = {}


def suite_keyring(default: bool = False) -> str:
    """A keyring file of SUITE_KMS_KEYS (with ``default``: KMS_KEY_ARN encrypts sessions that name no key), made once
    per process in a temporary directory removed at exit."""
    if default not in _suite_keyrings:
        import atexit
        import base64
        import json
        import os
        import shutil
        import tempfile

        folder = tempfile.mkdtemp(prefix="bedrock-sessions-keyring-")
        atexit.register(shutil.rmtree, folder, True)
        path = os.path.join(folder, "keyring.json")
        doc: dict[str, Any] = {"keys": {k: base64.b64encode(os.urandom(32)).decode() for k in SUITE_KMS_KEYS}}
        if default:
            doc["default"] = KMS_KEY_ARN
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            json.dump(doc, f)
        _suite_keyrings[default] = path
    return _suite_keyrings[default]


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def new_uuid() -> str:
    return str(uuid.uuid4())


def text_payload(*texts: str) -> dict[str, Any]:
    return {"contentBlocks": [{"text": t} for t in texts]}


def image_block(data: bytes = b"\x89PNG\r\n\x1a\n-image", fmt: str = "png") -> dict[str, Any]:
    return {"image": {"format": fmt, "source": {"bytes": data}}}


def s3_image_block(uri: str = "s3://my-bucket/images/cat.png", fmt: str = "png") -> dict[str, Any]:
    return {"image": {"format": fmt, "source": {"s3Location": {"uri": uri}}}}


def new_session(client: Any, **kwargs: Any) -> tuple[str, str]:
    """Creates a session; returns (sessionId, sessionArn)."""
    resp = client.create_session(**kwargs)
    return resp["sessionId"], resp["sessionArn"]


def new_invocation(client: Any, session: str, **kwargs: Any) -> str:
    return client.create_invocation(sessionIdentifier=session, **kwargs)["invocationId"]


def put_text(
    client: Any,
    session: str,
    invocation: str,
    text: str = "hello",
    when: dt.datetime | None = None,
    step_id: str | None = None,
) -> str:
    kwargs: dict[str, Any] = {
        "sessionIdentifier": session,
        "invocationIdentifier": invocation,
        "invocationStepTime": when or now(),
        "payload": text_payload(text),
    }
    if step_id is not None:
        kwargs["invocationStepId"] = step_id
    return client.put_invocation_step(**kwargs)["invocationStepId"]


def other_arn(arn: str, region: str | None = None, account: str | None = None) -> str:
    m = SESSION_ARN_RE.fullmatch(arn)
    assert m, arn
    return f"arn:aws:bedrock:{region or m.group(1)}:{account or m.group(2)}:session/{m.group(3)}"


def assert_error_class(err: BaseException, code: str) -> None:
    """``err`` is the class of error ``code``: ours (``bedrock_sessions.exceptions.<code>``), or, through boto3
    and the local server, the class botocore generates from the service model (``client.exceptions.<code>``,
    made in ``botocore.errorfactory``)."""
    if isinstance(err, bs_exceptions.BedrockSessionsError):
        assert isinstance(err, getattr(bs_exceptions, code)), repr(err)
        return
    cls = type(err)
    assert isinstance(err, botocore.exceptions.ClientError), repr(err)
    assert cls.__module__ == "botocore.errorfactory" and cls.__name__ == code, (
        f"neither a bedrock_sessions error nor botocore's generated {code}: {cls.__module__}.{cls.__qualname__}"
    )


@contextlib.contextmanager
def raises_code(code: str, *fields: str, operation: str | None = None) -> Iterator[Any]:
    """Expects an operation error with AWS error ``code``; when ``fields`` are given, the message must name
    at least one of them."""
    with pytest.raises(botocore.exceptions.ClientError) as info:
        yield info
    err = info.value
    assert err.response["Error"]["Code"] == code, str(err)
    assert_error_class(err, code)
    message = err.response["Error"]["Message"]
    if fields:
        assert any(f in message for f in fields), f"message does not name {fields}: {message!r}"
    if operation is not None:
        assert err.operation_name == operation


def collect(pages: Any, key: str) -> list[Any]:
    return [item for page in pages for item in page[key]]


def list_all(client: Any, method: str, key: str, **kwargs: Any) -> list[Any]:
    """Pages through a list operation by hand with nextToken."""
    out: list[Any] = []
    token = None
    for _ in range(10_000):
        call = dict(kwargs)
        if token:
            call["nextToken"] = token
        page = getattr(client, method)(**call)
        out.extend(page[key])
        token = page.get("nextToken")
        if not token:
            return out
    raise AssertionError("pagination does not end")
