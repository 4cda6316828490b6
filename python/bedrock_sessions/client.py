"""The session API: boto3's ``bedrock-agent-runtime`` session operations over the native core."""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

from . import _core, _doors
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
    if native.backend == "bedrock":
        # bedrock_options resolved the endpoint and passed it on; without one the SDK uses the service's default.
        region = native.region
        return _Meta(region, native.endpoint_url or default_endpoint(region))
    where = f"file:{native.path}" if native.path else "memory:"
    return _Meta(native.region, where)


def default_endpoint(region: str) -> str:
    """The service's own endpoint in ``region`` (as botocore resolves it, FIPS and dual-stack variants aside)."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://bedrock-agent-runtime.{region}.{suffix}"


_SERVICE_ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME"


class _SharedConfig:
    """The shared AWS config file as botocore reads it (the profile of a boto3 session, ``credentials_profile_name`` or
    ``AWS_PROFILE``), read only when needed; empty without botocore or when the profile or file is unusable (the
    backend then reports the problem when it opens)."""

    def __init__(self, session: Any, profile: str | None) -> None:
        self._session, self._profile = session, profile
        self._loaded: tuple[dict[str, Any], dict[str, Any]] | None = None

    def _load(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if self._loaded is None:
            self._loaded = {}, {}
            try:
                import botocore.session

                core = getattr(self._session, "_session", None) or botocore.session.Session(profile=self._profile)
                self._loaded = core.full_config, core.get_scoped_config()
            except Exception:  # noqa: BLE001 - no botocore, no such profile, a malformed file
                pass
        return self._loaded

    def get(self, key: str) -> Any:
        """A setting of the profile."""
        return self._load()[1].get(key)

    def service_endpoint(self) -> str | None:
        """``endpoint_url`` of bedrock_agent_runtime in the ``services`` section the profile names."""
        full, scoped = self._load()
        section = full.get("services", {}).get(scoped.get("services"), {})
        return section.get("bedrock_agent_runtime", {}).get("endpoint_url")


def _true(value: Any) -> bool:
    return str(value).strip().lower() == "true"


def _resolve_endpoint(config: Any, shared: _SharedConfig, region: str | None) -> str | None:
    """The endpoint botocore would use when none is given: the service's variable, the global one, the profile's services
    section, the profile's ``endpoint_url`` — none of them if configured endpoints are ignored (``Config``, then
    ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS``, then the profile). None: the service's default."""
    ignore = getattr(config, "ignore_configured_endpoint_urls", None)
    if ignore is None:
        setting = os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        ignore = _true(setting if setting is not None else shared.get("ignore_configured_endpoint_urls"))
    if ignore:
        # Pinned: the AWS SDK for Rust reads the service's variable and the profile even when told to ignore them.
        return default_endpoint(region) if region else None
    return (
        os.environ.get(_SERVICE_ENDPOINT_VARIABLE)
        or os.environ.get("AWS_ENDPOINT_URL")
        or shared.service_endpoint()
        or shared.get("endpoint_url")
    )


def _secret(value: Any) -> str | None:
    """Plain strings, or pydantic SecretStr as the replaced saver took them."""
    if value is None:
        return None
    get = getattr(value, "get_secret_value", None)
    return get() if callable(get) else str(value)


def bedrock_options(
    region_name: str | None = None,
    credentials_profile_name: str | None = None,
    aws_access_key_id: Any = None,
    aws_secret_access_key: Any = None,
    aws_session_token: Any = None,
    endpoint_url: str | None = None,
    config: Any = None,
    session: Any = None,
    client: Any = None,
    max_attempts: int | None = None,
    total_timeout: float = 60.0,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
    thread_index: str | None = None,
    dynamodb_endpoint_url: str | None = None,
) -> dict[str, Any]:
    """Maps the replaced saver's AWS arguments (and a boto3 session, client or botocore Config) to the
    native backend's options. Explicit arguments win over what a session or client carries.

    The region and the endpoint are resolved here, as botocore resolves them, and passed to the backend explicitly, so
    that ``client.meta`` reports what the requests use. Region: the argument, a boto3 client's, a Config's, a boto3
    session's, ``AWS_DEFAULT_REGION``, ``AWS_REGION`` (read by the other AWS SDKs), the profile's. Endpoint: the
    argument, a boto3 client's, then :func:`_resolve_endpoint`."""
    region = region_name
    profile = credentials_profile_name
    key, secret, token = _secret(aws_access_key_id), _secret(aws_secret_access_key), _secret(aws_session_token)
    endpoint = endpoint_url
    if client is not None:
        meta = getattr(client, "meta", None)
        region = region or getattr(meta, "region_name", None)
        endpoint = endpoint or getattr(meta, "endpoint_url", None)  # botocore resolved it when it made the client
        signer = getattr(client, "_request_signer", None)
        creds = getattr(signer, "_credentials", None)
        if creds is not None and key is None:
            frozen = creds.get_frozen_credentials()
            key, secret, token = frozen.access_key, frozen.secret_key, frozen.token
        client_config = getattr(meta, "config", None)
        if config is None:
            config = client_config
    if config is not None:  # botocore: a Config's region before the session's
        region = region or getattr(config, "region_name", None)
    if session is not None:
        region = region or session.region_name
        if key is None and profile is None:
            creds = session.get_credentials()
            if creds is not None:
                frozen = creds.get_frozen_credentials()
                key, secret, token = frozen.access_key, frozen.secret_key, frozen.token
    shared = _SharedConfig(session, profile)
    region = region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or shared.get("region")
    endpoint = endpoint or _resolve_endpoint(config, shared, region)
    if config is not None:
        connect_timeout = connect_timeout if connect_timeout is not None else getattr(config, "connect_timeout", None)
        read_timeout = read_timeout if read_timeout is not None else getattr(config, "read_timeout", None)
        retries = getattr(config, "retries", None) or {}
        if max_attempts is None:
            if "total_max_attempts" in retries:
                max_attempts = int(retries["total_max_attempts"])
            elif "max_attempts" in retries:  # botocore: retries after the first attempt
                max_attempts = int(retries["max_attempts"]) + 1
    return dict(
        region=region, profile=profile, access_key_id=key, secret_access_key=secret, session_token=token,
        endpoint_url=endpoint, connect_timeout=connect_timeout, read_timeout=read_timeout,
        max_attempts=max_attempts or 5, total_timeout=total_timeout, thread_index=thread_index,
        dynamodb_endpoint_url=dynamodb_endpoint_url,
    )


def open_native(client: Any = None, **aws_args: Any) -> _core.NativeClient:
    """The store the replaced saver's constructor arguments name: ``client`` (one of our session clients, or a boto3
    ``bedrock-agent-runtime`` client: its region, endpoint and credentials are used), else Amazon Bedrock opened with
    ``aws_args`` (``region_name``, ``session``, ``config``, ...). As with the replaced saver, ``aws_args`` are not
    looked at when a client is given."""
    if isinstance(client, (SessionClient, AsyncSessionClient)):
        return client._native
    if client is None:
        return _core.NativeClient.open_bedrock(**bedrock_options(**aws_args))
    service = getattr(getattr(getattr(client, "meta", None), "service_model", None), "service_name", None)
    if service == "bedrock-agent-runtime":
        return _core.NativeClient.open_bedrock(**bedrock_options(client=client))
    raise TypeError(
        "client must be a bedrock_sessions SessionClient/AsyncSessionClient or a boto3 bedrock-agent-runtime "
        f"client (got {type(client).__name__})"
    )


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
        default_page_size, busy_timeout, durability, clock).

        Data protection (docs/encryption.md): ``keyring=FILE`` (a JSON keyring) or ``kms_key=ARN`` / ``kms=True``
        (AWS KMS with the standard credential chain; ``kms_region``, ``kms_endpoint_url``) encrypt sessions at
        rest: those that name a key (``encryptionKeyArn``), and all others under the default key when there is
        one. ``retention_days=N`` erases sessions N days after their last update (off by default)."""
        return cls(_core.NativeClient.open_local(os.fspath(path), **options))

    @classmethod
    def memory(cls, **options: Any) -> SessionClient:
        """An embedded store that lives in this process's memory (the options of :meth:`local` but the file's:
        ``busy_timeout``, ``durability``)."""
        return cls(_core.NativeClient.open_memory(**options))

    @classmethod
    def bedrock(cls, **kwargs: Any) -> SessionClient:
        """Amazon Bedrock through the AWS SDK for Rust, with the replaced saver's arguments: ``region_name``,
        ``credentials_profile_name``, ``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token``,
        ``endpoint_url``, ``config`` (botocore Config: region, timeouts, retries), ``session`` (boto3) or
        ``client`` (a boto3 client whose region, endpoint and credentials are used); plus ``max_attempts``,
        ``total_timeout``, ``connect_timeout``, ``read_timeout``. Unset credentials come from the standard
        chain. Retries: exponential backoff with full jitter on throttling, 5xx, timeouts, dropped connections.

        ``thread_index`` lets any string be a thread id (docs/saver.md, "Thread index"): ``"dynamodb:<table>"`` or a
        DynamoDB table ARN (created on first use when missing; ``dynamodb_endpoint_url`` for an emulator, else
        ``AWS_ENDPOINT_URL_DYNAMODB`` and the profile as the AWS SDKs resolve it), or the id of a session that keeps
        the index in the session API itself."""
        return cls(_core.NativeClient.open_bedrock(**bedrock_options(**kwargs)))

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

    # -- data protection (embedded stores)
    def sweep(self) -> int:
        """Erases the sessions past the store's retention period now, and returns how many went (the store also
        sweeps when it opens and every hour). Not for Amazon Bedrock, which deletes its own."""
        return self._native.sweep()

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

    No call blocks the event loop; many may run at once. Each backend is reached its cheapest way: in memory in
    the calling coroutine, on a SQLite file reads in the calling coroutine and writes on a store thread, on
    Bedrock through the core's async runtime.
    """

    exceptions = client_exceptions

    def __init__(self, native: _core.NativeClient) -> None:
        self._native = native
        self._door = _doors.door_of(native)
        self.meta = _meta_for(native)

    @classmethod
    def local(cls, path: str | os.PathLike[str], **options: Any) -> AsyncSessionClient:
        """The embedded store in the SQLite file at ``path`` (created if missing); the options of
        :meth:`SessionClient.local`."""
        return cls(_core.NativeClient.open_local(os.fspath(path), **options))

    @classmethod
    def memory(cls, **options: Any) -> AsyncSessionClient:
        """An embedded store that lives in this process's memory."""
        return cls(_core.NativeClient.open_memory(**options))

    @classmethod
    def bedrock(cls, **kwargs: Any) -> AsyncSessionClient:
        """Amazon Bedrock through the AWS SDK for Rust (see :meth:`SessionClient.bedrock`)."""
        return cls(_core.NativeClient.open_bedrock(**bedrock_options(**kwargs)))

    async def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return await _doors.call(self._native, self._door, operation, params)

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

    async def sweep(self) -> int:
        """Erases the sessions past the store's retention period now (see :meth:`SessionClient.sweep`)."""
        result: int = await self._native.sweep_async()
        return result

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
