"""The web inspector: the inspector's data as a JSON API and a page that shows it (``bedrock-sessions ui``, and under
``/ui/`` of ``bedrock-sessions serve --ui``, which relays those requests here). The page's assets ship in the package (``inspect/web/``): no build step and no
network at install or run time.

API (GET, JSON): ``/api/threads``, ``/api/sessions``, ``/api/threads/<id>/history[?limit=N]``, ``/api/threads/<id>/head``,
``/api/threads/<id>/state[?checkpoint=ID]``, ``/api/threads/<id>/diff?a=ID&b=ID``, ``/api/sessions/<id>/steps``.
The page polls a thread's newest checkpoint every second while it is open, and reads its history again when that
changes (live updates).

It binds 127.0.0.1 by default and answers only requests whose ``Host`` names the address it serves (no DNS
rebinding); it only reads."""

from __future__ import annotations

import json
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ._inspector import Inspector, InspectError

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_ASSETS = ("index.html", "app.js", "app.css")


def _asset(name: str) -> bytes:
    return resources.files("bedrock_sessions.inspect").joinpath("web", name).read_bytes()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A page that navigates away mid-response closes its connection: nothing to report.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class WebInspector:
    """Serves the web inspector of ``inspector``'s store on ``host:port`` (0: a free port) in a background thread."""

    def __init__(self, inspector: Inspector, host: str = "127.0.0.1", port: int = 0) -> None:
        self.inspector = inspector
        inspector.saver  # noqa: B018 - made here, not by two requests at once
        handler = type("Handler", (_Handler,), {"app": self})
        self._httpd = _Server((host, port), handler)
        self._thread: threading.Thread | None = None

    def _address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return (host.decode() if isinstance(host, bytes) else str(host)), int(port)

    @property
    def port(self) -> int:
        return self._address()[1]

    @property
    def url(self) -> str:
        host, port = self._address()
        return f"http://{host}:{port}/"

    def allowed_hosts(self) -> set[str]:
        host, port = self._address()
        names = {host}
        if host in ("127.0.0.1", "0.0.0.0"):
            names |= {"localhost", "127.0.0.1"}
        return {f"{n}:{port}" for n in names}

    def start(self) -> WebInspector:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="bedrock-sessions-ui", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> WebInspector:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def api(self, path: list[str], query: dict[str, list[str]]) -> Any:
        q = {k: v[0] for k, v in query.items() if v}
        ins = self.inspector
        # Requests run concurrently: the store and the saver are safe to share across threads.
        match path:
            case ["threads"]:
                return ins.threads()
            case ["sessions"]:
                return ins.sessions()
            case ["threads", tid, "history"]:
                return ins.history(tid, int(q["limit"]) if q.get("limit") else None)
            case ["threads", tid, "head"]:
                return ins.head(tid)
            case ["threads", tid, "state"]:
                return ins.state(tid, q.get("checkpoint") or None)
            case ["threads", tid, "diff"]:
                if "a" not in q or "b" not in q:
                    raise InspectError("diff needs ?a=CHECKPOINT&b=CHECKPOINT")
                return ins.diff(tid, q["a"], q["b"])
            case ["sessions", sid]:
                return ins.session(sid)
            case ["sessions", sid, "steps"]:
                return ins.steps(sid, decode=True)
        raise LookupError("/".join(path))


class _Handler(BaseHTTPRequestHandler):
    app: WebInspector
    server_version = "bedrock-sessions-ui"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: the page polls every second
        pass

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value, ensure_ascii=False, default=str).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if self.headers.get("Host") not in self.app.allowed_hosts():
            self._json(HTTPStatus.FORBIDDEN, {"error": "unexpected Host header"})
            return
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        if not parts:
            self._send(HTTPStatus.OK, _asset("index.html"), _TYPES[".html"])
            return
        if parts == ["favicon.ico"]:
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            return
        if parts[0] == "static" and len(parts) == 2 and parts[1] in _ASSETS:
            self._send(HTTPStatus.OK, _asset(parts[1]), _TYPES["." + parts[1].rsplit(".", 1)[1]])
            return
        if parts[0] == "api":
            try:
                self._json(HTTPStatus.OK, self.app.api(parts[1:], parse_qs(url.query)))
            except InspectError as e:
                self._json(HTTPStatus.NOT_FOUND, {"error": str(e)})
            except LookupError as e:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such API route: {e}"})
            except Exception as e:  # noqa: BLE001 - the store's errors, shown to the page
                self._json(HTTPStatus.BAD_GATEWAY, {"error": f"{type(e).__name__}: {e}"})
            return
        self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
