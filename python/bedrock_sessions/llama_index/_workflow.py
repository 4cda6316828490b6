"""Paused LlamaIndex workflows, saved per key and run (the engine: ``src/llama/workflow.rs``)."""

from __future__ import annotations

import json
import os
from typing import Any, Union

from .. import _core, _doors
from .._telemetry import traced
from ..client import SessionClient
from ._common import DEFAULT_MAX_STEP_BYTES, native_of


def _context_types() -> tuple[Any, Any]:
    from workflows import Context
    from workflows.context.serializers import JsonSerializer

    return Context, JsonSerializer


def _on_run(self: Any, key: str, run_id: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The attributes of a method's span (``bedrock_sessions._telemetry``)."""
    return {"key": key, "run_id": run_id, "namespace": self._namespace}


class SessionWorkflowStore:
    """Saves and restores paused LlamaIndex workflows (human in the loop) per key and run, so a run paused in one
    process resumes in another: ``ctx.to_dict(serializer=JsonSerializer())`` is stored in the key's session
    (an invocation per run), and ``Context.from_dict(workflow, data, serializer=...)`` rebuilds it.

    >>> store = SessionWorkflowStore.local("state.db")
    >>> store.save("ana", "order-7", handler.ctx)                 # when the workflow waits for a human
    >>> ctx = store.load("ana", "order-7", workflow)              # in another process, later
    >>> handler = workflow.run(ctx=ctx); handler.ctx.send_event(HumanResponseEvent(response="yes"))

    A key's workflow sessions are kept apart from its chat log's (thread ids of their own), and move to a new
    session when one expires (an idle hour on Bedrock) or fills up; a load searches them newest first.
    """

    def __init__(
        self,
        client: Any,
        *,
        namespace: str = "default",
        max_step_bytes: int = DEFAULT_MAX_STEP_BYTES,
        clock: Any = None,
    ) -> None:
        native = native_of(client)
        self._native_client = native
        self._door = _doors.door_of(native)
        self._namespace = namespace
        self._log = _core.NativeWorkflowLog(native, namespace, max_step_bytes=max_step_bytes, clock=clock)

    @classmethod
    def local(cls, path: Union[str, os.PathLike[str]], *, namespace: str = "default", **options: Any) -> SessionWorkflowStore:
        clock = options.get("clock")
        return cls(SessionClient.local(path, **options), namespace=namespace, clock=clock)

    @classmethod
    def memory(cls, *, namespace: str = "default", **options: Any) -> SessionWorkflowStore:
        clock = options.get("clock")
        return cls(SessionClient.memory(**options), namespace=namespace, clock=clock)

    @classmethod
    def bedrock(cls, *, namespace: str = "default", **kwargs: Any) -> SessionWorkflowStore:
        return cls(SessionClient.bedrock(**kwargs), namespace=namespace)

    @staticmethod
    def _data(ctx: Any, serializer: Any) -> str:
        if isinstance(ctx, dict):
            data = ctx
        else:
            _, JsonSerializer = _context_types()
            data = ctx.to_dict(serializer=serializer or JsonSerializer())
        # Must be JSON: fail here rather than half-way through a save.
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    def _context(self, data: str | None, workflow: Any, serializer: Any) -> Any:
        if data is None:
            return None
        Context, JsonSerializer = _context_types()
        return Context.from_dict(workflow, json.loads(data), serializer=serializer or JsonSerializer())

    # ------------------------------------------------------------------ sync
    @traced(_on_run)
    def save(self, key: str, run_id: str, ctx: Any, *, serializer: Any = None) -> None:
        """Stores the context (a ``Context``, or the dict of ``ctx.to_dict()``) as the run's newest save."""
        self._log.save(key, run_id, self._data(ctx, serializer))

    @traced(_on_run)
    def load_dict(self, key: str, run_id: str) -> dict[str, Any] | None:
        """The run's newest save (the dict of ``ctx.to_dict()``), or None."""
        data = self._log.load(key, run_id)
        return None if data is None else json.loads(data)  # type: ignore[no-any-return]

    @traced(_on_run)
    def load(self, key: str, run_id: str, workflow: Any, *, serializer: Any = None) -> Any:
        """The run's newest save as a ``Context`` of ``workflow`` (``workflow.run(ctx=...)`` resumes it), or None."""
        return self._context(self._log.load(key, run_id), workflow, serializer)

    @traced(_on_run)
    def delete(self, key: str, run_id: str) -> None:
        """Forgets the run (a tombstone save: ``load`` returns None)."""
        self._log.save(key, run_id, None)

    # ------------------------------------------------------------------ async
    @traced(_on_run)
    async def asave(self, key: str, run_id: str, ctx: Any, *, serializer: Any = None) -> None:
        await _doors.run(self._door, False, self._log.save, key, run_id, self._data(ctx, serializer))

    @traced(_on_run)
    async def aload_dict(self, key: str, run_id: str) -> dict[str, Any] | None:
        data = await _doors.run(self._door, True, self._log.load, key, run_id)
        return None if data is None else json.loads(data)  # type: ignore[no-any-return]

    @traced(_on_run)
    async def aload(self, key: str, run_id: str, workflow: Any, *, serializer: Any = None) -> Any:
        return self._context(await _doors.run(self._door, True, self._log.load, key, run_id), workflow, serializer)

    @traced(_on_run)
    async def adelete(self, key: str, run_id: str) -> None:
        await _doors.run(self._door, False, self._log.save, key, run_id, None)
