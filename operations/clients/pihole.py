"""A client for the Pi-hole v6 API's local DNS records (``/api/config/dns/hosts``) and CNAME records
(``/api/config/dns/cnameRecords``), read and written as FTL stores them.

FTL keeps each entry as the exact string it was given (``"10.1.1.1 a.example.test"``, a tab stays a
tab, a name keeps its case, a line may hold several names) and deletes only that exact string: the
client hands entries back and forth verbatim and URL-encodes them whole.

Use it as a context manager: it logs in on entry and always logs out on exit, even after an error,
because Pi-hole has few API sessions (429 when none is free). A Pi-hole without a password answers
the login with a valid session and no session id: the client then calls the API without one. The
password and the session id never appear in an exception, a repr or a log line.

``wait_ready`` asks ``GET /api/auth`` without a session until FTL answers it as FTL does (401 "no SID
provided", or 200 when Pi-hole has no password): a cheap question that needs no login and uses no seat.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any
from urllib.parse import quote

import requests

from operations.clients import Secret, ServiceUnreachable, redact, reveal
from operations.progress import poll_until_ready

AUTH = "/api/auth"
HOSTS = "/api/config/dns/hosts"
CNAMES = "/api/config/dns/cnameRecords"


class PiholeError(Exception):
    """A Pi-hole API call failed; ``status`` is the HTTP status when there was an answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PiholeUnreachable(PiholeError, ServiceUnreachable):
    """No answer: nothing listens at the base URL, the connection dropped, or it timed out."""


class PiholeAuthError(PiholeError):
    """Wrong password, or the session was refused."""


class PiholeNoSessionError(PiholeError):
    """Every API session is in use (429)."""


def _message(response: requests.Response) -> str:
    """FTL's reason for a failed call: the error's message with its hint (which names the problem:
    ``dns.hosts[4]: neither a valid IPv4 nor IPv6 address ("notanip")``), or the session's message;
    empty when the body holds nothing but ``took`` (FTL's 404 for an entry it does not store)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):
            error = body["error"]
            message = str(error.get("message") or error.get("key") or "")
            hint = error.get("hint")
            return f"{message} ({hint})" if hint else message
        if isinstance(body.get("session"), dict):
            return str(body["session"].get("message", ""))
        if set(body) <= {"took"}:
            return ""
    return str(body)[:200]


def entry_path(base: str, entry: str) -> str:
    """``base/<entry>`` with the whole entry URL-encoded (a space as ``%20``, a tab as ``%09``, so FTL
    decodes exactly the stored string; a ``+`` would be read as a space)."""
    return f"{base}/{quote(entry, safe='')}"


class PiholeClient:
    """One Pi-hole, reached at ``base_url`` (``http://host:80``).

    ``setting_name`` names the setting the password comes from (``HOMELAB_PIHOLE_PASSWORD``): a refused
    password is reported naming it, never showing it.
    """

    def __init__(
        self,
        base_url: str,
        password: Secret,
        *,
        setting_name: str = "the password setting",
        timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._password = password
        self.setting_name = setting_name
        self.timeout = timeout
        self.session = session or requests.Session()
        self._sid: str | None = None
        self._open = False  # logged in to a Pi-hole without a password: no session id to send

    def __repr__(self) -> str:
        return f"PiholeClient({self.base_url!r})"

    def __enter__(self) -> PiholeClient:
        self.login()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.logout()

    @property
    def logged_in(self) -> bool:
        return self._sid is not None or self._open

    def _send(
        self, method: str, path: str, body: Any = None, timeout: float | None = None
    ) -> requests.Response:
        headers = {"X-FTL-SID": self._sid} if self._sid else {}
        try:
            return self.session.request(
                method, self.base_url + path, json=body, headers=headers, timeout=timeout or self.timeout
            )
        except requests.RequestException as exc:
            raise PiholeUnreachable(
                f"{method} {path}: no answer from {self.base_url} ({type(exc).__name__})"
            ) from None

    def _fail(self, what: str, response: requests.Response) -> PiholeError:
        reason = _message(response)
        text = redact(
            f"{what} -> {response.status_code}" + (f": {reason}" if reason else ""),
            reveal(self._password),
            self._sid or "",
        )
        if response.status_code == 401:
            return PiholeAuthError(text, 401)
        if response.status_code == 429:
            return PiholeNoSessionError(text + " (all API sessions are in use; wait for them to expire)", 429)
        return PiholeError(text, response.status_code)

    def wait_ready(
        self, timeout: float = 120.0, interval: float = 1.0, *, waiting: Callable[[str], None] | None = None
    ) -> None:
        """Poll ``GET /api/auth`` (no session) until Pi-hole's API answers it with a session object;
        ``PiholeUnreachable`` after ``timeout`` seconds, saying what it last found. ``waiting`` sees
        that on every round (default: a line on pyinfra's output about every 10 s,
        ``operations.progress.Waiting``)."""
        poll_until_ready(
            self._readiness, PiholeUnreachable,
            lambda last: PiholeUnreachable(
                f"Pi-hole at {self.base_url} did not answer within {timeout:.0f}s (last: {last})"),
            "Pi-hole's API", timeout, interval, waiting,
        )

    def _readiness(self) -> str | None:
        """``None`` when FTL answers ``GET /api/auth``, else what came back instead."""
        response = self._send("GET", AUTH, timeout=min(self.timeout, 5))
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code in (200, 401) and isinstance(body, dict) and isinstance(
            body.get("session"), dict
        ):
            return None
        return f"it answers {response.status_code}" + ("" if body is not None else " (not Pi-hole's API)")

    def login(self) -> None:
        response = self._send("POST", AUTH, {"password": reveal(self._password)})
        if response.status_code == 401:
            setting = self.setting_name
            raise PiholeAuthError(
                f"Pi-hole refused the password in {setting}: set {setting} to the password of Pi-hole's "
                "web interface, or give Pi-hole that password (`pihole setpassword` in its container)",
                401,
            )
        if not response.ok:
            raise self._fail("POST /api/auth", response)
        session = response.json().get("session") or {}
        if not session.get("valid"):
            raise PiholeAuthError(f"Pi-hole at {self.base_url} gave no valid session")
        if session.get("sid"):
            self._sid = str(session["sid"])
        else:  # FTL without a password: {"valid": true, "sid": null, "message": "no password set"}
            self._open = True

    def logout(self) -> None:
        """End the session (if any); never raises for a failed logout, which the session expiry covers."""
        self._open = False
        if self._sid is None:
            return
        try:
            self._send("DELETE", AUTH)
        except PiholeError:
            pass
        finally:
            self._sid = None

    def _call(self, method: str, path: str, what: str | None = None) -> Any:
        if not self.logged_in:
            raise PiholeError("not logged in: use the client as a context manager")
        response = self._send(method, path)
        if not response.ok:
            raise self._fail(what or f"{method} {path}", response)
        return response.json() if response.content else None

    def get_hosts(self) -> list[str]:
        """The local DNS entries (``dns.hosts``) exactly as Pi-hole stores them: ``"IP NAME [NAME…]"``
        with whatever whitespace and case they were written with."""
        answer = self._call("GET", HOSTS)
        return [str(line) for line in answer["config"]["dns"]["hosts"]]

    def get_cname_records(self) -> list[str]:
        """The CNAME entries (``dns.cnameRecords``) as stored: ``"ALIAS,TARGET[,TTL]"``."""
        answer = self._call("GET", CNAMES)
        return [str(line) for line in answer["config"]["dns"]["cnameRecords"]]

    def add_host(self, entry: str) -> None:
        """Store ``entry`` (``"IP NAME"``); FTL's reason (with its hint) is kept in the error."""
        self._call("PUT", entry_path(HOSTS, entry), f"Pi-hole refused to add the local DNS entry {entry!r}")

    def delete_host(self, entry: str) -> None:
        """Delete the stored string ``entry`` (FTL matches it byte for byte; 404 when not stored)."""
        response_what = f"Pi-hole could not delete the local DNS entry {entry!r}"
        try:
            self._call("DELETE", entry_path(HOSTS, entry), response_what)
        except PiholeError as error:
            if error.status == 404:
                raise PiholeError(
                    f"{response_what}: it is not stored (any more) as exactly this string", 404
                ) from None
            raise
