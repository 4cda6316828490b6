"""The session API: boto3's ``bedrock-agent-runtime`` session operations over the native core."""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

from . import _core
from ._paginate import PAGINATED, AsyncPaginator, Paginator
from .exceptions import client_exceptions

__all__ = ["SessionClient", "AsyncSessionClient"]


class _Meta:
    """``client.meta`` with the fields boto3 code reads most."""

    def __init__(self, region_name: str, endpoint_url: str) -> None:
        self.region_name = region_name
        self.endpoint_url = endpoint_url
        self.service_name = "bedrock-agent-runtime"
        self._service_model: Any = None

    @property
    def service_model(self) -> Any:
        """botocore's model of bedrock-agent-runtime (as on a boto3 client), or a stand-in naming the
        service when botocore is not installed."""
        if self._service_model is None:
            try:
                import botocore.session

                self._service_model = botocore.session.get_session().get_service_model(self.service_name)
            except Exception:  # botocore missing or without this service
                from types import SimpleNamespace

                self._service_model = SimpleNamespace(service_name=self.service_name)
        return self._service_model


def _meta_for(native: _core.NativeClient) -> _Meta:
    where = f"file:{native.path}" if native.path else "memory:"
    return _Meta(native.region, where)


def _check_name(name: str) -> None:
    if name not in PAGINATED:
        raise ValueError(f"Operation cannot be paginated: {name}")


class SessionClient:
    """Synchronous session client with boto3's method names, keyword arguments and response shapes.

    Open one with :meth:`local` (a SQLite file) or :meth:`memory`. Every method takes keyword arguments
    only and returns a dict; errors are :mod:`bedrock_sessions.exceptions` classes (botocore
    ``ClientError`` subclasses carrying the AWS code). The GIL is released while the store works.
    """

    exceptions = client_exceptions

    def __init__(self, native: _core.NativeClient) -> None:
        self._native = native
        self.meta = _meta_for(native)

    @classmethod
    def local(cls, path: str | os.PathLike[str], **options: Any) -> SessionClient:
        """The embedded store in the SQLite file at ``path`` (created if missing). See docs/session-api.md
        for the options (region, account_id, idle_timeout, max_steps_per_session, max_step_bytes,
        default_page_size, busy_timeout, durability, clock)."""
        return cls(_core.NativeClient.open_local(os.fspath(path), **options))

    @classmethod
    def memory(cls, **options: Any) -> SessionClient:
        """An embedded store that lives in this process's memory."""
        return cls(_core.NativeClient.open_memory(**options))

    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return self._native.call(operation, params)

    # -- sessions
    def create_session(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("CreateSession", kwargs)

    def get_session(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("GetSession", kwargs)

    def list_sessions(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("ListSessions", kwargs)

    def update_session(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("UpdateSession", kwargs)

    def end_session(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("EndSession", kwargs)

    def delete_session(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("DeleteSession", kwargs)

    # -- invocations and steps
    def create_invocation(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("CreateInvocation", kwargs)

    def list_invocations(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("ListInvocations", kwargs)

    def put_invocation_step(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("PutInvocationStep", kwargs)

    def get_invocation_step(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("GetInvocationStep", kwargs)

    def list_invocation_steps(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("ListInvocationSteps", kwargs)

    # -- tags
    def tag_resource(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("TagResource", kwargs)

    def untag_resource(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("UntagResource", kwargs)

    def list_tags_for_resource(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("ListTagsForResource", kwargs)

    # -- boto3 conveniences
    def can_paginate(self, operation_name: str) -> bool:
        return operation_name in PAGINATED

    def get_paginator(self, operation_name: str) -> Paginator:
        _check_name(operation_name)
        return Paginator(self._call, operation_name)

    @property
    def closed(self) -> bool:
        return self._native.closed

    def close(self) -> None:
        """Releases the store; further calls raise RuntimeError. Idempotent."""
        self._native.close()

    def __enter__(self) -> SessionClient:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SessionClient {self.meta.endpoint_url} region={self.meta.region_name}>"


class AsyncSessionClient:
    """Asynchronous session client: the same operations as :class:`SessionClient`, as coroutines.

    Calls run on the core's runtime and never block the event loop; many may run at once.
    """

    exceptions = client_exceptions

    def __init__(self, native: _core.NativeClient) -> None:
        self._native = native
        self.meta = _meta_for(native)

    @classmethod
    def local(cls, path: str | os.PathLike[str], **options: Any) -> AsyncSessionClient:
        """The embedded store in the SQLite file at ``path`` (created if missing)."""
        return cls(_core.NativeClient.open_local(os.fspath(path), **options))

    @classmethod
    def memory(cls, **options: Any) -> AsyncSessionClient:
        """An embedded store that lives in this process's memory."""
        return cls(_core.NativeClient.open_memory(**options))

    async def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return await self._native.call_async(operation, params)

    async def create_session(self, **kwargs: Any) -> dict[str, Any]:
        return await self._call("CreateSession", kwargs)

    async def get_session(self, **kwargs: Any) -> dict[str, Any]:
        return await self._call("GetSession", kwargs)

    async def list_sessions(self, **kwargs: Any) -> dict[str, Any]:
        return await self._call("ListSessions", kwargs)

    async def update_session(self, **kwargs: Any) -> dict[str, Any]:
        return await self._call("UpdateSession", kwargs)

    async def end_session(self, **kwargs: Any) -> dict[str, Any]:
        return await self._call("EndSession", kwargs)

    async def delete_session(self, **kwargs: Any) -> dict[str, Any]:
        return await self._call("DeleteSession", kwargs)

    async def create_invocation(self, **kwargs: Any) -> dict[str, Any]:
        return await self._call("CreateInvocation", kwargs)

    async def list_invocations(self, **kwargs: Any) -> dict[str, Any]:
        return await self._call("ListInvocations", kwargs)

    async def put_invocation_step(self, **kwargs: Any) -> dict[str, Any]:
        return await self._call("PutInvocationStep", kwargs)

    async def get_invocation_step(self, **kwargs: Any) -> dict[str, Any]:
        return await self._call("GetInvocationStep", kwargs)

    async def list_invocation_steps(self, **kwargs: Any) -> dict[str, Any]:
        return await self._call("ListInvocationSteps", kwargs)

    async def tag_resource(self, **kwargs: Any) -> dict[str, Any]:
        return await self._call("TagResource", kwargs)

    async def untag_resource(self, **kwargs: Any) -> dict[str, Any]:
        return await self._call("UntagResource", kwargs)

    async def list_tags_for_resource(self, **kwargs: Any) -> dict[str, Any]:
        return await self._call("ListTagsForResource", kwargs)

    def can_paginate(self, operation_name: str) -> bool:
        return operation_name in PAGINATED

    def get_paginator(self, operation_name: str) -> AsyncPaginator:
        _check_name(operation_name)
        return AsyncPaginator(self._call, operation_name)

    @property
    def closed(self) -> bool:
        return self._native.closed

    async def close(self) -> None:
        """Releases the store; further calls raise RuntimeError. Idempotent."""
        self._native.close()

    async def __aenter__(self) -> AsyncSessionClient:
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<AsyncSessionClient {self.meta.endpoint_url} region={self.meta.region_name}>"
