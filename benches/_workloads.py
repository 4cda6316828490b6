"""The workloads: each has a sync and an async form, a warm-up (run before the measured section, on another
thread), the measured section itself, and a cheap correctness check run after it."""

from __future__ import annotations

import hashlib
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint

import _graphs as G
from _harness import Env, Fixture, new_thread_for


class CheckFailed(AssertionError):
    pass


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(what)


def _cfg(thread_id: str, checkpoint_id: str | None = None) -> RunnableConfig:
    conf: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id:
        conf["checkpoint_id"] = checkpoint_id
    return cast(RunnableConfig, {"configurable": conf})


class Workload:
    key = ""
    title = ""
    unit = ""
    fixture_thread: str | None = None  # reads a thread of the shared fixture
    passes: tuple[str, ...] | None = None  # None: every pass of the saver's group

    def __init__(self, n: int) -> None:
        self.n = n  # units measured

    # sync ----------------------------------------------------------------
    def prepare(self, env: Env) -> dict[str, Any]:
        raise NotImplementedError

    def run(self, env: Env, ctx: dict[str, Any]) -> Any:
        raise NotImplementedError

    def verify(self, env: Env, ctx: dict[str, Any], raw: Any) -> str:
        raise NotImplementedError

    # async ---------------------------------------------------------------
    async def aprepare(self, env: Env) -> dict[str, Any]:
        raise NotImplementedError

    async def arun(self, env: Env, ctx: dict[str, Any]) -> Any:
        raise NotImplementedError

    async def averify(self, env: Env, ctx: dict[str, Any], raw: Any) -> str:
        raise NotImplementedError

    def threads(self, ctx: dict[str, Any]) -> list[str]:
        return [ctx["thread"]]


# --------------------------------------------------------------------------- graphs, N turns
class GraphTurns(Workload):
    WARMUP_TURNS = 2

    def graph(self) -> Any:
        raise NotImplementedError

    def inputs(self, i: int) -> dict[str, Any]:
        raise NotImplementedError

    def expected(self) -> dict[str, Any]:
        raise NotImplementedError

    def normalize(self, values: dict[str, Any]) -> dict[str, Any]:
        return dict(values)

    def prepare(self, env: Env) -> dict[str, Any]:
        app = self.graph().compile(checkpointer=env.saver)
        warm = _cfg(env.new_thread())
        for i in range(self.WARMUP_TURNS):
            app.invoke(self.inputs(i), warm)
        thread = env.new_thread()
        return {"app": app, "thread": thread, "cfg": _cfg(thread)}

    async def aprepare(self, env: Env) -> dict[str, Any]:
        app = self.graph().compile(checkpointer=env.saver)
        warm = _cfg(env.new_thread())
        for i in range(self.WARMUP_TURNS):
            await app.ainvoke(self.inputs(i), warm)
        thread = env.new_thread()
        return {"app": app, "thread": thread, "cfg": _cfg(thread)}

    def run(self, env: Env, ctx: dict[str, Any]) -> Any:
        app, cfg = ctx["app"], ctx["cfg"]
        out = None
        for i in range(self.n):
            out = app.invoke(self.inputs(i), cfg)
        return out

    async def arun(self, env: Env, ctx: dict[str, Any]) -> Any:
        app, cfg = ctx["app"], ctx["cfg"]
        out = None
        for i in range(self.n):
            out = await app.ainvoke(self.inputs(i), cfg)
        return out

    def _compare(self, returned: Any, stored: Any) -> str:
        expected = self.normalize(self.expected())
        _check(self.normalize(returned) == expected, "the last turn's returned state differs from the expected state")
        _check(self.normalize(stored) == expected, "the state read back (get_state) differs from the expected state")
        return G.digest(expected)

    def verify(self, env: Env, ctx: dict[str, Any], raw: Any) -> str:
        return self._compare(raw, ctx["app"].get_state(ctx["cfg"]).values)

    async def averify(self, env: Env, ctx: dict[str, Any], raw: Any) -> str:
        return self._compare(raw, (await ctx["app"].aget_state(ctx["cfg"])).values)


class LinearGraph(GraphTurns):
    key = "linear"
    unit = "turn"

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"3-node graph, {self.n} turns"

    def graph(self) -> Any:
        return G.linear_graph()

    def inputs(self, i: int) -> dict[str, Any]:
        return G.linear_input(i)

    def expected(self) -> dict[str, Any]:
        return G.linear_expected(self.n)


class FanoutGraph(GraphTurns):
    key = "fanout"
    unit = "turn"

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"fan-out {G.FANOUT} Send, {self.n} turns"

    def graph(self) -> Any:
        return G.fanout_graph()

    def inputs(self, i: int) -> dict[str, Any]:
        return dict(G.FANOUT_INPUT)

    def expected(self) -> dict[str, Any]:
        return G.fanout_expected(self.n)

    def normalize(self, values: dict[str, Any]) -> dict[str, Any]:
        return G.normalize_fanout(values)


# --------------------------------------------------------------------------- reads of the shared fixture
def build_fixture(fixture: Fixture, sizes: dict[str, int]) -> None:
    """Runs the linear graph on fresh threads until each holds ``sizes[name]`` checkpoints (5 per turn)."""
    saver = fixture.builder()
    try:
        app = G.linear_graph().compile(checkpointer=saver)
        for name, checkpoints in sizes.items():
            turns = checkpoints // G.CHECKPOINTS_PER_LINEAR_TURN
            thread = new_thread_for(fixture.kind, saver, fixture.store)
            cfg = _cfg(thread)
            for i in range(turns):
                app.invoke(G.linear_input(i), cfg)
            latest = app.get_state(cfg).config["configurable"]["checkpoint_id"]
            fixture.threads[name] = {"id": thread, "checkpoints": turns * G.CHECKPOINTS_PER_LINEAR_TURN,
                                     "turns": turns, "latest_id": latest}
    finally:
        fixture.done_building(saver)


class History(Workload):
    key = "history"
    unit = "checkpoint"

    def __init__(self, n: int, thread: str) -> None:
        super().__init__(n)
        self.fixture_thread = thread
        self.key = f"history{n}"

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"get_state_history, {self.n} checkpoints"

    def _ctx(self, env: Env) -> dict[str, Any]:
        assert env.fixture is not None
        info = env.fixture.threads[self.fixture_thread or ""]
        app = G.linear_graph().compile(checkpointer=env.saver)
        return {"app": app, "thread": info["id"], "cfg": _cfg(info["id"]),
                "warm": _cfg(env.fixture.threads["warm"]["id"]), "info": info}

    @staticmethod
    def _fold(h: Any, snap: Any) -> None:
        md = snap.metadata or {}
        h.update(repr((snap.values, md.get("step"), md.get("source"), snap.next)).encode())

    def prepare(self, env: Env) -> dict[str, Any]:
        ctx = self._ctx(env)
        for _ in ctx["app"].get_state_history(ctx["warm"]):
            pass
        return ctx

    async def aprepare(self, env: Env) -> dict[str, Any]:
        ctx = self._ctx(env)
        async for _ in ctx["app"].aget_state_history(ctx["warm"]):
            pass
        return ctx

    def run(self, env: Env, ctx: dict[str, Any]) -> Any:
        # One snapshot at a time, nothing kept: a streaming listing's peak memory does not grow with the thread.
        count, h = 0, hashlib.sha256()
        for snap in ctx["app"].get_state_history(ctx["cfg"]):
            count += 1
            self._fold(h, snap)
            del snap
        return count, h.hexdigest()[:16]

    async def arun(self, env: Env, ctx: dict[str, Any]) -> Any:
        count, h = 0, hashlib.sha256()
        async for snap in ctx["app"].aget_state_history(ctx["cfg"]):
            count += 1
            self._fold(h, snap)
            del snap
        return count, h.hexdigest()[:16]

    def verify(self, env: Env, ctx: dict[str, Any], raw: Any) -> str:
        count, dig = raw
        _check(count == ctx["info"]["checkpoints"], f"history yielded {count} checkpoints, expected {ctx['info']['checkpoints']}")
        return dig

    async def averify(self, env: Env, ctx: dict[str, Any], raw: Any) -> str:
        return self.verify(env, ctx, raw)


class GetTupleLatest(Workload):
    key = "get_tuple"
    unit = "call"

    def __init__(self, n: int, thread: str, checkpoints: int) -> None:
        super().__init__(n)
        self.fixture_thread = thread
        self.checkpoints = checkpoints

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"get_tuple latest x{self.n}, {self.checkpoints}-checkpoint thread"

    def _ctx(self, env: Env) -> dict[str, Any]:
        assert env.fixture is not None
        info = env.fixture.threads[self.fixture_thread or ""]
        return {"thread": info["id"], "cfg": _cfg(info["id"]), "warm": _cfg(env.fixture.threads["warm"]["id"]),
                "info": info}

    def prepare(self, env: Env) -> dict[str, Any]:
        ctx = self._ctx(env)
        env.saver.get_tuple(ctx["warm"])
        return ctx

    async def aprepare(self, env: Env) -> dict[str, Any]:
        ctx = self._ctx(env)
        await env.saver.aget_tuple(ctx["warm"])
        return ctx

    def run(self, env: Env, ctx: dict[str, Any]) -> Any:
        tup = None
        for _ in range(self.n):
            tup = env.saver.get_tuple(ctx["cfg"])
        return tup

    async def arun(self, env: Env, ctx: dict[str, Any]) -> Any:
        tup = None
        for _ in range(self.n):
            tup = await env.saver.aget_tuple(ctx["cfg"])
        return tup

    def verify(self, env: Env, ctx: dict[str, Any], raw: Any) -> str:
        _check(raw is not None, "get_tuple found no checkpoint")
        _check(raw.config["configurable"]["checkpoint_id"] == ctx["info"]["latest_id"], "get_tuple is not the latest checkpoint")
        expected = G.linear_expected(ctx["info"]["turns"])
        values = raw.checkpoint["channel_values"]
        _check({k: values.get(k) for k in expected} == expected, "the latest checkpoint's values differ")
        return G.digest(expected)

    async def averify(self, env: Env, ctx: dict[str, Any], raw: Any) -> str:
        return self.verify(env, ctx, raw)


# --------------------------------------------------------------------------- large puts
class PutLarge(Workload):
    unit = "put"

    def __init__(self, n: int, megabytes: float) -> None:
        super().__init__(n)
        self.mb = megabytes
        self.key = f"put{megabytes:g}MB"

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"put of a {self.mb:g} MB state x{self.n}"

    def _docs(self) -> list[list[str]]:
        return [G.big_docs(self.mb, seed=1000 + r) for r in range(self.n)]

    @staticmethod
    def _checkpoint(saver: Any, docs: list[str], prev_version: Any) -> tuple[Any, Any]:
        cp = empty_checkpoint()
        v = saver.get_next_version(prev_version, None)
        cp["channel_values"] = {"docs": docs}
        cp["channel_versions"] = {"docs": v}
        cp["updated_channels"] = ["docs"]
        return cp, v

    def prepare(self, env: Env) -> dict[str, Any]:
        warm = env.new_thread()
        cp, v = self._checkpoint(env.saver, G.big_docs(min(self.mb, 1.0), seed=7), None)
        env.saver.put(_cfg(warm), cp, {"source": "update", "step": 0, "parents": {}}, {"docs": v})
        return {"thread": env.new_thread(), "docs": self._docs()}

    async def aprepare(self, env: Env) -> dict[str, Any]:
        warm = env.new_thread()
        cp, v = self._checkpoint(env.saver, G.big_docs(min(self.mb, 1.0), seed=7), None)
        await env.saver.aput(_cfg(warm), cp, {"source": "update", "step": 0, "parents": {}}, {"docs": v})
        return {"thread": env.new_thread(), "docs": self._docs()}

    def run(self, env: Env, ctx: dict[str, Any]) -> Any:
        parent, version = None, None
        for r, docs in enumerate(ctx["docs"]):
            cp, version = self._checkpoint(env.saver, docs, version)
            env.saver.put(_cfg(ctx["thread"], parent), cp, {"source": "update", "step": r, "parents": {}}, {"docs": version})
            parent = cp["id"]
        return parent

    async def arun(self, env: Env, ctx: dict[str, Any]) -> Any:
        parent, version = None, None
        for r, docs in enumerate(ctx["docs"]):
            cp, version = self._checkpoint(env.saver, docs, version)
            await env.saver.aput(_cfg(ctx["thread"], parent), cp, {"source": "update", "step": r, "parents": {}},
                                 {"docs": version})
            parent = cp["id"]
        return parent

    def _compare(self, ctx: dict[str, Any], raw: Any, tup: Any) -> str:
        _check(tup is not None and tup.config["configurable"]["checkpoint_id"] == raw, "get_tuple after put: not the last put")
        _check(tup.checkpoint["channel_values"].get("docs") == ctx["docs"][-1], "get_tuple after put: the state differs")
        last = ctx["docs"][-1]
        return G.digest((self.n, len(last), last[0], last[-1]))

    def verify(self, env: Env, ctx: dict[str, Any], raw: Any) -> str:
        return self._compare(ctx, raw, env.saver.get_tuple(_cfg(ctx["thread"])))

    async def averify(self, env: Env, ctx: dict[str, Any], raw: Any) -> str:
        return self._compare(ctx, raw, await env.saver.aget_tuple(_cfg(ctx["thread"])))


class ListStream(Workload):
    """``saver.list`` consumed one tuple at a time, nothing kept. (LangGraph's get_state_history cannot show
    streaming: it calls ``list(checkpointer.list(...))`` before yielding the first snapshot.)"""

    unit = "checkpoint"
    passes = ("memory",)  # the streaming check; the time of a listing is in the history rows

    def __init__(self, n: int, thread: str) -> None:
        super().__init__(n)
        self.fixture_thread = thread
        self.key = f"list{n}"

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"saver.list streamed, {self.n} checkpoints"

    def _ctx(self, env: Env) -> dict[str, Any]:
        assert env.fixture is not None
        info = env.fixture.threads[self.fixture_thread or ""]
        return {"thread": info["id"], "cfg": _cfg(info["id"]), "warm": _cfg(env.fixture.threads["warm"]["id"]),
                "info": info}

    @staticmethod
    def _fold(h: Any, tup: Any) -> None:
        values = tup.checkpoint.get("channel_values", {})
        md = tup.metadata or {}
        h.update(repr(({k: values.get(k) for k in ("turn", "messages")}, md.get("step"), md.get("source"))).encode())

    def prepare(self, env: Env) -> dict[str, Any]:
        ctx = self._ctx(env)
        for _ in env.saver.list(ctx["warm"]):
            pass
        return ctx

    async def aprepare(self, env: Env) -> dict[str, Any]:
        ctx = self._ctx(env)
        async for _ in env.saver.alist(ctx["warm"]):
            pass
        return ctx

    def run(self, env: Env, ctx: dict[str, Any]) -> Any:
        count, h = 0, hashlib.sha256()
        for tup in env.saver.list(ctx["cfg"]):
            count += 1
            self._fold(h, tup)
            del tup
        return count, h.hexdigest()[:16]

    async def arun(self, env: Env, ctx: dict[str, Any]) -> Any:
        count, h = 0, hashlib.sha256()
        async for tup in env.saver.alist(ctx["cfg"]):
            count += 1
            self._fold(h, tup)
            del tup
        return count, h.hexdigest()[:16]

    def verify(self, env: Env, ctx: dict[str, Any], raw: Any) -> str:
        count, dig = raw
        _check(count == ctx["info"]["checkpoints"], f"list yielded {count} checkpoints, expected {ctx['info']['checkpoints']}")
        return dig

    async def averify(self, env: Env, ctx: dict[str, Any], raw: Any) -> str:
        return self.verify(env, ctx, raw)
