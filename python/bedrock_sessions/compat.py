"""The replaced saver's session client, over our session clients: ``saver.session_client``.

langgraph-checkpoint-aws's savers expose ``session_client``, a ``BedrockAgentRuntimeSessionClient`` (or, on its async saver,
an ``AsyncBedrockAgentRuntimeSessionClient``) whose methods take its pydantic request models and return response models
with snake_case attributes (``create_session().session_id``), and whose ``.client`` is the boto3 ``bedrock-agent-runtime``
client (``client.create_session()["sessionId"]``). This module gives the same two classes, so that code written against
them runs unchanged:

- a request may be the user's own instance of langgraph-checkpoint-aws's request models (read through its
  ``model_dump(by_alias=True)``: that package is not needed here), one of the same-named classes below, or a mapping of
  boto3's (or snake_case) names; ``create_session`` takes none;
- responses are the small frozen classes below, with the replaced models' attribute names, nesting and
  ``model_dump(by_alias=...)``; as there, a step's content blocks carry their text only (read images through ``.client``);
- ``.client`` is our :class:`~bedrock_sessions.SessionClient` over the same store: boto3's method names, arguments,
  dict responses and errors, and ``meta.endpoint_url``/``meta.region_name``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from .client import AsyncSessionClient, SessionClient, open_native

__all__ = [
    "AsyncBedrockAgentRuntimeSessionClient",
    "BedrockAgentRuntimeSessionClient",
    "BedrockSessionContentBlock",
    "CreateInvocationRequest",
    "CreateInvocationResponse",
    "CreateSessionRequest",
    "CreateSessionResponse",
    "DeleteSessionRequest",
    "EndSessionRequest",
    "EndSessionResponse",
    "GetInvocationStepRequest",
    "GetInvocationStepResponse",
    "GetSessionRequest",
    "GetSessionResponse",
    "InvocationStep",
    "InvocationStepPayload",
    "InvocationStepSummary",
    "InvocationSummary",
    "ListInvocationStepsRequest",
    "ListInvocationStepsResponse",
    "ListInvocationsRequest",
    "ListInvocationsResponse",
    "PutInvocationStepRequest",
    "PutInvocationStepResponse",
]


def _camel(name: str) -> str:
    """boto3's member name of a snake_case attribute (``invocation_step_id`` -> ``invocationStepId``)."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


M = TypeVar("M", bound="_Model")


class _Model:
    """Base of the request and response classes: frozen dataclasses with snake_case attributes whose boto3 names are
    their aliases, as in the replaced package's models. ``_nested`` names the attributes holding other models."""

    _nested: ClassVar[dict[str, type[_Model]]] = {}

    @classmethod
    def _from_boto(cls: type[M], data: Mapping[str, Any]) -> M:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            value = data.get(_camel(f.name))
            model = cls._nested.get(f.name)
            if model is not None and value is not None:
                value = [model._from_boto(v) for v in value] if isinstance(value, list) else model._from_boto(value)
            values[f.name] = value
        return cls(**values)

    def model_dump(self, *, by_alias: bool = False, exclude_none: bool = False) -> dict[str, Any]:
        """The attributes as a dict (boto3's names with ``by_alias=True``), as pydantic's ``model_dump``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = _dump(getattr(self, f.name), by_alias, exclude_none)
            if value is not None or not exclude_none:
                out[_camel(f.name) if by_alias else f.name] = value
        return out


def _dump(value: Any, by_alias: bool, exclude_none: bool) -> Any:
    if isinstance(value, _Model):
        return value.model_dump(by_alias=by_alias, exclude_none=exclude_none)
    if isinstance(value, list):
        return [_dump(v, by_alias, exclude_none) for v in value]
    return value


def _model(cls: type[M]) -> type[M]:
    return dataclasses.dataclass(frozen=True, kw_only=True)(cls)


# ---------------------------------------------------------------- payloads (requests and responses)
@_model
class BedrockSessionContentBlock(_Model):
    text: str | None = None


@_model
class InvocationStepPayload(_Model):
    content_blocks: list[BedrockSessionContentBlock] | None = None
    _nested = {"content_blocks": BedrockSessionContentBlock}


# ---------------------------------------------------------------- requests
@_model
class CreateSessionRequest(_Model):
    session_metadata: dict[str, str] | None = None
    encryption_key_arn: str | None = None
    tags: dict[str, str] | None = None


@_model
class GetSessionRequest(_Model):
    session_identifier: str


@_model
class EndSessionRequest(_Model):
    session_identifier: str


@_model
class DeleteSessionRequest(_Model):
    session_identifier: str


@_model
class CreateInvocationRequest(_Model):
    session_identifier: str
    invocation_id: str | None = None
    description: str | None = None


@_model
class ListInvocationsRequest(_Model):
    session_identifier: str
    next_token: str | None = None
    max_results: int | None = None


@_model
class PutInvocationStepRequest(_Model):
    session_identifier: str
    invocation_identifier: str
    invocation_step_id: str | None = None
    invocation_step_time: datetime
    payload: InvocationStepPayload


@_model
class GetInvocationStepRequest(_Model):
    session_identifier: str
    invocation_identifier: str
    invocation_step_id: str


@_model
class ListInvocationStepsRequest(_Model):
    session_identifier: str
    invocation_identifier: str | None = None
    next_token: str | None = None
    max_results: int | None = None


# ---------------------------------------------------------------- responses
@_model
class CreateSessionResponse(_Model):
    session_id: str
    session_arn: str
    created_at: datetime
    session_status: str


@_model
class GetSessionResponse(_Model):
    session_id: str
    session_arn: str
    session_status: str
    created_at: datetime
    last_updated_at: datetime
    session_metadata: dict[str, str] | None = None
    encryption_key_arn: str | None = None


@_model
class EndSessionResponse(_Model):
    session_id: str
    session_arn: str
    session_status: str


@_model
class CreateInvocationResponse(_Model):
    invocation_id: str


@_model
class InvocationSummary(_Model):
    session_id: str
    invocation_id: str
    created_at: datetime


@_model
class ListInvocationsResponse(_Model):
    invocation_summaries: list[InvocationSummary]
    next_token: str | None = None
    _nested = {"invocation_summaries": InvocationSummary}


@_model
class PutInvocationStepResponse(_Model):
    invocation_step_id: str


@_model
class InvocationStepSummary(_Model):
    invocation_id: str
    invocation_step_id: str
    invocation_step_time: datetime


@_model
class InvocationStep(_Model):
    invocation_id: str
    invocation_step_id: str
    invocation_step_time: datetime
    session_id: str
    payload: InvocationStepPayload
    _nested = {"payload": InvocationStepPayload}


@_model
class GetInvocationStepResponse(_Model):
    invocation_step: InvocationStep
    _nested = {"invocation_step": InvocationStep}


@_model
class ListInvocationStepsResponse(_Model):
    invocation_step_summaries: list[InvocationStepSummary]
    next_token: str | None = None
    _nested = {"invocation_step_summaries": InvocationStepSummary}


# ---------------------------------------------------------------- one conversion each way, for both flavours
_RESPONSES: dict[str, type[_Model] | None] = {
    "create_session": CreateSessionResponse,
    "get_session": GetSessionResponse,
    "end_session": EndSessionResponse,
    "delete_session": None,
    "create_invocation": CreateInvocationResponse,
    "list_invocations": ListInvocationsResponse,
    "put_invocation_step": PutInvocationStepResponse,
    "get_invocation_step": GetInvocationStepResponse,
    "list_invocation_steps": ListInvocationStepsResponse,
}


def _params(request: Any) -> dict[str, Any]:
    """boto3's keyword arguments of a request: a pydantic model of the replaced package or one of ours (both dump with
    boto3's names, as the replaced client did), a mapping, or None (no arguments)."""
    if request is None:
        return {}
    dump = getattr(request, "model_dump", None)
    if callable(dump):
        return dump(by_alias=True, exclude_none=True)
    if isinstance(request, Mapping):
        return {_camel(k): v for k, v in request.items() if v is not None}
    raise TypeError(f"a request model or a mapping of boto3's member names was expected, not {type(request).__name__}")


def _reply(operation: str, response: dict[str, Any]) -> Any:
    cls = _RESPONSES[operation]
    return None if cls is None else cls._from_boto(response)


def _sync_client(client: Any, aws_args: dict[str, Any]) -> SessionClient:
    if isinstance(client, SessionClient):
        return client
    return SessionClient(open_native(client, **{k: v for k, v in aws_args.items() if v is not None}))


class BedrockAgentRuntimeSessionClient:
    """langgraph-checkpoint-aws's ``BedrockAgentRuntimeSessionClient``: its constructor arguments (``client`` may also be
    one of our session clients), its methods, request and response models. ``.client`` is the boto3-shaped
    :class:`~bedrock_sessions.SessionClient` over the same store."""

    def __init__(
        self,
        client: Any = None,
        session: Any = None,
        region_name: str | None = None,
        credentials_profile_name: str | None = None,
        aws_access_key_id: Any = None,
        aws_secret_access_key: Any = None,
        aws_session_token: Any = None,
        endpoint_url: str | None = None,
        config: Any = None,
    ) -> None:
        self.client: SessionClient = _sync_client(client, dict(
            session=session, region_name=region_name, credentials_profile_name=credentials_profile_name,
            aws_access_key_id=aws_access_key_id, aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token, endpoint_url=endpoint_url, config=config))

    def _call(self, operation: str, request: Any) -> Any:
        return _reply(operation, getattr(self.client, operation)(**_params(request)))

    def create_session(self, request: Any = None) -> CreateSessionResponse:
        return self._call("create_session", request)

    def get_session(self, request: Any) -> GetSessionResponse:
        return self._call("get_session", request)

    def end_session(self, request: Any) -> EndSessionResponse:
        return self._call("end_session", request)

    def delete_session(self, request: Any) -> None:
        self._call("delete_session", request)

    def create_invocation(self, request: Any) -> CreateInvocationResponse:
        return self._call("create_invocation", request)

    def list_invocations(self, request: Any) -> ListInvocationsResponse:
        return self._call("list_invocations", request)

    def put_invocation_step(self, request: Any) -> PutInvocationStepResponse:
        return self._call("put_invocation_step", request)

    def get_invocation_step(self, request: Any) -> GetInvocationStepResponse:
        return self._call("get_invocation_step", request)

    def list_invocation_steps(self, request: Any) -> ListInvocationStepsResponse:
        return self._call("list_invocation_steps", request)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} over {self.client!r}>"


class AsyncBedrockAgentRuntimeSessionClient:
    """langgraph-checkpoint-aws's ``AsyncBedrockAgentRuntimeSessionClient``: the same methods as coroutines, through our
    :class:`~bedrock_sessions.AsyncSessionClient` (never blocking the event loop). ``.client`` is, as there, a
    synchronous boto3-shaped client (:class:`~bedrock_sessions.SessionClient`) over the same store."""

    def __init__(
        self,
        client: Any = None,
        session: Any = None,
        region_name: str | None = None,
        credentials_profile_name: str | None = None,
        aws_access_key_id: Any = None,
        aws_secret_access_key: Any = None,
        aws_session_token: Any = None,
        endpoint_url: str | None = None,
        config: Any = None,
    ) -> None:
        self.client: SessionClient = _sync_client(client, dict(
            session=session, region_name=region_name, credentials_profile_name=credentials_profile_name,
            aws_access_key_id=aws_access_key_id, aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token, endpoint_url=endpoint_url, config=config))
        self._async = client if isinstance(client, AsyncSessionClient) else AsyncSessionClient(self.client._native)

    async def _call(self, operation: str, request: Any) -> Any:
        return _reply(operation, await getattr(self._async, operation)(**_params(request)))

    async def create_session(self, request: Any = None) -> CreateSessionResponse:
        return await self._call("create_session", request)

    async def get_session(self, request: Any) -> GetSessionResponse:
        return await self._call("get_session", request)

    async def end_session(self, request: Any) -> EndSessionResponse:
        return await self._call("end_session", request)

    async def delete_session(self, request: Any) -> None:
        await self._call("delete_session", request)

    async def create_invocation(self, request: Any) -> CreateInvocationResponse:
        return await self._call("create_invocation", request)

    async def list_invocations(self, request: Any) -> ListInvocationsResponse:
        return await self._call("list_invocations", request)

    async def put_invocation_step(self, request: Any) -> PutInvocationStepResponse:
        return await self._call("put_invocation_step", request)

    async def get_invocation_step(self, request: Any) -> GetInvocationStepResponse:
        return await self._call("get_invocation_step", request)

    async def list_invocation_steps(self, request: Any) -> ListInvocationStepsResponse:
        return await self._call("list_invocation_steps", request)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} over {self.client!r}>"
