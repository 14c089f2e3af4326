"""A client for Open WebUI's account API (v0.6): signing in, whether public sign-up is open, and
closing it (``/api/v1/auths/...``, ``/api/config``), as ``open_webui/routers/auths.py`` serves them.

Open WebUI answers errors as ``{"detail": "<text>"}``: a refused sign-in is 400 ("The email or
password provided is incorrect…"), a closed sign-up 403, a missing or bad token 401. The password and
the token never appear in an exception, a repr or a log line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from operations.clients import Secret, ServiceUnreachable, redact, reveal
from operations.progress import poll_until_ready

TIMEOUT = 10


class OpenWebUIError(Exception):
    """An Open WebUI API call failed; ``status`` is the HTTP status when there was an answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class OpenWebUIUnreachable(OpenWebUIError, ServiceUnreachable):
    """No answer: nothing listens at the base URL, the connection dropped, or it timed out."""


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:300]
    return str(body)[:200]


class OpenWebUIClient:
    """One Open WebUI, reached at ``base_url`` (``http://host:8080``), for the account ``email``."""

    def __init__(self, base_url: str, email: str, password: Secret) -> None:
        self.base_url = base_url.rstrip("/")
        self.email = email
        self._password = password
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"OpenWebUIClient({self.base_url!r}, {self.email!r})"

    def _call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        kwargs.setdefault("timeout", TIMEOUT)
        try:
            return self._session.request(method, self.base_url + path, headers=headers, **kwargs)
        except requests.RequestException as error:
            secrets = (reveal(self._password), token or "")
            raise OpenWebUIUnreachable(
                f"no answer from Open WebUI at {self.base_url}: {redact(type(error).__name__, *secrets)}"
            ) from None

    def _json(self, response: requests.Response, what: str) -> Any:
        if response.status_code != 200:
            # a 422 echoes the request body (the password) as its `input`
            detail = redact(_detail(response), reveal(self._password))
            raise OpenWebUIError(f"{what}: {response.status_code} {detail}", response.status_code)
        try:
            return response.json()
        except ValueError:
            raise OpenWebUIError(f"{what}: the answer is not JSON: {response.text[:200]}") from None

    def wait_ready(
        self, timeout: float = 180.0, interval: float = 1.0, *, waiting: Callable[[str], None] | None = None
    ) -> None:
        """Poll ``GET /health`` until Open WebUI answers ``{"status": true}``; ``OpenWebUIUnreachable``
        after ``timeout`` seconds, saying what it last found. ``waiting`` sees that on every round
        (default: a line on pyinfra's output about every 10 s, ``operations.progress.Waiting``)."""
        def probe() -> str | None:
            response = self._call("GET", "/health", timeout=5)
            try:
                body = response.json()
            except ValueError:
                body = None
            if response.status_code == 200 and isinstance(body, dict) and body.get("status") is True:
                return None
            return f"it answers {response.status_code}" + ("" if body is not None else " (not JSON)")

        poll_until_ready(
            probe, OpenWebUIUnreachable,
            lambda last: OpenWebUIUnreachable(
                f"Open WebUI at {self.base_url} did not answer within {timeout:.0f}s (last: {last})"),
            "Open WebUI", timeout, interval, waiting,
        )

    def config(self) -> dict[str, Any]:
        """The public configuration (no login): ``onboarding`` (no user yet), ``features.enable_signup``."""
        return self._json(self._call("GET", "/api/config"), "GET /api/config")

    def sign_in(self) -> dict[str, Any] | None:
        """The configured account's session (``token``, ``role``, …), or ``None`` when Open WebUI refuses
        the email and password (400)."""
        response = self._call("POST", "/api/v1/auths/signin",
                              json={"email": self.email, "password": reveal(self._password)})
        if response.status_code == 400:
            return None
        return self._json(response, "POST /api/v1/auths/signin")

    def state(self) -> dict[str, Any]:
        """What the deploy checks: ``{"account": "admin" | "user" | "pending" | "refused",
        "signup": bool}`` (``account``: the configured account's role, or ``refused`` when its
        email and password do not sign in)."""
        session = self.sign_in()
        features = self.config().get("features") or {}
        return {"account": session.get("role", "?") if session else "refused",
                "signup": bool(features.get("enable_signup"))}

    def close_signup(self) -> None:
        """Turn public sign-up off as the admin would in Admin Settings: the whole admin
        configuration read, ``ENABLE_SIGNUP`` changed, all of it written back (Open WebUI stores it in
        its database, where it outranks the ``ENABLE_SIGNUP`` environment variable)."""
        session = self.sign_in()
        if session is None:
            raise OpenWebUIError(f"cannot close sign-up: {self.email} does not sign in", 400)
        token = str(session.get("token", ""))
        try:
            current = self._json(self._call("GET", "/api/v1/auths/admin/config", token),
                                 "GET /api/v1/auths/admin/config")
            changed = self._json(self._call("POST", "/api/v1/auths/admin/config", token,
                                            json={**current, "ENABLE_SIGNUP": False}),
                                 "POST /api/v1/auths/admin/config")
        except OpenWebUIError as error:
            raise OpenWebUIError(redact(str(error), token, reveal(self._password)), error.status) from None
        if changed.get("ENABLE_SIGNUP") is not False:
            raise OpenWebUIError("POST /api/v1/auths/admin/config: sign-up is still on after the change")
