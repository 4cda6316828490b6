"""Optional OpenTelemetry spans around the saver's and the LlamaIndex stores' public methods.

:func:`traced` decorates a method (sync, async, generator or async generator alike) with a span named after it
(``BedrockSessionSaver.put``), from the tracer ``bedrock_sessions``, carrying the attributes its ``attributes``
function reads from the call's arguments; an exception raised through the span is recorded on it and sets its status
to ERROR. Without ``opentelemetry-api`` installed the decorator returns the method itself: nothing changes and
nothing is imported. With it, ``opentelemetry.trace`` is imported at the first traced call (not when this package is
imported), and while no tracer provider is set (the API's default proxy), or the sampler drops a span, the methods run
as they would without it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from typing import Any, TypeVar

__all__ = ["TRACER_NAME", "available", "traced"]

TRACER_NAME = "bedrock_sessions"

F = TypeVar("F", bound=Callable[..., Any])
Attributes = Callable[..., "dict[str, Any]"]


def _installed() -> bool:
    # The top-level name only: finding a submodule would import its (namespace) package.
    try:
        return find_spec("opentelemetry") is not None
    except (ImportError, ValueError):
        return False


_AVAILABLE = _installed()


def available() -> bool:
    """Whether ``opentelemetry-api`` is installed (then the decorated methods make spans)."""
    return _AVAILABLE


class _Tracer:
    """The tracer ``bedrock_sessions`` (the API's proxy until a provider is set), made at the first traced call; None
    without the API (another ``opentelemetry-*`` package alone)."""

    def __init__(self) -> None:
        self.trace: Any = None
        self._tracer: Any = None
        self._missing = False

    def get(self) -> Any:
        if self._tracer is None and not self._missing:
            try:
                from opentelemetry import trace
            except ImportError:
                self._missing = True
                return None
            from . import _core

            self.trace = trace
            self._tracer = trace.get_tracer(TRACER_NAME, _core.__version__)
        return self._tracer

    def reset(self) -> None:
        """Forgets the tracer (tests that replace the global provider)."""
        self._tracer = None


_TRACER = _Tracer()


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    """OpenTelemetry's attribute values: strings, numbers, booleans and sequences of them; None is left out."""
    out: dict[str, Any] = {}
    for k, v in attributes.items():
        if v is None:
            continue
        if isinstance(v, (list, tuple)):
            out[k] = [x if isinstance(x, (str, bool, int, float)) else str(x) for x in v]
        else:
            out[k] = v if isinstance(v, (str, bool, int, float)) else str(v)
    return out


def _start(name: str, attributes: Attributes | None, args: Any, kwargs: Any) -> Any:
    """The span of a call, or None when it would record nothing (no provider set, or not sampled): the call then
    runs as it would without this module, at the cost of asking the tracer (half a microsecond)."""
    tracer = _TRACER.get()
    if tracer is None:
        return None
    span = tracer.start_span(name)
    if not span.is_recording():
        return None
    try:
        span.set_attributes(_clean(attributes(*args, **kwargs)) if attributes is not None else {})
    except Exception:  # noqa: BLE001 - the call itself reports bad arguments; its span just has fewer attributes
        pass
    return span


@contextmanager
def _span(span: Any, current: bool) -> Iterator[None]:
    """Runs a call in its span and ends it; an exception is recorded and sets the status to ERROR. The span is the
    current one while a function or coroutine runs; a generator's is not made current (its consumer runs between
    its items, perhaps in another context)."""
    if current:
        with _TRACER.trace.use_span(span, end_on_exit=True, record_exception=True, set_status_on_exception=True):
            yield
        return
    try:
        yield
    except Exception as exc:  # GeneratorExit and cancellation are not failures
        trace = _TRACER.trace
        span.record_exception(exc)
        span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        span.end()


def traced(attributes: Attributes | None = None) -> Callable[[F], F]:
    """Decorates a method with a span (see the module). ``attributes`` is called with the method's arguments
    (``self`` first) and returns the span's attributes."""

    def decorate(fn: F) -> F:
        if not _AVAILABLE:
            return fn
        name = fn.__qualname__
        wrapper: Any
        if inspect.isasyncgenfunction(fn):

            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                span = _start(name, attributes, args, kwargs)
                if span is None:
                    async for item in fn(*args, **kwargs):
                        yield item
                    return
                with _span(span, current=False):
                    async for item in fn(*args, **kwargs):
                        yield item

        elif inspect.isgeneratorfunction(fn):

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                span = _start(name, attributes, args, kwargs)
                if span is None:
                    return (yield from fn(*args, **kwargs))
                with _span(span, current=False):
                    return (yield from fn(*args, **kwargs))

        elif inspect.iscoroutinefunction(fn):

            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                span = _start(name, attributes, args, kwargs)
                if span is None:
                    return await fn(*args, **kwargs)
                with _span(span, current=True):
                    return await fn(*args, **kwargs)

        else:

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                span = _start(name, attributes, args, kwargs)
                if span is None:
                    return fn(*args, **kwargs)
                with _span(span, current=True):
                    return fn(*args, **kwargs)

        return functools.wraps(fn)(wrapper)  # type: ignore[return-value]

    return decorate
