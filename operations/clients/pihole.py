"""A client for the Pi-hole v6 API's local DNS records (``/api/config/dns/hosts``).

Use it as a context manager: it logs in on entry and always logs out on exit, even after an error,
because Pi-hole has few API sessions (429 when none is free). The password and the session id never
appear in an exception, a repr or a log line.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any
from urllib.parse import quote

import requests

from operations.clients import Secret, redact, reveal

Record = tuple[str, str]  # (ip, hostname)


class PiholeError(Exception):
    """A Pi-hole API call failed; ``status`` is the HTTP status when there was an answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PiholeAuthError(PiholeError):
    """Wrong password, or the session was refused."""


class PiholeNoSessionError(PiholeError):
    """Every API session is in use (429)."""


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):
            return str(body["error"].get("message", ""))
        if isinstance(body.get("session"), dict):
            return str(body["session"].get("message", ""))
    return str(body)[:200]


def _item(record: Record) -> str:
    ip, hostname = record
    return quote(f"{ip} {hostname}", safe="")


class PiholeClient:
    """One Pi-hole, reached at ``base_url`` (``http://host:80``)."""

    def __init__(
        self,
        base_url: str,
        password: Secret,
        *,
        timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._password = password
        self.timeout = timeout
        self.session = session or requests.Session()
        self._sid: str | None = None

    def __repr__(self) -> str:
        return f"PiholeClient({self.base_url!r})"

    def __enter__(self) -> PiholeClient:
        self.login()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.logout()

    def _send(self, method: str, path: str, body: Any = None) -> requests.Response:
        headers = {"X-FTL-SID": self._sid} if self._sid else {}
        try:
            return self.session.request(
                method, self.base_url + path, json=body, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise PiholeError(
                f"{method} {path}: no answer from {self.base_url} ({type(exc).__name__})"
            ) from None

    def _fail(self, method: str, path: str, response: requests.Response) -> PiholeError:
        text = redact(
            f"{method} {path} -> {response.status_code}: {_message(response)}",
            reveal(self._password),
            self._sid or "",
        )
        if response.status_code == 401:
            return PiholeAuthError(text, 401)
        if response.status_code == 429:
            return PiholeNoSessionError(text + " (all API sessions are in use; wait for them to expire)", 429)
        return PiholeError(text, response.status_code)

    def login(self) -> None:
        response = self._send("POST", "/api/auth", {"password": reveal(self._password)})
        if response.status_code == 401:
            raise PiholeAuthError(f"Pi-hole at {self.base_url} refused the configured password", 401)
        if not response.ok:
            raise self._fail("POST", "/api/auth", response)
        session = response.json().get("session") or {}
        if not session.get("valid") or not session.get("sid"):
            raise PiholeAuthError(f"Pi-hole at {self.base_url} gave no valid session")
        self._sid = str(session["sid"])

    def logout(self) -> None:
        """End the session (if any); never raises for a failed logout, which the session expiry covers."""
        if self._sid is None:
            return
        try:
            self._send("DELETE", "/api/auth")
        except PiholeError:
            pass
        finally:
            self._sid = None

    def _call(self, method: str, path: str) -> Any:
        if self._sid is None:
            raise PiholeError("not logged in: use the client as a context manager")
        response = self._send(method, path)
        if not response.ok:
            raise self._fail(method, path, response)
        return response.json() if response.content else None

    def get_local_dns(self) -> set[Record]:
        """The local DNS records as (ip, hostname) pairs (hostnames lower-cased)."""
        answer = self._call("GET", "/api/config/dns/hosts")
        records: set[Record] = set()
        for line in answer["config"]["dns"]["hosts"]:
            ip, *names = line.split()
            records.update((ip, name.lower()) for name in names)
        return records

    def add_record(self, record: Record) -> None:
        self._call("PUT", f"/api/config/dns/hosts/{_item(record)}")

    def remove_record(self, record: Record) -> None:
        self._call("DELETE", f"/api/config/dns/hosts/{_item(record)}")
