"""A page on another origin, in a real browser (system Chromium driven by Playwright), tries to change the local
server's sessions the ways a web page can: a `text/plain` fetch (a "simple" request the browser sends without asking),
a JSON fetch (which needs a CORS preflight), and a form posted by navigation. None changes anything."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _browser import chromium

from bedrock_sessions import SessionClient
from bedrock_sessions.server import LocalServer

ATTACK = """<!doctype html><html><body>
<form id="f" method="POST" enctype="text/plain" action="{server}/sessions/"><input name='{{"sessionMetadata":{{"x":"' value='1"}}}}'></form>
<script>
const server = "{server}", arn = "{arn}";
window.results = {{}};
async function attempt(name, url, init) {{
  try {{ const r = await fetch(url, init); window.results[name] = "answered " + r.status + " " + r.type; }}
  catch (e) {{ window.results[name] = "blocked: " + e; }}
}}
(async () => {{
  await attempt("tag as text/plain", server + "/tags/" + encodeURIComponent(arn),
                {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}},
                  body: JSON.stringify({{tags: {{pwned: "yes"}}}})}});
  await attempt("create as JSON", server + "/sessions/",
                {{method: "PUT", headers: {{"Content-Type": "application/json"}}, body: "{{}}"}});
  await attempt("end as JSON", server + "/sessions/" + encodeURIComponent(arn),
                {{method: "PATCH", headers: {{"Content-Type": "application/json"}}}});
  window.done = true;
}})();
</script></body></html>"""


@pytest.fixture
def attacker_origin() -> Iterator[Any]:
    """A web server on another port of 127.0.0.1 (another origin) serving the page it is given."""
    page: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page.get("html", b"")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield page, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_a_page_on_another_origin_changes_nothing(attacker_origin: Any) -> None:
    page_store, page_url = attacker_origin
    with LocalServer(SessionClient.memory()) as server:
        victim = server.client.create_session()
        page_store["html"] = ATTACK.format(server=server.endpoint_url, arn=victim["sessionArn"]).encode()
        with chromium() as browser:
            page = browser.new_page()
            page.goto(page_url)
            page.wait_for_function("window.done === true", timeout=15000)
            results = page.evaluate("window.results")
            # The form, posted by navigation (text/plain, no preflight): the server refuses it.
            with page.expect_navigation(timeout=15000):
                page.evaluate("document.getElementById('f').submit()")
            answer = json.loads(page.inner_text("body"))
            page.close()
        assert answer["__type"] == "UnsupportedMediaTypeException"
        # The simple request reached the server and was refused (the page cannot read the answer: opaque).
        assert results["tag as text/plain"] == "answered 0 opaque"
        # The JSON requests need a preflight the server does not grant: the browser never sends them.
        assert results["create as JSON"].startswith("blocked: TypeError"), results
        assert results["end as JSON"].startswith("blocked: TypeError"), results
        sessions = server.client.list_sessions()["sessionSummaries"]
        assert [s["sessionId"] for s in sessions] == [victim["sessionId"]]
        assert sessions[0]["sessionStatus"] == "ACTIVE"
        assert server.client.list_tags_for_resource(resourceArn=victim["sessionArn"])["tags"] == {}
        assert server.client.get_session(sessionIdentifier=victim["sessionId"])["sessionMetadata"] == {}
