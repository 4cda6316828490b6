"""A local server that speaks the Amazon Bedrock session REST API over the embedded store, so boto3, the AWS
SDKs and langgraph-checkpoint-aws's saver work against it without AWS.

>>> with LocalServer() as server:                      # a temporary store, a free port on 127.0.0.1
...     client = server.boto3_client()                 # boto3 bedrock-agent-runtime, dummy credentials
...     client.create_session()
"""

from __future__ import annotations

import json
import os
import tempfile
from types import TracebackType
from typing import Any

from . import _core
from .client import SessionClient

__all__ = ["LocalServer", "FAULTS", "SERVICE_RETENTION_DAYS"]

FAULTS = ("throttle", "500", "drop-before", "drop-after")

# The service deletes session data after 30 days (its user guide's quotas): the server's default retention.
SERVICE_RETENTION_DAYS = 30.0


def _is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _log_target(name: str, target: str | os.PathLike[str] | None) -> str | None:
    if target is not None and not isinstance(target, (str, os.PathLike)):
        raise TypeError(f"{name} must be None, 'off', '-' or a file path, not {type(target).__name__}")
    return None if target is None or (isinstance(target, str) and target == "off") else os.fspath(target)


def _principal_credentials(iam_file: str, principal: str, account: str | None) -> dict[str, str]:
    with open(iam_file, encoding="utf-8") as f:
        accounts = json.load(f).get("accounts", {})
    found = [(acct, spec["principals"][principal]) for acct, spec in accounts.items()
             if principal in spec.get("principals", {}) and account in (None, acct)]
    if not found:
        where = f" of account {account}" if account else ""
        raise ValueError(f"no principal {principal!r}{where} in {iam_file}")
    if len(found) > 1:
        raise ValueError(f"principal {principal!r} is in accounts {sorted(a for a, _ in found)}: say which (account=...)")
    keys = found[0][1].get("access_keys", {})
    if not keys:
        raise ValueError(f"principal {principal!r} has no access key in {iam_file}")
    key_id, secret = next(iter(keys.items()))
    if isinstance(secret, dict):
        return dict(aws_access_key_id=key_id, aws_secret_access_key=secret["secret"],
                    aws_session_token=secret["session_token"])
    return dict(aws_access_key_id=key_id, aws_secret_access_key=secret)


class LocalServer:
    """Serves a store over HTTP on ``host:port`` from background threads of this process.

    ``db``: a SQLite file path, a :class:`SessionClient` whose store to serve, or None for a temporary file.
    ``latency`` (seconds) is added to every API request; ``fault_rate`` (0–1) of API requests get one of
    ``faults`` (throttle: 429 ThrottlingException; 500: InternalServerException; drop-before: the connection
    drops before the operation runs; drop-after: it runs and commits, then the connection drops), drawn from
    a generator seeded with ``seed``.

    The service's assumed behaviours are options (docs/server.md): ``region`` and ``account_id`` (of the
    session ARNs), ``idle_timeout`` (seconds before an idle session reads as EXPIRED), the quotas
    ``max_steps_per_session`` and ``max_step_bytes``, and ``default_page_size`` (lists without
    ``maxResults``). Other keyword options go to the store (``clock``, ``durability``, ``busy_timeout``).

    ``log``: where the server writes one JSON line per API request (docs/server.md, "Request log and
    metrics"): None or ``"off"`` (the default), ``"-"`` (this process's stderr), or a file path (appended
    to). The lines are written in the background; :meth:`stop` returns once they are all written. Metrics
    in the Prometheus text format are served at ``GET /metrics``.

    ``ui=True``: the web inspector of the store under ``/ui/`` of the same address (:attr:`ui_url`;
    docs/inspector.md); it needs LangGraph.

    ``iam``: an identities file (JSON: accounts, principals, access keys, tags and IAM policies; docs/server.md,
    "Authentication" and "Accounts and IAM policies"), after which every API request must be signed with SigV4 by one
    of its keys, for the server's region and service ``bedrock``, and is decided by its principal's policies; each
    account sees its own sessions only. Unsigned or badly signed requests get AWS's 403 errors. Without it the server
    is open, so it binds loopback addresses only, unless ``insecure=True`` says otherwise. :meth:`credentials`,
    :meth:`boto3_client` and :meth:`session_client` give clients that sign as a principal of the file.

    ``audit``: where the audit log goes (one JSON line per API request, with CloudTrail's field names: who, what,
    the decision and the outcome), as ``log``.

    ``read_timeout`` (seconds): a connection that sends nothing for this long is closed, and a request whose head or
    body stalls this long is answered 408 or dropped (idle or half-sent connections are not kept open).

    Data protection (docs/encryption.md): ``keyring=FILE`` or ``kms_key=ARN`` / ``kms=True`` (with ``kms_region``,
    ``kms_endpoint_url``) encrypt sessions at rest, as the service does: those whose CreateSession names a key with
    that key (a key the store cannot use is refused with ValidationException), the others under the default key.
    ``retention_days`` (the service's 30 by default; None keeps sessions until deleted) erases sessions that many days
    after their last update. A given ``SessionClient`` keeps its own settings.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] | SessionClient | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        faults: tuple[str, ...] | list[str] | None = None,
        seed: int = 24301,
        region: str | None = None,
        account_id: str | None = None,
        idle_timeout: float | None = None,
        max_steps_per_session: int | None = None,
        max_step_bytes: int | None = None,
        default_page_size: int | None = None,
        log: str | os.PathLike[str] | None = None,
        ui: bool = False,
        iam: str | os.PathLike[str] | None = None,
        insecure: bool = False,
        read_timeout: float = 20.0,
        audit: str | os.PathLike[str] | None = None,
        retention_days: float | None = SERVICE_RETENTION_DAYS,
        **store_options: Any,
    ) -> None:
        if iam is None and not insecure and not _is_loopback(host):
            raise ValueError(
                f"the server would accept unauthenticated requests on {host}: give it identities (iam=FILE, "
                "serve --iam FILE) so that requests must be signed, or say insecure=True (serve --insecure)"
            )
        if ui and iam is not None:
            raise ValueError(
                "the web inspector is not served by a server that requires signed requests (a browser cannot sign "
                "them): run `bedrock-sessions ui` on the store instead"
            )
        self._iam = os.fspath(iam) if iam is not None else None
        self._read_timeout = float(read_timeout)
        log_target = _log_target("log", log)
        self._audit = _log_target("audit", audit)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        assumed = dict(region=region, account_id=account_id, idle_timeout=idle_timeout,
                       max_steps_per_session=max_steps_per_session, max_step_bytes=max_step_bytes,
                       default_page_size=default_page_size)
        store_options.update({k: v for k, v in assumed.items() if v is not None})
        if isinstance(db, SessionClient):
            if store_options or retention_days != SERVICE_RETENTION_DAYS:
                raise TypeError("store options apply to a new store, not to a given client")
            self.client = db
            self._owns_client = False
        else:
            if db is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="bedrock-sessions-")
                db = os.path.join(self._tmp.name, "sessions.db")
            self.client = SessionClient.local(db, retention_days=retention_days, **store_options)
            self._owns_client = True
        # What the native server is started with (all but the store), as keyword arguments of NativeServer.start.
        self._args: dict[str, Any] = dict(
            host=host, port=port, latency=latency, fault_rate=fault_rate,
            faults=list(faults) if faults is not None else None, seed=seed, log=log_target,
            iam=self._iam, read_timeout=self._read_timeout, audit=self._audit)
        self._native: _core.NativeServer | None = None
        self._ui = bool(ui)
        self._web: Any = None

    def start(self) -> LocalServer:
        if self._native is None:
            upstream = None
            if self._ui and self._web is None:
                # The pages come from the inspector on a loopback port of its own; the server relays /ui/ to it.
                from .inspect import Inspector
                from .inspect._web import WebInspector

                self._web = WebInspector(Inspector(self.client), "127.0.0.1", 0).start()
                upstream = self._web.port
            self._native = _core.NativeServer.start(
                self.client._native, ui_upstream=upstream, region=self.client.meta.region_name, **self._args)
        return self

    def stop(self) -> None:
        """Stops gracefully (in-flight requests finish) and releases the store. Idempotent."""
        if self._native is not None:
            self._native.stop()
        if self._web is not None:
            self._web.stop()
            self._web = None
        if self._owns_client:
            self.client.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def running(self) -> bool:
        return self._native is not None and self._native.running

    @property
    def host(self) -> str:
        return self._started().host

    @property
    def port(self) -> int:
        return self._started().port

    @property
    def endpoint_url(self) -> str:
        n = self._started()
        return f"http://{n.host}:{n.port}"

    @property
    def ui_url(self) -> str:
        """Where the web inspector's pages are (``ui=True``)."""
        if not self._ui:
            raise RuntimeError("the server was started without its web inspector: LocalServer(..., ui=True)")
        return f"{self.endpoint_url}/ui/"

    @property
    def metrics_url(self) -> str:
        """Where the server's metrics are (Prometheus text format)."""
        return f"{self.endpoint_url}/metrics"

    @property
    def region(self) -> str:
        return self.client.meta.region_name

    def stats(self) -> dict[str, Any]:
        """Requests counted by the server: ``requests``, ``operations`` (per operation), ``faults``,
        ``max_in_flight``."""
        return self._started().stats()

    def reset_stats(self) -> None:
        self._started().reset_stats()

    def credentials(self, principal: str | None = None, *, account: str | None = None) -> dict[str, str]:
        """boto3's credential arguments (``aws_access_key_id``, ``aws_secret_access_key`` and, for a temporary key,
        ``aws_session_token``) of a principal of the identities file (its first access key; ``account`` when the name
        is in several accounts); dummy ones for a server without identities."""
        if self._iam is None:
            if principal is not None:
                raise ValueError(f"principal {principal!r}: the server has no identities file (LocalServer(iam=...))")
            return dict(aws_access_key_id="testing", aws_secret_access_key="testing", aws_session_token="testing")
        if principal is None:
            raise ValueError("the server checks identities: name the principal whose credentials to use")
        return _principal_credentials(self._iam, principal, account)

    def boto3_client(self, principal: str | None = None, *, account: str | None = None, **kwargs: Any) -> Any:
        """A boto3 ``bedrock-agent-runtime`` client for this server, signing as ``principal`` of the identities file
        (dummy credentials without one)."""
        import boto3

        return boto3.client("bedrock-agent-runtime", **self._client_params(principal, account, kwargs))

    def session_client(self, principal: str | None = None, *, account: str | None = None, **kwargs: Any) -> SessionClient:
        """A :class:`SessionClient` of this server (the AWS SDK for Rust), signing as ``principal`` of the identities
        file; for the savers and the LlamaIndex stores (``session_client=``)."""
        return SessionClient.bedrock(**self._client_params(principal, account, kwargs))

    def _client_params(self, principal: str | None, account: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = dict(endpoint_url=self.endpoint_url, region_name=self.region)
        if principal is not None or "aws_access_key_id" not in kwargs:  # else the caller's own credentials
            params.update(self.credentials(principal, account=account))
        params.update(kwargs)
        return params

    def _started(self) -> _core.NativeServer:
        if self._native is None:
            raise RuntimeError("the server is not started: call start() or use it as a context manager")
        return self._native

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.endpoint_url if self._native is not None else "not started"
        return f"<LocalServer {where}>"
