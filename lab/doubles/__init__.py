"""Stand-in HTTP services for tests and the lab: NGINX Proxy Manager and Pi-hole v6 API doubles.

Standard library only, so the same modules run inside the lab's stand-in containers
(``python3 -m lab.doubles.npm_double --port 81``) and in a thread from the unit tests (port 0).
These are stand-ins, not the real services: they replay the behaviour recorded in
``shared/reference/npm-recorded/`` and documented for Pi-hole v6.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# An app answers (method, raw path with query, lower-cased headers, raw body) with
# (status, body, extra headers). A ``str`` body is sent as text/html, anything else as JSON;
# ``None`` sends no body.
Reply = tuple[int, Any, dict[str, str]]
App = Callable[[str, str, dict[str, str], bytes], Reply]


class HttpError(Exception):
    """Raised inside a double's handler to answer with an error status and body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _make_handler(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                status, body, extra = app(self.command, self.path, headers, raw)
            except HttpError as exc:
                status, body, extra = exc.status, exc.body, exc.headers
            self._send(status, body, extra)

        def _send(self, status: int, body: Any, extra: dict[str, str]) -> None:
            if body is None:
                payload, ctype = b"", "application/json"
            elif isinstance(body, str):
                payload, ctype = body.encode(), "text/html"
            else:
                payload, ctype = json.dumps(body).encode(), "application/json; charset=utf-8"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _dispatch

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            """Stay quiet: request lines would only clutter test output."""

    return Handler


class ServedDouble:
    """An app served by a threading HTTP server; ``start()`` in a thread, ``stop()`` to end it. A double
    that answers in its own way (a stream, a HEAD without a body) gives its ``handler`` instead."""

    def __init__(self, app: App | None, host: str = "127.0.0.1", port: int = 0,
                 handler: type[BaseHTTPRequestHandler] | None = None) -> None:
        if handler is None:
            assert app is not None, "an app or a handler"
            handler = _make_handler(app)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServedDouble:
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ServedDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def parse_json(raw: bytes) -> Any:
    """Decode a JSON request body; an empty body is ``None``; bad JSON raises ValueError."""
    if not raw:
        return None
    return json.loads(raw.decode())
