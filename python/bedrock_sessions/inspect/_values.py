"""Stored values as a person reads them: JSON-able data, with messages as role and content."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import uuid
from typing import Any

_MAX_DEPTH = 40


def message(m: Any) -> dict[str, Any]:
    """A LangChain message: its role and content, and what else it carries (tool calls, names, ids)."""
    out: dict[str, Any] = {"role": getattr(m, "type", type(m).__name__), "content": plain(getattr(m, "content", ""))}
    for name in ("name", "tool_calls", "tool_call_id", "id"):
        v = getattr(m, name, None)
        if v:
            out[name] = plain(v)
    return out


def is_message(v: Any) -> bool:
    cls = type(v)
    return any(c.__name__ == "BaseMessage" and c.__module__.startswith("langchain_core") for c in cls.__mro__)


def plain(v: Any, depth: int = 0) -> Any:
    """``v`` as JSON-able data (a repr where nothing better exists)."""
    if depth > _MAX_DEPTH:
        return repr(v)
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else repr(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, (uuid.UUID,)):
        return str(v)
    if isinstance(v, enum.Enum):
        return plain(v.value, depth + 1)
    if is_message(v):
        return message(v)
    if isinstance(v, dict):
        return {str(k): plain(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        items = sorted(v, key=repr) if isinstance(v, (set, frozenset)) else v
        return [plain(x, depth + 1) for x in items]
    if type(v).__name__ == "Interrupt" and hasattr(v, "value"):
        return {"interrupt": plain(v.value, depth + 1), "id": getattr(v, "id", None)}
    if hasattr(v, "model_dump"):
        try:
            return plain(v.model_dump(mode="json"), depth + 1)
        except Exception:  # noqa: BLE001 - fall back to the repr below
            pass
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: plain(getattr(v, f.name), depth + 1) for f in dataclasses.fields(v)}
    return repr(v)
