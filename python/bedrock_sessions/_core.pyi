"""Native core of bedrock-sessions (Rust, pyo3)."""

from collections.abc import Awaitable
from datetime import datetime
from typing import Any, final


__all__ = ["ManualClock", "NativeClient", "OPERATIONS", "SCHEMA_VERSION", "__version__"]

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
    ) -> NativeClient: ...
    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]: ...
    def call_async(self, operation: str, params: dict[str, Any]) -> Awaitable[dict[str, Any]]: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def path(self) -> str | None: ...
    @property
    def region(self) -> str: ...
    @property
    def account_id(self) -> str: ...
