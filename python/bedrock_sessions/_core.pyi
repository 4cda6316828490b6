"""Native core of bedrock-sessions (Rust, pyo3)."""

import builtins
import os
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, final


def unpack_envelope(text: str) -> str: ...
def quiesce(timeout: float = 5.0) -> bool: ...

__all__ = ["quiesce", "unpack_envelope", "ListCursor", "ManualClock", "NativeClient", "NativeSaver", "NativeServer", "OPERATIONS", "SCHEMA_VERSION", "__version__"]

__version__: str
SCHEMA_VERSION: int
OPERATIONS: list[str]

@final
class ManualClock:
    """A clock for tests: moves only when told to."""

    def __new__(cls, start: datetime | None = None) -> ManualClock: ...
    def advance(self, seconds: float) -> None: ...
    def set(self, when: datetime) -> None: ...
    def now(self) -> datetime: ...

@final
class NativeClient:
    @staticmethod
    def open_local(
        path: str,
        *,
        region: str = "us-east-1",
        account_id: str = "000000000000",
        idle_timeout: float = 3600.0,
        max_steps_per_session: int = 1000,
        max_step_bytes: int = 52428800,
        default_page_size: int = 10,
        busy_timeout: float = 30.0,
        durability: str = "full",
        clock: ManualClock | None = None,
        keyring: str | os.PathLike[str] | None = None,
        kms: bool = False,
        kms_key: str | None = None,
        kms_region: str | None = None,
        kms_endpoint_url: str | None = None,
        retention_days: float | None = None,
    ) -> NativeClient: ...
    @staticmethod
    def open_memory(
        *,
        region: str = "us-east-1",
        account_id: str = "000000000000",
        idle_timeout: float = 3600.0,
        max_steps_per_session: int = 1000,
        max_step_bytes: int = 52428800,
        default_page_size: int = 10,
        clock: ManualClock | None = None,
        keyring: str | os.PathLike[str] | None = None,
        kms: bool = False,
        kms_key: str | None = None,
        kms_region: str | None = None,
        kms_endpoint_url: str | None = None,
        retention_days: float | None = None,
    ) -> NativeClient: ...
    @staticmethod
    def open_bedrock(
        *,
        region: str | None = None,
        profile: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        endpoint_url: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_attempts: int = 5,
        total_timeout: float = 60.0,
        thread_index: str | None = None,
        dynamodb_endpoint_url: str | None = None,
    ) -> NativeClient: ...
    @property
    def backend(self) -> str: ...
    @property
    def endpoint_url(self) -> str | None: ...
    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]: ...
    def call_async(self, operation: str, params: dict[str, Any]) -> Awaitable[dict[str, Any]]: ...
    def sweep(self) -> int: ...
    def sweep_async(self) -> Awaitable[int]: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def path(self) -> str | None: ...
    @property
    def region(self) -> str: ...
    @property
    def account_id(self) -> str: ...

@final
class NativeSaver:
    def __new__(
        cls, client: NativeClient, *, deferred: bool = False, group_commit: bool | None = None, compress: bool | None = None
    ) -> NativeSaver: ...
    @property
    def thread_index(self) -> bool: ...
    @property
    def deferred(self) -> bool: ...
    def flush(self, thread_id: str | None = None, *, asynchronous: bool = False) -> Any: ...
    def put(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        parent_checkpoint_id: str | None,
        checkpoint: tuple[str, bytes],
        metadata_json: str,
        channel_values: list[tuple[str, tuple[str, bytes]]],
        *,
        asynchronous: bool = False,
    ) -> Any: ...
    def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        task_id: str,
        task_path: str,
        writes: list[tuple[str, int, tuple[str, bytes]]],
        *,
        asynchronous: bool = False,
    ) -> Any: ...
    def put_with_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        parent_checkpoint_id: str | None,
        checkpoint: tuple[str, bytes],
        metadata_json: str,
        channel_values: list[tuple[str, tuple[str, bytes]]],
        writes: list[tuple[str, str, str, str, str, list[tuple[str, int, tuple[str, bytes]]]]],
        *,
        asynchronous: bool = False,
    ) -> Any: ...
    def get_tuple(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None = None, *, asynchronous: bool = False
    ) -> Any: ...
    def list(
        self, thread_id: str | None = None, checkpoint_ns: str | None = None, before: str | None = None
    ) -> ListCursor: ...
    def delete_thread(self, thread_id: str, *, asynchronous: bool = False) -> Any: ...
    def continue_thread(self, thread_id: str, *, asynchronous: bool = False) -> Any: ...
    def copy_thread(self, source_thread_id: str, target_thread_id: str, *, asynchronous: bool = False) -> Any: ...
    def prune(self, thread_ids: builtins.list[str], keep_latest: bool, *, asynchronous: bool = False) -> Any: ...
    def delete_for_runs(self, run_ids: builtins.list[str], *, asynchronous: bool = False) -> Any: ...
    def resolve_thread(self, thread_id: str, create: bool = False, *, asynchronous: bool = False) -> Any: ...
    def create_thread(
        self, metadata: dict[str, str] | None = None, tags: dict[str, str] | None = None, *, asynchronous: bool = False
    ) -> Any: ...

@final
class ListCursor:
    def next(self, n: int = 16, *, asynchronous: bool = False) -> Any: ...

@final
class NativeServer:
    @staticmethod
    def start(
        client: NativeClient,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        faults: list[str] | None = None,
        seed: int = 24301,
        log: str | None = None,
        ui_upstream: int | None = None,
        iam: str | None = None,
        region: str = "us-east-1",
        read_timeout: float = 20.0,
        audit: str | None = None,
    ) -> NativeServer: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def running(self) -> bool: ...
    def stop(self) -> None: ...
    def stats(self) -> dict[str, Any]: ...
    def reset_stats(self) -> None: ...

@final
class Li1Ids:
    """The LlamaIndex stores' ids (layout li1) of one kind and namespace."""

    def __new__(cls, kind: str, ns: str) -> Li1Ids: ...
    def invocation_id(self, run: str | None = None) -> str: ...
    def marker_key(self) -> str: ...
    def log_step_id(self, seq: int) -> str: ...
    def log_seq_of(self, step_id: str) -> int | None: ...
    def part_step_id(self, nonce: bytes, part: int, count: int) -> str: ...
    def part_of(self, step_id: str) -> tuple[bytes, int, int] | None: ...
    def thread_id(self, key: str, generation: int) -> str: ...

@final
class NativeChatLog:
    """A namespace's chat logs (the LlamaIndex chat stores' engine); with ``asynchronous=True`` a method
    returns an awaitable. Messages are (id, status, the JSON of the message's model_dump)."""

    def __new__(
        cls,
        client: NativeClient,
        namespace: str,
        *,
        max_staleness: float,
        snapshot_every: int,
        max_steps_per_session: int,
        max_step_bytes: int,
        idle_timeout: float,
        clock: ManualClock | None = None,
    ) -> NativeChatLog: ...
    def read(
        self, key: str, status: str | None = None, offset: int | None = None, limit: int | None = None,
        *, asynchronous: bool = False,
    ) -> Any: ...
    def count(self, key: str, status: str | None = None, *, asynchronous: bool = False) -> Any: ...
    def session_of(self, key: str) -> str | None: ...
    def keys(self, present: bool, *, asynchronous: bool = False) -> Any: ...
    def add(
        self, key: str, messages: list[str], status: str, position: int | None = None, *, asynchronous: bool = False
    ) -> Any: ...
    def set(self, key: str, messages: list[str], status: str, *, asynchronous: bool = False) -> Any: ...
    def remove(
        self, key: str, *, id: int | None = None, position: int | None = None, status: str | None = None,
        oldest: int | None = None, one: bool = False, asynchronous: bool = False,
    ) -> Any: ...
    def clear(self, key: str, *, asynchronous: bool = False) -> Any: ...
    def archive(self, key: str, n: int, *, asynchronous: bool = False) -> Any: ...
    def forget(self, key: str | None = None) -> None: ...

@final
class NativeWorkflowLog:
    """A namespace's saved workflow contexts (the SessionWorkflowStore's engine)."""

    def __new__(
        cls, client: NativeClient, namespace: str, *, max_step_bytes: int, clock: ManualClock | None = None
    ) -> NativeWorkflowLog: ...
    def save(self, key: str, run_id: str, data: str | None, *, asynchronous: bool = False) -> Any: ...
    def load(self, key: str, run_id: str, *, asynchronous: bool = False) -> Any: ...
