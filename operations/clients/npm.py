"""A client for the NGINX Proxy Manager REST API (2.12 and 2.13+).

Follows ``shared/reference/npm-api.md`` and the recorded exchanges: bounded wait for ``GET /api/``,
first admin through setup mode (2.13+) or by replacing the default ``admin@example.com`` /
``changeme`` (≤ 2.12), login, a fresh login when the token has expired, proxy-host writes that never
carry a field the server rejects, and a read-back of ``meta.nginx_online`` after every write.
Neither the password nor the token ever appears in an exception, a repr or a log line.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

import requests

from operations.clients import Secret, ServiceUnreachable, redact, reveal
from operations.progress import Waiting

DEFAULT_EMAIL = "admin@example.com"
DEFAULT_PASSWORD = "changeme"  # noqa: S105 - NPM <= 2.12's published first-login password
READ_ONLY_KEYS = frozenset(
    {"id", "created_on", "modified_on", "owner_user_id", "owner", "certificate", "access_list", "is_deleted"}
)
WRITABLE_KEYS = frozenset(
    {
        "domain_names",
        "forward_scheme",
        "forward_host",
        "forward_port",
        "certificate_id",
        "access_list_id",
        "ssl_forced",
        "hsts_enabled",
        "hsts_subdomains",
        "http2_support",
        "block_exploits",
        "caching_enabled",
        "allow_websocket_upgrade",
        "enabled",
        "trust_forwarded_proto",
        "advanced_config",
        "meta",
        "locations",
    }
)
AdminState = Literal["ready", "setup", "default", "rotate"]
# hosts of other kinds that hold server names, by their API path and the name NPM's UI gives them
OTHER_HOST_KINDS = (
    ("redirection-hosts", "redirection host"),
    ("dead-hosts", "404 host"),
    ("streams", "stream"),
)
# the lists of hosts a proxy host's names are checked against, read once until the next change
LISTS = frozenset(
    f"/api/nginx/{path}" for path in ("proxy-hosts", "access-lists", *(kind for kind, _ in OTHER_HOST_KINDS))
)
# where NPM puts the reason a certificate request failed (its backend logs under [SSL]; certbot is run
# with --logs-dir /tmp/letsencrypt-log)
CERTIFICATE_LOGS = (
    "NPM's container output (lines marked [SSL]) and certbot's log /tmp/letsencrypt-log/letsencrypt.log "
    "inside the container"
)
LONG_NAME = 80  # server names longer than this are shortened in messages
# seconds a certificate request may take besides the DNS propagation wait (NPM waits for certbot: the
# plugin's install on first use, the ACME order, the challenge's validation)
CERTIFICATE_WAIT = 300


class NpmError(Exception):
    """An NPM API call failed; ``status`` is the HTTP status when there was an answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NpmUnreachable(NpmError, ServiceUnreachable):
    """No answer: nothing listens at the base URL, the connection dropped, or it timed out."""


class NpmAuthError(NpmError):
    """Bad credentials, a rejected token, or no way to log in."""


class NpmConflictError(NpmError):
    """A domain name is already used by another host ("… is already in use")."""


class NpmNotFoundError(NpmError):
    """The object does not exist (or was deleted)."""


class NpmValidationError(NpmError):
    """The server's schema rejected the request body."""


class NpmNginxError(NpmError):
    """The API accepted the write but nginx rejected the generated config (``meta.nginx_online`` false)."""


class NpmCertificateError(NpmError):
    """NPM answered a write that requested a Let's Encrypt certificate (``certificate_id: "new"``)
    with a server error: the certificate request failed (2.15.1: 500 ``Internal Error``, nothing more)."""


class NpmTimeout(NpmError, ServiceUnreachable):
    """NPM did not answer ``GET /api/`` in time."""


class _TokenRejected(Exception):
    """Internal: the token expired or the server no longer accepts it; log in again."""


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", ""))
    return str(body)[:200]


def shown_names(names: list[str] | tuple[str, ...]) -> str:
    """Server names for a one-line message: an over-long name is cut, its length kept."""
    return ", ".join(
        name if len(name) <= LONG_NAME else f"{name[: LONG_NAME - 20]}… ({len(name)} characters)"
        for name in names
    )


def nginx_error_line(text: Any) -> str:
    """nginx's error as NPM stores it (``meta.nginx_err``, several lines), quoted on one line."""
    lines = [line.strip() for line in str(text or "no error text").splitlines() if line.strip()]
    return '"' + "; ".join(lines) + '"'


def _token_rejected(response: requests.Response, message: str, modern: bool) -> bool:
    """True when an authenticated call failed because of the token, not the request."""
    if response.status_code == 400 and message == "Token has expired":
        return True
    if modern:  # 2.13-2.15 answer a missing/insufficient token with "Not Found - /<route>"
        return response.status_code == 404 and message.startswith("Not Found - /")
    return response.status_code in (401, 403)


class NpmClient:
    """One NPM server, reached at ``base_url`` (``http://host:81``), acting as one admin account.

    The email is lower-cased and trimmed: NPM lower-cases the login identity, so an account stored
    with capitals could never log in (upstream issue #4665).
    """

    def __init__(
        self,
        base_url: str,
        email: str,
        password: Secret,
        *,
        timeout: float = 30.0,
        session: requests.Session | None = None,
        name: str = "Administrator",
        nickname: str = "Admin",
        certificate_logs: str = CERTIFICATE_LOGS,
        previous_email: str | None = None,
        previous_password: Secret | None = None,
        settings_names: tuple[str, str] = ("HOMELAB_NPM_ADMIN_EMAIL", "HOMELAB_NPM_ADMIN_PASSWORD"),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.email = email.strip().lower()
        self._password = password
        # what NPM has now, when the configured email or password is to replace it (rotation)
        self.previous_email = previous_email.strip().lower() if previous_email else None
        self._previous_password = previous_password
        self._settings_names = settings_names
        self._rotate_from: tuple[str, Any] | None = None
        self.timeout = timeout
        self.session = session or requests.Session()
        self.name = name
        self.nickname = nickname
        self.certificate_logs = certificate_logs
        self._token: str | None = None
        self._version: tuple[int, int, int] | None = None
        # the lists of hosts read since the last change (every proxy host checks the same names
        # against them): path -> the answer
        self._lists: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"NpmClient({self.base_url!r}, email={self.email!r})"

    # -- transport -----------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return redact(text, reveal(self._password), self._token or "", DEFAULT_PASSWORD)

    def _send(
        self, method: str, path: str, body: Any = None, token: str | None = None, timeout: float | None = None
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            return self.session.request(
                method, self.base_url + path, json=body, headers=headers, timeout=timeout or self.timeout
            )
        except requests.RequestException as exc:
            raise NpmUnreachable(
                f"{method} {path}: no answer from {self.base_url} ({type(exc).__name__})"
            ) from None

    def _fail(self, method: str, path: str, response: requests.Response, message: str) -> NpmError:
        text = self._redact(f"{method} {path} -> {response.status_code}: {message}")
        status = response.status_code
        if status in (401, 403) or message == "Invalid email or password":
            return NpmAuthError(text, status)
        if status == 400 and message.endswith("is already in use"):
            return NpmConflictError(text, status)
        if status == 404:
            return NpmNotFoundError(text, status)
        if status == 400:
            return NpmValidationError(text, status)
        return NpmError(text, status)

    def _call(
        self, method: str, path: str, body: Any = None, *, authed: bool = True, timeout: float | None = None
    ) -> Any:
        """One API call; with ``authed`` it logs in first and once more if the token is refused. A list
        of hosts (``LISTS``) is read once until the next change made through this client."""
        if method != "GET":
            self._lists.clear()
        elif path in LISTS:
            if path not in self._lists:
                self._lists[path] = self._request(method, path, body, authed=authed, timeout=timeout)
            return copy.deepcopy(self._lists[path])
        return self._request(method, path, body, authed=authed, timeout=timeout)

    def _request(self, method: str, path: str, body: Any, *, authed: bool, timeout: float | None) -> Any:
        for attempt in range(2):
            token = self._ensure_token() if authed else None
            response = self._send(method, path, body, token, timeout)
            if response.ok:
                return response.json() if response.content else None
            message = _error_message(response)
            if authed and attempt == 0 and _token_rejected(response, message, self.version >= (2, 13, 0)):
                self._token = None
                continue
            raise self._fail(method, path, response, message)
        raise NpmAuthError(f"{method} {path}: the server refused a fresh token for {self.email}")

    # -- health, version, login ----------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        answer = self._call("GET", "/api/", authed=False)
        version = answer.get("version") or {}
        self._version = (
            int(version.get("major", 0)),
            int(version.get("minor", 0)),
            int(version.get("revision", 0)),
        )
        return answer

    @property
    def version(self) -> tuple[int, int, int]:
        """The server's version (read from ``GET /api/`` on first use)."""
        if self._version is None:
            self.health()
        assert self._version is not None
        return self._version

    def wait_ready(
        self, timeout: float = 120.0, interval: float = 1.0, *, waiting: Callable[[str], None] | None = None
    ) -> dict[str, Any]:
        """Poll ``GET /api/`` until it answers ``status: OK``; ``NpmTimeout`` after ``timeout`` seconds.
        ``waiting`` sees what the last poll found on every round (default: a line on pyinfra's output
        about every 10 s, ``operations.progress.Waiting``)."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        waiting = waiting or Waiting("NGINX Proxy Manager's API", timeout)
        while True:
            try:
                answer = self.health()
                if answer.get("status") == "OK":
                    return answer
                last = f"status {answer.get('status')!r}"
            except NpmError as exc:
                last = str(exc)
            if time.monotonic() >= deadline:
                raise NpmTimeout(f"NPM at {self.base_url} not ready after {timeout:.0f}s (last: {last})")
            waiting(last)
            time.sleep(interval)

    def _token_for(self, email: str, password: str) -> str | None:
        """A token for these credentials, or None when the server says they are wrong."""
        response = self._send("POST", "/api/tokens", {"identity": email, "secret": password})
        if response.ok:
            answer = response.json()
            if answer.get("requires_2fa"):
                raise NpmAuthError(
                    f"login as {email}: the account requires 2FA, which this client does not do"
                )
            return str(answer["token"])
        message = _error_message(response)
        if response.status_code in (400, 401) and message == "Invalid email or password":
            return None
        raise self._fail("POST", "/api/tokens", response, message)

    def login(self) -> None:
        """Log in with the configured credentials; ``NpmAuthError`` when they are refused."""
        token = self._token_for(self.email, reveal(self._password))
        if token is None:
            raise NpmAuthError(f"NPM refused the configured credentials for {self.email}")
        self._token = token

    def _ensure_token(self) -> str:
        if self._token is None:
            self.login()
        assert self._token is not None
        return self._token

    # -- first admin ---------------------------------------------------------------------------
    def admin_state(self) -> AdminState:
        """``ready`` (the configured login works), ``setup`` (2.13+ with no user yet) or
        ``default`` (≤ 2.12 still on NPM's default password ``changeme``, under admin@example.com or,
        after a takeover that changed only the email, under the configured email); read-only."""
        health = self.health()
        if health.get("setup") is False:
            return "setup"
        token = self._token_for(self.email, reveal(self._password))
        if token is not None:
            self._token = token
            return "ready"
        for email, password in self._previous_credentials():
            token = self._token_for(email, reveal(password))
            if token is not None:
                self._token, self._rotate_from = token, (email, password)
                return "rotate"
        if self.version < (2, 13, 0) and self._default_login() is not None:
            return "default"
        email_setting, password_setting = self._settings_names
        tried_previous = self._previous_password is not None or self.previous_email is not None
        raise NpmAuthError(
            f"NPM refuses {email_setting} / {password_setting} for {self.email}"
            + (" and the previous credentials given" if tried_previous else "")
            + f": to change NPM's admin password, give the one NPM has now once as "
            f"{password_setting.replace('PASSWORD', 'PREVIOUS_PASSWORD')} (and the email it has now as "
            f"{email_setting.replace('EMAIL', 'PREVIOUS_EMAIL')} when the email changes too)"
        )

    def _previous_credentials(self) -> list[tuple[str, Any]]:
        """Logins that may still work while the configured one is to replace them: the previous ones,
        and the mixes a half-done rotation leaves (new email with the old password, and back)."""
        if self._previous_password is None and self.previous_email is None:
            return []
        old_email = self.previous_email or self.email
        old_password = self._previous_password if self._previous_password is not None else self._password
        found: list[tuple[str, Any]] = []
        for pair in ((old_email, old_password), (self.email, old_password), (old_email, self._password)):
            if pair not in found and pair != (self.email, self._password):
                found.append(pair)
        return found

    def _default_login(self) -> str | None:
        """The email under which the account still has NPM's default password, logged in as it: the
        default email (a fresh ≤ 2.12), or the configured one (a takeover whose password change failed
        after its email change). None when neither works."""
        for email in dict.fromkeys((DEFAULT_EMAIL, self.email)):
            token = self._token_for(email, DEFAULT_PASSWORD)
            if token is not None:
                self._token = token
                return email
        return None

    def ensure_admin(self) -> AdminState:
        """Make the configured account the admin; returns the state found before any change."""
        state = self.admin_state()
        if state == "setup":
            self._create_first_admin()
        elif state == "default":
            self._replace_default_admin()
        elif state == "rotate":
            self._rotate_admin()
        if state != "ready":
            self.login()
        return state

    def _rotate_admin(self) -> None:
        """Change the admin's email and password from the previous ones to the configured ones
        (logged in with what works now: a half-done rotation is finished by the next run)."""
        assert self._rotate_from is not None
        email, password = self._rotate_from
        me = self._call("GET", "/api/users/me")
        if email != self.email:
            self._call("PUT", f"/api/users/{me['id']}",
                       {"email": self.email, "name": me.get("name") or self.name,
                        "nickname": me.get("nickname") or self.nickname})
        if reveal(password) != reveal(self._password):
            auth = {"type": "password", "current": reveal(password), "secret": reveal(self._password)}
            self._call("PUT", f"/api/users/{me['id']}/auth", auth)
        self._token = None

    def _create_first_admin(self) -> None:
        body = {
            "name": self.name,
            "nickname": self.nickname,
            "email": self.email,
            "auth": {"type": "password", "secret": reveal(self._password)},
        }
        self._call("POST", "/api/users", body, authed=False)

    def _replace_default_admin(self) -> None:
        """Take over the account that still has NPM's default password: its email first, then its
        password. A run whose password change fails leaves the configured email with the default
        password; the next run finds it there (``_default_login``) and finishes."""
        if self._default_login() is None:
            raise NpmAuthError("the default admin account disappeared during setup")
        me = self._call("GET", "/api/users/me")
        if me.get("email") != self.email:
            self._call(
                "PUT",
                f"/api/users/{me['id']}",
                {"email": self.email, "name": self.name, "nickname": self.nickname},
            )
        auth = {"type": "password", "current": DEFAULT_PASSWORD, "secret": reveal(self._password)}
        try:
            self._call("PUT", f"/api/users/{me['id']}/auth", auth)
        except NpmError as error:
            raise type(error)(
                f"{error}: NPM's admin is now {self.email} with NPM's default password still; "
                f"run the deploy again to set {self._settings_names[1]}",
                error.status,
            ) from None
        self._token = None

    # -- proxy hosts ---------------------------------------------------------------------------
    def writable(self, fields: dict[str, Any]) -> dict[str, Any]:
        """``fields`` without what the server rejects: read-only keys, ``letsencrypt_*``,
        ``trust_forwarded_proto`` before 2.14, ``certificate_id: 0`` (stored as "has a certificate")
        and ``locations: null``. Any other unknown key is a programming error (ValueError)."""
        clean: dict[str, Any] = {}
        for key, value in fields.items():
            if key in READ_ONLY_KEYS or key.startswith("letsencrypt_"):
                continue
            if key not in WRITABLE_KEYS:
                raise ValueError(f"{key!r} is not a proxy-host field NPM accepts")
            if key == "trust_forwarded_proto" and self.version < (2, 14, 0):
                continue
            if (key == "certificate_id" and value == 0) or (key == "locations" and value is None):
                continue
            clean[key] = value
        return clean

    def list_proxy_hosts(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/nginx/proxy-hosts"))

    def get_proxy_host(self, host_id: int) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/nginx/proxy-hosts/{int(host_id)}"))

    def _check_nginx(self, host_id: int) -> dict[str, Any]:
        """Read the host back: the API answers 2xx even when nginx rejected the config."""
        stored = self.get_proxy_host(host_id)
        meta = stored.get("meta") or {}
        if meta.get("nginx_online") is False:
            raise NpmNginxError(
                f"nginx rejected the config of proxy host #{host_id} "
                f"({shown_names(stored.get('domain_names', []))}): {nginx_error_line(meta.get('nginx_err'))}"
            )
        return stored

    def _certificate_failed(self, error: NpmError, names: list[str], outcome: str) -> NpmError:
        if error.status is None or error.status < 500:
            return error
        answer = str(error).partition(" -> ")[2] or str(error)
        return NpmCertificateError(
            f"the Let's Encrypt certificate request for {shown_names(names)} failed (NPM answered {answer}); "
            f"{outcome}; NPM logs the reason in {self.certificate_logs}",
            error.status,
        )

    def create_proxy_host(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Create a proxy host; returns it as stored, once nginx accepted it."""
        body = self.writable(fields)
        try:
            created = self._call("POST", "/api/nginx/proxy-hosts", body)
        except NpmError as error:
            if body.get("certificate_id") != "new":
                raise
            raise self._certificate_failed(
                error,
                list(body.get("domain_names", [])),
                "NPM keeps the new proxy host without SSL and the next run asks again",
            ) from None
        return self._check_nginx(int(created["id"]))

    def update_proxy_host(
        self, host_id: int, fields: dict[str, Any], names: list[str] | None = None
    ) -> dict[str, Any]:
        """Change only ``fields`` of a proxy host; returns it as stored, once nginx accepted it.
        ``names`` (the host's server names) only word the message of a failed certificate request."""
        body = self.writable(fields)
        if not body:
            raise ValueError("an update needs at least one field NPM accepts")
        try:
            self._call("PUT", f"/api/nginx/proxy-hosts/{int(host_id)}", body)
        except NpmError as error:
            if body.get("certificate_id") != "new":
                raise
            raise self._certificate_failed(
                error,
                list(body.get("domain_names") or names or [f"proxy host #{host_id}"]),
                f"NPM stored none of this update of proxy host #{host_id}",
            ) from None
        return self._check_nginx(int(host_id))

    def delete_proxy_host(self, host_id: int) -> None:
        self._call("DELETE", f"/api/nginx/proxy-hosts/{int(host_id)}")

    def list_other_hosts(self) -> list[tuple[str, dict[str, Any]]]:
        """``(kind, host)`` for every redirection host, 404 host and stream: NPM refuses a proxy host
        for a name any of them holds ("… is already in use")."""
        found: list[tuple[str, dict[str, Any]]] = []
        for path, kind in OTHER_HOST_KINDS:
            found.extend((kind, dict(entry)) for entry in self._call("GET", f"/api/nginx/{path}"))
        return found

    # -- lookups -------------------------------------------------------------------------------
    def list_access_lists(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/nginx/access-lists"))

    def list_certificates(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/nginx/certificates"))

    def find_access_list(self, name: str) -> int:
        """The id of the access list called ``name`` (``NpmNotFoundError`` if none)."""
        for entry in self.list_access_lists():
            if entry.get("name") == name:
                return int(entry["id"])
        raise NpmNotFoundError(f"no access list named {name!r}")

    def find_certificate_by_names(self, names: Iterable[str]) -> dict[str, Any] | None:
        """The Let's Encrypt certificate whose names are exactly ``names`` (as a set, case-insensitive),
        or None; of several, the one that expires last (``expires_on`` "YYYY-MM-DD HH:MM:SS")."""
        wanted = {name.strip().lower() for name in names}
        found = [
            cert for cert in self.list_certificates()
            if cert.get("provider") == "letsencrypt"
            and {str(name).lower() for name in cert.get("domain_names") or []} == wanted
        ]
        return max(found, key=lambda cert: str(cert.get("expires_on") or ""), default=None)

    def create_dns_certificate(
        self,
        names: list[str],
        dns_provider: str,
        credentials: Secret | None = None,
        propagation_seconds: int | None = None,
    ) -> dict[str, Any]:
        """Ask NPM for a Let's Encrypt certificate by the DNS-01 challenge. NPM runs certbot before it
        answers (minutes: the read timeout is the propagation wait plus ``CERTIFICATE_WAIT``); a failed
        request is ``NpmCertificateError`` (NPM removed the row). The credentials are sent in the body
        only and never appear in an error."""
        meta: dict[str, Any] = {"dns_challenge": True, "dns_provider": dns_provider}
        if credentials is not None:
            meta["dns_provider_credentials"] = reveal(credentials)
        if propagation_seconds is not None:
            meta["propagation_seconds"] = int(propagation_seconds)
        body = {"provider": "letsencrypt", "domain_names": list(names), "meta": meta}
        timeout = (propagation_seconds or 0) + CERTIFICATE_WAIT
        try:
            return dict(self._call("POST", "/api/nginx/certificates", body, timeout=timeout))
        except NpmError as error:
            message = redact(str(error), reveal(credentials) if credentials is not None else "")
            if error.status is not None and error.status >= 500:
                raise NpmCertificateError(message, error.status) from None
            raise type(error)(message, error.status) from None

    def find_certificate(self, domain: str) -> int | None:
        """The id of a certificate covering ``domain`` exactly (case-insensitive), or None."""
        for cert in self.list_certificates():
            if domain.lower() in (name.lower() for name in cert.get("domain_names", [])):
                return int(cert["id"])
        return None
