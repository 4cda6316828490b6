"""Helpers of the local-server tests: raw HTTP with urllib (bounded by timeouts), boto3 configs, request capture."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from botocore.config import Config

HTTP_TIMEOUT = 10.0  # seconds, every raw HTTP call
# botocore counts *retries* in "max_attempts" of the retries dict; "total_max_attempts" counts every attempt.
NO_RETRIES = {"total_max_attempts": 1, "mode": "standard"}
SESSION_ARN_PREFIX = "arn:aws:bedrock:us-east-1:000000000000:session/"


def boto3_config(*, validate: bool = True, retries: dict[str, Any] | None = None, **kwargs: Any) -> Config:
    """A botocore Config with bounded network waits; retries disabled unless ``retries`` is given."""
    return Config(
        parameter_validation=validate,
        retries=NO_RETRIES if retries is None else retries,
        connect_timeout=5,
        read_timeout=30,
        **kwargs,
    )


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    base_url: str,
    method: str,
    path: str,
    body: bytes | str | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """One plain HTTP request (no signature), the status, headers and body whatever the status."""
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    hdrs = {"content-type": "application/json", **(headers or {})}
    req = urllib.request.Request(base_url + path, data=body, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
            return HttpResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return HttpResponse(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


class RequestLog:
    """Records the method and URL of every request a boto3 client sends (botocore's before-send event)."""

    def __init__(self, client: Any) -> None:
        self.requests: list[tuple[str, str]] = []
        client.meta.events.register("before-send.bedrock-agent-runtime", self._record)

    def _record(self, request: Any, **kwargs: Any) -> None:
        self.requests.append((request.method, request.url))
        return None  # let botocore send it

    @property
    def last_url(self) -> str:
        return self.requests[-1][1]
