"""Pi-hole v6 API double (a stand-in, not Pi-hole), as strict as FTL v6.2.3 where it was recorded
(``shared/reference/pihole-recorded/``; ``tests/unit/test_pihole_replay.py`` replays those exchanges
through it): sessions with a limited number of seats (429 when none is free), ``X-FTL-SID``, the
local DNS entries under ``/api/config/dns/hosts`` and the CNAME entries under
``/api/config/dns/cnameRecords``; a plain web root on ``/`` and ``/admin/`` for health checks.

As FTL does, it stores an entry exactly as given after URL decoding (``+`` is a space, a tab stays a
tab, names keep their case), refuses two spaces, a bad address or a bad host name with 400 ``Invalid
value`` and a hint naming the problem, answers a stored entry with 201 ``{"took": …}``, and deletes
only the exact stored string (404 ``{"took": …}`` otherwise). With an empty password it behaves as
FTL without one: the login answers ``"sid": null, "message": "no password set"`` and the API needs no
session. CNAME validation and the no-password logout were not recorded: they are kept simple.

Run: ``FTLCONF_webserver_api_password=… python3 -m lab.doubles.pihole_double --port 80`` (the same
variable the real image reads; or ``--password-file``), so the password stays off the command line.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

from lab.doubles import HttpError, Reply, ServedDouble

SESSION_VALIDITY = 1800
TOOK = 0.0001
ADMIN_PAGE = "<html><head><title>Pi-hole (stand-in)</title></head><body>Pi-hole admin</body></html>"
HOSTS = "/api/config/dns/hosts"
CNAMES = "/api/config/dns/cnameRecords"
_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def _error(status: int, key: str, message: str, hint: str | None = None) -> HttpError:
    return HttpError(status, {"error": {"key": key, "message": message, "hint": hint}, "took": TOOK})


def _session_body(valid: bool, message: str, sid: str | None = None, csrf: str | None = None) -> dict:
    session: dict[str, Any] = {"valid": valid, "totp": False, "sid": sid}
    if sid is not None:
        session["csrf"] = csrf
    session["validity"] = SESSION_VALIDITY if sid is not None else -1
    session["message"] = message
    return {"session": session, "took": TOOK}


def _valid_hostname(name: str) -> bool:
    name = name[:-1] if name.endswith(".") else name
    return 0 < len(name) <= 253 and all(_LABEL.match(label) for label in name.split("."))


@dataclass
class Session:
    id: int
    csrf: str
    login_at: int
    user_agent: str


class PiholeDouble:
    """The Pi-hole FTL API as a plain Python object; ``__call__`` is the HTTP app. An empty
    ``password`` is a Pi-hole without one."""

    def __init__(self, password: str, *, max_sessions: int = 16) -> None:
        self._password = password
        self.max_sessions = max_sessions
        self.sessions: dict[str, Session] = {}  # sid -> session
        self.hosts: list[str] = []
        self.cname_records: list[str] = []
        self.logins = 0
        self.logouts = 0
        self._next_id = 0
        self.lock = threading.Lock()

    # --- sessions -------------------------------------------------------------------------------

    def _login(self, raw: bytes, headers: dict[str, str]) -> Reply:
        if not self._password:
            return 200, _session_body(True, "no password set"), {}
        if not raw:
            raise _error(400, "bad_request", "No request body data")
        try:
            body = json.loads(raw.decode())
        except ValueError:
            raise _error(400, "bad_request", "Invalid request body data (no valid JSON)") from None
        if not isinstance(body, dict) or body.get("password") != self._password:
            raise HttpError(401, _session_body(False, "password incorrect"))
        if len(self.sessions) >= self.max_sessions:
            raise _error(
                429, "api_seats_exceeded", "API seats exceeded", "increase webserver.api.max_sessions"
            )
        sid, csrf = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self.sessions[sid] = Session(self._next_id, csrf, int(time.time()), headers.get("user-agent", ""))
        self._next_id += 1
        self.logins += 1
        return 200, _session_body(True, "password correct", sid, csrf), {}

    @staticmethod
    def _sid(path: str, headers: dict[str, str]) -> str:
        sid = headers.get("x-ftl-sid", "")
        if not sid:
            sid = (parse_qs(urlsplit(path).query).get("sid") or [""])[0]
        return sid

    def _auth_status(self, sid: str) -> Reply:
        if not self._password:
            return 200, _session_body(True, "no password set"), {}
        if not sid:
            raise HttpError(401, _session_body(False, "no SID provided"))
        if sid not in self.sessions:
            raise HttpError(401, _session_body(False, "session unknown"))
        return 200, _session_body(True, "correct password", sid, self.sessions[sid].csrf), {}

    def _logout(self, sid: str) -> Reply:
        if not sid:
            raise HttpError(401, _session_body(False, "no SID provided"))
        if sid not in self.sessions:
            raise HttpError(401, _session_body(False, "session unknown"))
        del self.sessions[sid]
        self.logouts += 1
        return 204, None, {}

    def _require(self, sid: str) -> None:
        if self._password and sid not in self.sessions:
            raise _error(401, "unauthorized", "Unauthorized")

    def _session_list(self, sid: str) -> Reply:
        now = int(time.time())
        listed = [
            {
                "id": session.id,
                "current_session": key == sid,
                "valid": True,
                "tls": {"login": False, "mixed": False},
                "login_at": session.login_at,
                "last_active": now,
                "valid_until": now + SESSION_VALIDITY,
                "remote_addr": "127.0.0.1",
                "user_agent": session.user_agent,
                "x_forwarded_for": None,
                "app": False,
                "cli": False,
            }
            for key, session in self.sessions.items()
        ]
        return 200, {"sessions": listed, "took": TOOK}, {}

    # --- dns.hosts and dns.cnameRecords -----------------------------------------------------------

    def _check_host(self, entry: str) -> None:
        index = len(self.hosts)
        parts = re.split(r"[ \t]", entry)
        if len(parts) < 2 or parts[1] == "":
            raise _error(
                400, "bad_request", "Invalid value",
                f'dns.hosts[{index}]: entry does not have at least one hostname ("{entry}")',
            )
        try:
            ipaddress.ip_address(parts[0])
        except ValueError:
            raise _error(
                400, "bad_request", "Invalid value",
                f'dns.hosts[{index}]: neither a valid IPv4 nor IPv6 address ("{parts[0]}")',
            ) from None
        for name in (part for part in parts[1:] if part):
            if not _valid_hostname(name):
                raise _error(
                    400, "bad_request", "Invalid value", f'dns.hosts[{index}]: invalid hostname ("{name}")'
                )

    def _check_cname(self, entry: str) -> None:
        parts = [part.strip() for part in entry.split(",")]
        if parts and parts[-1].isdigit():
            parts = parts[:-1]
        if len(parts) < 2 or not all(_valid_hostname(part) for part in parts):
            raise _error(
                400, "bad_request", "Invalid value",
                f'dns.cnameRecords[{len(self.cname_records)}]: not a valid CNAME definition ("{entry}")',
            )

    def _items(self, items: list[str], key: str, method: str, item: str) -> Reply:
        if not item:
            if method == "GET":
                return 200, {"config": {"dns": {key: list(items)}}, "took": TOOK}, {}
            raise HttpError(404, {"took": TOOK})
        entry = unquote_plus(item)  # FTL decodes "+" as a space
        if method == "PUT":
            (self._check_host if key == "hosts" else self._check_cname)(entry)
            if entry in items:
                raise _error(400, "bad_request", "Item already present", "Uniqueness of items is enforced")
            items.append(entry)
            return 201, {"took": TOOK}, {}
        if method == "DELETE":
            if entry not in items:  # byte for byte: no case folding, no whitespace folding
                raise HttpError(404, {"took": TOOK})
            items.remove(entry)
            return 204, None, {}
        raise _error(400, "bad_request", "Invalid request")

    def __call__(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        route = urlsplit(path).path
        sid = self._sid(path, headers)
        with self.lock:
            if method == "GET" and route in ("/", "/admin", "/admin/"):
                return 200, ADMIN_PAGE, {}
            if route == "/api/auth":
                if method == "POST":
                    return self._login(raw, headers)
                if method == "GET":
                    return self._auth_status(sid)
                if method == "DELETE":
                    return self._logout(sid)
            if route == "/api/auth/sessions" and method == "GET":
                self._require(sid)
                return self._session_list(sid)
            lists = ((HOSTS, self.hosts, "hosts"), (CNAMES, self.cname_records, "cnameRecords"))
            for prefix, items, key in lists:
                if route == prefix or route.startswith(prefix + "/"):
                    self._require(sid)
                    return self._items(items, key, method, route[len(prefix) + 1 :])
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
