"""What the LlamaIndex stores share: the client they are given, and the options they pass on to it."""

from __future__ import annotations

from typing import Any

from .. import _core
from ..client import AsyncSessionClient, SessionClient

LAYOUT = "li1"
MAX_IMAGES_PER_STEP = 20
MAX_IMAGE_BYTES = 3_932_160  # 3.75 MB
DEFAULT_MAX_STEP_BYTES = 52_428_800  # 50 MB

# Options of SessionClient.local()/.memory() that the stores' constructors pass on; the shared ones go to both.
_CLIENT_ONLY = {"region", "account_id", "default_page_size", "busy_timeout", "durability", "keyring", "kms", "kms_key",
                "kms_region", "kms_endpoint_url", "retention_days"}
_SHARED = {"idle_timeout", "max_steps_per_session", "max_step_bytes", "clock"}


def native_of(client: Any) -> _core.NativeClient:
    if isinstance(client, (SessionClient, AsyncSessionClient)):
        return client._native
    if isinstance(client, _core.NativeClient):
        return client
    raise TypeError(f"client must be a bedrock_sessions SessionClient or AsyncSessionClient (got {type(client).__name__})")


def split_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    client = {k: v for k, v in kwargs.items() if k in _CLIENT_ONLY or k in _SHARED}
    store = {k: v for k, v in kwargs.items() if k not in _CLIENT_ONLY}
    return client, store
