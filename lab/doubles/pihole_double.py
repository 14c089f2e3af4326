"""Pi-hole v6 API double (a stand-in, not Pi-hole): session login/logout with a limited number of
seats (429 when none is free), ``X-FTL-SID``, and the local DNS records under
``/api/config/dns/hosts``; a plain web root on ``/`` and ``/admin/`` for health checks.

Run: ``FTLCONF_webserver_api_password=… python3 -m lab.doubles.pihole_double --port 80`` (the same
variable the real image reads; or ``--password-file``), so the password stays off the command line.
"""

from __future__ import annotations

import argparse
import os
import secrets
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

from lab.doubles import HttpError, Reply, ServedDouble, parse_json

SESSION_VALIDITY = 1800
ADMIN_PAGE = "<html><head><title>Pi-hole (stand-in)</title></head><body>Pi-hole admin</body></html>"


def _error(status: int, key: str, message: str, hint: str | None = None) -> HttpError:
    return HttpError(status, {"error": {"key": key, "message": message, "hint": hint}, "took": 0.0001})


class PiholeDouble:
    """The Pi-hole FTL API as a plain Python object; ``__call__`` is the HTTP app."""

    def __init__(self, password: str, *, max_sessions: int = 16) -> None:
        self._password = password
        self.max_sessions = max_sessions
        self.sessions: dict[str, str] = {}  # sid -> csrf
        self.hosts: list[str] = []
        self.logins = 0
        self.logouts = 0
        self.lock = threading.Lock()

    def _login(self, body: Any) -> Reply:
        if not isinstance(body, dict) or body.get("password") != self._password:
            session = {
                "valid": False,
                "totp": False,
                "sid": None,
                "validity": -1,
                "message": "password incorrect",
            }
            raise HttpError(401, {"session": session, "took": 0.0001})
        if len(self.sessions) >= self.max_sessions:
            raise _error(
                429, "api_seats_exceeded", "API seats exceeded", "increase webserver.api.max_sessions"
            )
        sid, csrf = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self.sessions[sid] = csrf
        self.logins += 1
        session = {
            "valid": True,
            "totp": False,
            "sid": sid,
            "csrf": csrf,
            "validity": SESSION_VALIDITY,
            "message": "password correct",
        }
        return 200, {"session": session, "took": 0.0001}, {}

    def _session(self, headers: dict[str, str]) -> str:
        sid = headers.get("x-ftl-sid", "")
        if sid not in self.sessions:
            raise _error(401, "unauthorized", "Unauthorized")
        return sid

    def _hosts(self, method: str, item: str) -> Reply:
        if not item:
            if method != "GET":
                raise _error(400, "bad_request", "Invalid request")
            return 200, {"config": {"dns": {"hosts": list(self.hosts)}}, "took": 0.0001}, {}
        entry = " ".join(unquote(item).split())
        if method == "PUT":
            if len(entry.split(" ")) < 2:
                raise _error(400, "bad_request", "Invalid value", 'expected "IP HOSTNAME"')
            if entry in self.hosts:
                raise _error(400, "bad_request", "Item already present", "Uniqueness of items is enforced")
            self.hosts.append(entry)
            return 201, {"config": {"dns": {"hosts": list(self.hosts)}}, "took": 0.0001}, {}
        if method == "DELETE":
            if entry not in self.hosts:
                raise _error(404, "not_found", "Item not found")
            self.hosts.remove(entry)
            return 204, None, {}
        raise _error(400, "bad_request", "Invalid request")

    def __call__(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        route = urlsplit(path).path
        with self.lock:
            if method == "GET" and route in ("/", "/admin", "/admin/"):
                return 200, ADMIN_PAGE, {}
            if route == "/api/auth":
                if method == "POST":
                    return self._login(parse_json(raw))
                if method == "DELETE":
                    del self.sessions[self._session(headers)]
                    self.logouts += 1
                    return 204, None, {}
            prefix = "/api/config/dns/hosts"
            if route == prefix or route.startswith(prefix + "/"):
                self._session(headers)
                return self._hosts(method, route[len(prefix) + 1 :])
            raise _error(404, "not_found", "Not found")


def serve(double: PiholeDouble, host: str = "127.0.0.1", port: int = 0) -> ServedDouble:
    """Serve ``double`` over HTTP (not started: call ``.start()`` or use it as a context manager)."""
    return ServedDouble(double, host, port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Pi-hole v6 API stand-in (test double)")
    parser.add_argument("--bind", default="0.0.0.0")  # noqa: S104 - runs inside a lab container
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument(
        "--password-file", help="file holding the API password (else $FTLCONF_webserver_api_password)"
    )
    parser.add_argument("--max-sessions", type=int, default=16)
    args = parser.parse_args(argv)
    password = _read_password(args.password_file)
    serve(PiholeDouble(password, max_sessions=args.max_sessions), args.bind, args.port).serve_forever()


def _read_password(path: str | None) -> str:
    if path:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    return os.environ.get("FTLCONF_webserver_api_password", "")


if __name__ == "__main__":
    main()
