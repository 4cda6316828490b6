"""Which store a command reads: an embedded file (``--db``), a server speaking the Bedrock session API
(``--endpoint``, e.g. ``bedrock-sessions serve``), or Amazon Bedrock (``--region`` / ``--profile``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..client import SessionClient


class StoreError(Exception):
    """A store that cannot be opened as asked (the message says why and what to do)."""


@dataclass(frozen=True)
class Store:
    """Where a store is: exactly one of ``db``, ``endpoint`` or AWS (``region`` / ``profile``)."""

    db: str | None = None
    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    thread_index: str | None = None
    dynamodb_endpoint: str | None = None
    keyring: str | None = None  # an embedded store's keyring (encryption at rest)
    create: bool = False  # an embedded file may be created (a target of import or copy)

    def describe(self) -> str:
        if self.db:
            return f"file {self.db}"
        if self.endpoint:
            return f"endpoint {self.endpoint}"
        return f"Amazon Bedrock ({self.region or 'default region'}{', profile ' + self.profile if self.profile else ''})"

    def client(self) -> SessionClient:
        return open_store(self)


def open_store(where: Store) -> SessionClient:
    if where.keyring and not where.db:
        raise StoreError("--keyring goes with --db: a server or Amazon Bedrock encrypts its own sessions")
    if where.db:
        if not where.create and not os.path.exists(where.db):
            raise StoreError(f"no store file at {where.db!r} (a path to the SQLite file of an embedded store)")
        return SessionClient.local(where.db, **({"keyring": where.keyring} if where.keyring else {}))
    args: dict[str, Any] = {}
    if where.thread_index:
        args["thread_index"] = where.thread_index
    if where.dynamodb_endpoint:
        args["dynamodb_endpoint_url"] = where.dynamodb_endpoint
    if where.endpoint:
        args.update(endpoint_url=where.endpoint, region_name=where.region or "us-east-1")
        has_credentials = where.profile or os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")
        if where.profile:
            args["credentials_profile_name"] = where.profile
        elif not has_credentials:
            # A local server (bedrock-sessions serve) takes any credentials; the SDK needs some to sign with.
            args.update(aws_access_key_id="bedrock-sessions", aws_secret_access_key="local")
        return SessionClient.bedrock(**args)
    if where.region or where.profile:
        if where.region:
            args["region_name"] = where.region
        if where.profile:
            args["credentials_profile_name"] = where.profile
        return SessionClient.bedrock(**args)
    raise StoreError("no store given: --db FILE (embedded), --endpoint URL (a server), or --region/--profile (AWS)")
