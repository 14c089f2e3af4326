"""NGINX Proxy Manager API double (a stand-in, not NPM): replays the backend behaviour recorded in
``shared/reference/npm-recorded/`` for versions 2.12.x and 2.13+ (recorded on 2.12.6 and 2.15.1).

It keeps state in memory and answers with the recorded status codes and body shapes: health,
tokens (expiry, 400/401 bad credentials), first admin (setup mode on 2.13+, default
``admin@example.com``/``changeme`` on 2.12), user update and password change, proxy hosts with the
strict create/update schema, access lists, certificates, redirection and 404 hosts (for "already in
use"), and the stream list.

Failure switches (see ``parse_switches``): ``letsencrypt_ok=False`` makes every Let's Encrypt request fail as
2.15.1 does without a working certbot (500 ``Internal Error``; an update that asked for the certificate
is dropped whole, a create keeps its row without SSL and without a config); ``nginx_reject`` names
hosts whose generated config ``nginx -t`` rejects (``meta.nginx_online`` false, ``meta.nginx_err``
worded as nginx words it); ``nginx_broken`` rejects every host's config. Served, the switches are read
from a control file on every request (``--control-file``; see ``lab/standin.py``), so a lab test can
flip them while the stand-in runs.

Certificates by Let's Encrypt (a ``POST /api/nginx/certificates`` of provider ``letsencrypt``, DNS
challenge or not, and a proxy-host write with ``certificate_id: "new"``) go through one *issuer*:
``issuer(cert, email) -> expiry`` (Unix seconds) or ``raise CertbotFailed(debug)``, where ``cert`` is the
row as stored (its ``meta`` with the DNS provider's credentials) and ``email`` its owner's, which NPM
2.13+ gives certbot as the ACME account's. The default issuer runs no certbot: it honours
``letsencrypt_ok`` (False: certbot's failure as recorded; True: valid for 90 days). As 2.15.1 does, the
row keeps ``meta.dns_provider_credentials`` but no answer ever shows it, ``nice_name`` is the names
joined by ", ", and a failed request removes the row and answers 500 ``Internal Error`` with a
``debug`` block.

Run: ``python3 -m lab.doubles.npm_double --port 81 --version 2.15.1``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lab.doubles import HttpError, Reply, ServedDouble, parse_json

DEFAULT_EMAIL = "admin@example.com"
DEFAULT_PASSWORD = "changeme"  # noqa: S105 - NPM <= 2.12's published default, part of the behaviour replayed
DOMAIN_PATTERN = "^[^&| @!#%^();:/\\\\}{=+?<>,~`'\"]+$"
_DOMAIN_RE = re.compile(r"^[^&| @!#%^();:/\\}{=+?<>,~`'\"]+$")
_EXPIRY_RE = re.compile(r"^(\d+)([smhdwy])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
DAY = 86400.0

PROXY_REQUIRED = ("domain_names", "forward_scheme", "forward_host", "forward_port")
PROXY_BOOLS = (
    "ssl_forced",
    "hsts_enabled",
    "hsts_subdomains",
    "http2_support",
    "block_exploits",
    "caching_enabled",
    "allow_websocket_upgrade",
    "enabled",
)
PROXY_FIELDS = (
    *PROXY_REQUIRED,
    "certificate_id",
    "access_list_id",
    *PROXY_BOOLS,
    "advanced_config",
    "meta",
    "locations",
)
CERT_META_KEYS = {
    "certificate",
    "certificate_key",
    "dns_challenge",
    "dns_provider",
    "dns_provider_credentials",
    "letsencrypt_certificate",
    "propagation_seconds",
    "key_type",
}
# how 2.15.1 stores nginx's refusal of a generated config (recorded: a 2216-character server name)
NGINX_EMERG = "could not build server_names_hash, you should increase server_names_hash_bucket_size: 1024"
# NPM's nginx.conf sets server_names_hash_bucket_size 1024: a name must fit one bucket with nginx's
# per-entry overhead (recorded: 456 characters pass, 2216 are rejected)
LONGEST_SERVER_NAME = 1024 - 16
NGINX_ERROR = "nginx: [emerg] {emerg}\nnginx: configuration file /etc/nginx/nginx.conf test failed\n"
CERTIFICATE_LIFETIME = 90 * 86400.0  # what Let's Encrypt issues
HIDDEN_META = ("dns_provider_credentials",)  # kept in the row, left out of every answer
PERMISSIONS = ("proxy_hosts", "redirection_hosts", "dead_hosts", "streams", "access_lists", "certificates")


def parse_version(text: str) -> tuple[int, int, int]:
    major, minor, revision = (int(part) for part in text.split("."))
    return major, minor, revision


def _error(
    status: int, message: str, *, code: bool = True, debug: dict | None = None, **extra: Any
) -> HttpError:
    body: dict[str, Any] = {"code": status, "message": message} if code else {"message": message}
    body.update(extra)
    answer: dict[str, Any] = {"error": body}
    if debug is not None:
        answer["debug"] = debug
    return HttpError(status, answer)


def _coerce_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return None


def _coerce_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1", "true", "false"):
        return value in (1, "1", "true")
    return None


def parse_switches(data: Any) -> tuple[bool, dict[str, str]]:
    """``(letsencrypt_ok, nginx_reject)`` from a control document::

        {"letsencrypt": "fail" | "ok",
         "nginx_reject": ["chat.example.test", ...]  or  {"chat.example.test": "<[emerg] text>", ...}}

    Missing keys mean "no failure". Anything else is a ValueError naming the key."""
    if not isinstance(data, dict) or set(data) - {"letsencrypt", "nginx_reject"}:
        raise ValueError(f"expected an object with letsencrypt and/or nginx_reject, got {data!r}")
    letsencrypt = data.get("letsencrypt", "ok")
    if letsencrypt not in ("ok", "fail"):
        raise ValueError(f"letsencrypt: expected 'ok' or 'fail', got {letsencrypt!r}")
    reject = data.get("nginx_reject") or {}
    if isinstance(reject, list):
        reject = dict.fromkeys(reject, NGINX_EMERG)
    if not isinstance(reject, dict) or not all(isinstance(k, str) and k for k in reject):
        raise ValueError(f"nginx_reject: expected names, or names -> [emerg] text, got {reject!r}")
    return letsencrypt == "ok", {name.lower(): str(emerg or NGINX_EMERG) for name, emerg in reject.items()}


class ControlFile:
    """The served double's switches, read from a JSON file (``parse_switches``) whenever it changed;
    no file means the switches given at start. A file that does not parse keeps the last good
    switches and is reported once on stderr."""

    def __init__(self, path: Path, double: NpmDouble) -> None:
        self.path = path
        self.double = double
        self.start = (double.letsencrypt_ok, dict(double.nginx_reject))
        self.seen: float | None = None

    def refresh(self) -> None:
        try:
            stamp = self.path.stat().st_mtime_ns
        except OSError:
            stamp = None
        if stamp == self.seen:
            return
        self.seen = stamp
        if stamp is None:
            self.double.letsencrypt_ok, reject = self.start
            self.double.nginx_reject = dict(reject)
            return
        try:
            self.double.letsencrypt_ok, self.double.nginx_reject = parse_switches(
                json.loads(self.path.read_text())
            )
        except (OSError, ValueError) as error:
            print(f"npm double: ignoring {self.path}: {error}", file=sys.stderr, flush=True)


class NpmDatabase:
    """What NPM keeps in its database, kept by the served double in a real SQLite file (the stand-in
    uses NPM's own path, /data/database.sqlite, in NPM's data volume), so a recreated container keeps
    its admin, proxy hosts, certificates, access lists and the other hosts. One table per NPM table
    name, each row as JSON (not NPM's columns: only the double reads it back); ``lab_sequence`` keeps
    the id counters, so ids are never reused, as with NPM's autoincrement. Tokens are not kept: NPM's
    JWTs outlive a restart, the double's do not (log in again)."""

    TABLES = {
        "user": "users",
        "auth": "passwords",
        "proxy_host": "proxy_hosts",
        "redirection_host": "redirection-hosts",
        "dead_host": "dead-hosts",
        "stream": "streams",
        "access_list": "access_lists",
        "certificate": "certificates",
    }

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path)
        for table in self.TABLES:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, data TEXT NOT NULL)")
        conn.execute("CREATE TABLE IF NOT EXISTS lab_sequence (kind TEXT PRIMARY KEY, value INTEGER)")
        return conn

    @staticmethod
    def _attribute(double: NpmDouble, name: str) -> dict[int, Any]:
        return double.other_hosts[name] if name in double.other_hosts else getattr(double, name)

    def save(self, double: NpmDouble) -> None:
        """Write the double's whole state in one transaction (it is small)."""
        conn = self._connect()
        try:
            with conn:
                for table, name in self.TABLES.items():
                    conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
                    rows = [(key, json.dumps(value)) for key, value in self._attribute(double, name).items()]
                    conn.executemany(f"INSERT INTO {table} (id, data) VALUES (?, ?)", rows)  # noqa: S608
                conn.execute("DELETE FROM lab_sequence")
                conn.executemany("INSERT INTO lab_sequence (kind, value) VALUES (?, ?)", double._ids.items())
        finally:
            conn.close()

    def load(self, double: NpmDouble) -> bool:
        """Replace the double's state with the stored one; False (nothing changed) when the file
        holds no user yet, so a first start keeps the admin made from INITIAL_ADMIN_* (as NPM)."""
        if not self.path.exists():
            return False
        conn = self._connect()
        try:
            tables = {
                table: {key: json.loads(data) for key, data in conn.execute(f"SELECT id, data FROM {table}")}  # noqa: S608
                for table in self.TABLES
            }
            sequence = dict(conn.execute("SELECT kind, value FROM lab_sequence"))
        finally:
            conn.close()
        if not tables["user"]:
            return False
        for table, name in self.TABLES.items():
            target = self._attribute(double, name)
            target.clear()
            target.update(tables[table])
        double._ids = {**double._ids, **sequence}
        return True


class CertbotFailed(Exception):  # noqa: N818 - what NPM's backend sees: certbot's run failed
    """Raised by an issuer: certbot failed; ``debug`` is what NPM answers in the 500's ``debug`` block."""

    def __init__(self, debug: dict) -> None:
        super().__init__("certbot failed")
        self.debug = debug


Issuer = Callable[[dict, str], int]


class NpmDouble:
    """The NPM backend as a plain Python object; ``__call__`` is the HTTP app (see ``lab.doubles``)."""

    def __init__(
        self,
        version: str = "2.15.1",
        *,
        token_lifetime: float = DAY,
        initial_admin: tuple[str, str] | None = None,
        letsencrypt_ok: bool = True,
        clock: Callable[[], float] = time.time,
        issuer: Issuer | None = None,
    ) -> None:
        self.version = parse_version(version)
        self.token_lifetime = token_lifetime
        self.letsencrypt_ok = letsencrypt_ok
        self.issuer: Issuer = issuer or self._default_issuer
        self.nginx_broken = False
        # names (lower-case) whose host's config nginx rejects, each with its [emerg] line
        self.nginx_reject: dict[str, str] = {}
        self.clock = clock
        self.lock = threading.Lock()
        self.users: dict[int, dict[str, Any]] = {}
        self.passwords: dict[int, str] = {}
        self.tokens: dict[str, tuple[int, float]] = {}
        self.proxy_hosts: dict[int, dict[str, Any]] = {}
        self.other_hosts: dict[str, dict[int, dict[str, Any]]] = {"redirection-hosts": {}, "dead-hosts": {}}
        self.streams: dict[int, dict[str, Any]] = {}
        self.access_lists: dict[int, dict[str, Any]] = {}
        self.certificates: dict[int, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.control: ControlFile | None = None
        # the stand-in's real nginx (lab.doubles.npm_nginx.NpmNginx) and database (NpmDatabase): None
        # in unit tests, where the switches alone decide nginx_online and state lives in memory
        self.nginx: Any = None
        self.store: NpmDatabase | None = None
        self._ids: dict[str, int] = {}
        if self.version < (2, 13, 0):
            self._add_user(DEFAULT_EMAIL, DEFAULT_PASSWORD, "Administrator", "Admin", ["admin"])
        elif initial_admin is not None:
            self._add_user(initial_admin[0], initial_admin[1], "Administrator", "Admin", ["admin"])

    # -- helpers -------------------------------------------------------------------------------
    @property
    def modern(self) -> bool:
        """2.13+: setup mode, 400 for bad credentials, 404/500 for a missing token."""
        return self.version >= (2, 13, 0)

    def _next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def _stamp(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d %H:%M:%S")

    def _iso(self, when: float) -> str:
        return (
            datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{int(when * 1000) % 1000:03d}Z"
        )

    def _add_user(self, email: str, password: str, name: str, nickname: str, roles: list[str]) -> dict:
        user_id = self._next_id("user")
        now = self._stamp()
        avatar = hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()
        self.users[user_id] = {
            "id": user_id,
            "created_on": now,
            "modified_on": now,
            "is_disabled": False,
            "email": email,
            "name": name,
            "nickname": nickname,
            "avatar": f"//www.gravatar.com/avatar/{avatar}?default=mm",
            "roles": roles,
        }
        self.passwords[user_id] = password
        return self.users[user_id]

    def _with_permissions(self, user: dict) -> dict:
        visibility = "all" if "admin" in user["roles"] else "user"
        permissions = {"visibility": visibility, **dict.fromkeys(PERMISSIONS, "manage")}
        if not self.modern:
            row = {k: user[k] for k in ("id", "created_on", "modified_on")}
            permissions = {**row, "user_id": user["id"], **permissions}
        return {**user, "permissions": permissions}

    def _issue_token(self, user_id: int, lifetime: float) -> dict:
        token = "npm-double." + secrets.token_urlsafe(24)
        expires = self.clock() + lifetime
        self.tokens[token] = (user_id, expires)
        return {"token": token, "expires": self._iso(expires)}

    def _not_found(self, what: str) -> HttpError:
        return _error(404, f"Not Found - {what}" if self.modern else f"Item Not Found - {what}")

    # -- authentication ------------------------------------------------------------------------
    def _auth(self, method: str, route: str, headers: dict[str, str]) -> int:
        header = headers.get("authorization", "")
        if not header.startswith("Bearer "):
            if not self.modern:
                raise _error(403, "Permission Denied")
            if method == "POST":
                raise _error(500, "Internal Error")
            raise _error(404, f"Not Found - {route}")
        entry = self.tokens.get(header[len("Bearer ") :])
        if entry is None:
            raise _error(500, "Internal Error", code=self.modern)
        user_id, expires = entry
        if self.clock() >= expires:
            detail = {"name": "TokenExpiredError", "message": "jwt expired", "expiredAt": self._iso(expires)}
            raise _error(400, "Token has expired", message_i18n=detail)
        return user_id

    def _bad_credentials(self, known_user: bool) -> HttpError:
        if not self.modern:
            return _error(401, "Invalid email or password")
        extra = {"message_i18n": "error.invalid-auth"} if known_user else {}
        return _error(400, "Invalid email or password", **extra)

    def _login(self, body: Any) -> Reply:
        if not isinstance(body, dict):
            raise _error(400, "data must be object")
        errors = [f"data must have required property '{k}'" for k in ("identity", "secret") if k not in body]
        errors += [
            "data must NOT have additional properties"
            for k in body
            if k not in ("identity", "secret", "scope")
        ]
        if errors:
            raise _error(400, ", ".join(errors))
        identity = str(body["identity"]).strip().lower()
        user = next((u for u in self.users.values() if u["email"] == identity), None)
        if user is None or self.passwords[user["id"]] != body["secret"]:
            raise self._bad_credentials(user is not None)
        return 200, self._issue_token(user["id"], self.token_lifetime), {}

    def _refresh(self, method: str, headers: dict[str, str], query: dict[str, list[str]]) -> Reply:
        if not headers.get("authorization", "").startswith("Bearer "):
            raise _error(500 if self.modern else 400, "Internal Error")
        user_id = self._auth(method, "/tokens", headers)
        lifetime = self.token_lifetime
        if "expiry" in query:
            match = _EXPIRY_RE.match(query["expiry"][0])
            if not match:
                raise _error(400, f"Invalid expiry time: {query['expiry'][0]}")
            lifetime = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        return 200, self._issue_token(user_id, lifetime), {}

    # -- users ---------------------------------------------------------------------------------
    def _create_user(self, headers: dict[str, str], body: dict) -> Reply:
        if "authorization" not in headers:
            if not self.modern:
                raise _error(403, "Permission Denied")
            if self.users:
                raise _error(404, "Not Found - /users")
            roles = ["admin"]
        else:
            self._auth("POST", "/users", headers)
            roles = list(body.get("roles", []))
        auth = body.get("auth") or {}
        user = self._add_user(
            body["email"], auth.get("secret", ""), body["name"], body.get("nickname", ""), roles
        )
        return 201, self._with_permissions(user), {}

    def _update_user(self, user_id: int, body: dict) -> Reply:
        user = self.users.get(user_id)
        if user is None:
            raise self._not_found(str(user_id))
        for key in ("name", "nickname", "roles", "is_disabled"):
            if key in body:
                user[key] = body[key]
        if "email" in body:
            user["email"] = str(body["email"]).strip().lower()
        user["modified_on"] = self._stamp()
        return 200, dict(user), {}

    def _change_password(self, user_id: int, body: dict) -> Reply:
        secret = str(body.get("secret", ""))
        if len(secret) < 8:
            raise _error(400, "data/secret must NOT have fewer than 8 characters")
        if user_id not in self.users:
            raise self._not_found(str(user_id))
        if self.passwords[user_id] != body.get("current"):
            raise self._bad_credentials(True)
        self.passwords[user_id] = secret
        return 200, True, {}

    # -- proxy hosts ---------------------------------------------------------------------------
    def _proxy_fields(self) -> tuple[str, ...]:
        extra = ("trust_forwarded_proto",) if self.version >= (2, 14, 0) else ()
        return PROXY_FIELDS + extra

    def _check_domains(self, value: Any) -> list[str]:
        if not isinstance(value, list):
            return ["data/domain_names must be array"]
        errors = []
        if not value:
            errors.append("data/domain_names must NOT have fewer than 1 items")
        if len(value) > 100:
            errors.append("data/domain_names must NOT have more than 100 items")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not _DOMAIN_RE.match(item):
                errors.append(f'data/domain_names/{index} must match pattern "{DOMAIN_PATTERN}"')
        for index, item in enumerate(value):
            if item in value[:index]:
                errors.append(
                    f"data/domain_names must NOT have duplicate items "
                    f"(items ## {index} and {value.index(item)} are identical)"
                )
                break
        return errors

    def _check_field(self, key: str, value: Any) -> list[str]:
        """Validate one proxy-host field as the upstream schema (ajv, coerceTypes) does."""
        where = f"data/{key}"
        if key == "domain_names":
            return self._check_domains(value)
        if key == "forward_scheme":
            return (
                [] if value in ("http", "https") else [f"{where} must be equal to one of the allowed values"]
            )
        if key == "forward_host":
            if not isinstance(value, str):
                return [f"{where} must be string"]
            if not value:
                return [f"{where} must NOT have fewer than 1 characters"]
            return [f"{where} must NOT have more than 255 characters"] if len(value) > 255 else []
        if key == "forward_port":
            port = _coerce_int(value)
            if port is None:
                return [f"{where} must be integer"]
            if port < 1:
                return [f"{where} must be >= 1"]
            return [f"{where} must be <= 65535"] if port > 65535 else []
        if key in ("certificate_id", "access_list_id"):
            number = _coerce_int(value)
            if key == "certificate_id" and value == "new":
                return []
            return [f"{where} must be >= 0"] if number is None or number < 0 else []
        if key in PROXY_BOOLS or key == "trust_forwarded_proto":
            return [] if _coerce_bool(value) is not None else [f"{where} must be boolean"]
        if key == "advanced_config":
            return [] if isinstance(value, str) else [f"{where} must be string"]
        if key == "meta":
            return [] if isinstance(value, dict) else [f"{where} must be object"]
        return [] if isinstance(value, list) else [f"{where} must be array"]

    def _validate_proxy(self, body: Any, create: bool) -> None:
        if not isinstance(body, dict):
            raise _error(400, "data must be object")
        allowed = self._proxy_fields()
        errors = [
            f"data must have required property '{k}'" for k in PROXY_REQUIRED if create and k not in body
        ]
        if not create and not body:
            errors.append("data must NOT have fewer than 1 properties")
        errors += ["data must NOT have additional properties" for k in body if k not in allowed]
        for key, value in body.items():
            if key in allowed:
                errors += self._check_field(key, value)
        if errors:
            raise _error(400, ", ".join(errors))

    def _domains_in_use(self, exclude_id: int | None) -> set[str]:
        used = {
            name.lower()
            for host in self.proxy_hosts.values()
            if not host["is_deleted"] and host["id"] != exclude_id
            for name in host["domain_names"]
        }
        for table in self.other_hosts.values():
            used.update(name.lower() for host in table.values() for name in host["domain_names"])
        return used

    def _check_in_use(self, names: list[str], exclude_id: int | None) -> None:
        used = self._domains_in_use(exclude_id)
        for name in names:
            if name.lower() in used:
                raise _error(400, f"{name} is already in use")

    def _normalise(self, host: dict, body: dict) -> None:
        """Apply the body to the stored host the way upstream's create/update does."""
        has_certificate = "certificate_id" in body or bool(host["certificate_id"])
        for key, value in body.items():
            if key in ("forward_port", "access_list_id"):
                host[key] = _coerce_int(value)
            elif key == "certificate_id":
                host[key] = 0 if value == "new" else _coerce_int(value)
            elif key in PROXY_BOOLS or key == "trust_forwarded_proto":
                host[key] = _coerce_bool(value)
            elif key == "domain_names":
                host[key] = sorted(value)
            else:
                host[key] = value
        if not has_certificate:
            host["ssl_forced"] = host["http2_support"] = False
        if not host["ssl_forced"]:
            host["hsts_enabled"] = False
        if not host["hsts_enabled"]:
            host["hsts_subdomains"] = False

    def _blank_host(self, host_id: int, owner_id: int) -> dict:
        now = self._stamp()
        host: dict[str, Any] = {
            "id": host_id,
            "created_on": now,
            "modified_on": now,
            "owner_user_id": owner_id,
            "domain_names": [],
            "forward_host": "",
            "forward_port": 0,
            "access_list_id": 0,
            "certificate_id": 0,
            "advanced_config": "",
            "meta": {},
            "forward_scheme": "http",
            "locations": None,
            "is_deleted": False,
            **dict.fromkeys(PROXY_BOOLS, False),
        }
        host["enabled"] = True
        if self.version >= (2, 14, 0):
            host["trust_forwarded_proto"] = False
        return host

    def _render(self, host: dict, expand: set[str], deep: bool = False) -> dict:
        shown = {k: v for k, v in host.items() if k != "is_deleted"}
        shown["meta"] = dict(host["meta"])
        if "certificate" in expand:
            cert = self.certificates.get(host["certificate_id"])
            shown["certificate"] = (None if cert is None
                                    else {**self._shown_certificate(cert), "is_deleted": False})
        if "owner" in expand:
            shown["owner"] = dict(self.users[host["owner_user_id"]])
        if "access_list" in expand:
            shown["access_list"] = self._expanded_access_list(host["access_list_id"], deep)
        return shown

    def _rejected_by_nginx(self, host: dict) -> str | None:
        """The [emerg] line nginx answers this host's config with, or None when it passes."""
        for name in host["domain_names"]:
            if name.lower() in self.nginx_reject:
                return self.nginx_reject[name.lower()]
        if self.nginx_broken or any(len(name) > LONGEST_SERVER_NAME for name in host["domain_names"]):
            return NGINX_EMERG
        return None

    def _generate_config(self, host: dict, reload: bool = True) -> None:
        """What upstream does after answering: write the config, test nginx, store the outcome. The
        switches decide first; with a real nginx attached, nginx itself may refuse too."""
        emerg = self._rejected_by_nginx(host)
        error = None if emerg is None else NGINX_ERROR.format(emerg=emerg)
        if self.nginx is not None:
            error = self.nginx.configure(host, error, reload=reload)
        if error is not None:
            host["meta"] = {**host["meta"], "nginx_online": False, "nginx_err": error}
        else:
            host["meta"] = {**host["meta"], "nginx_online": True, "nginx_err": None}

    def configure_all(self) -> None:
        """Write every live proxy host's config again (the stand-in's start, after loading its
        database), then let nginx load them all at once."""
        if self.nginx is None:
            return
        self.nginx.clear()
        for host in self.proxy_hosts.values():
            if not host["is_deleted"] and host["enabled"]:
                self._generate_config(host, reload=False)
        self.nginx.reload()

    def _quick_certificate(self, owner_id: int, domain_names: list[str]) -> dict:
        """Let's Encrypt for these names, as a proxy-host write asks for it: the certificate row is
        written (its id used up) and removed again when certbot fails -> 500 ``Internal Error`` (no
        ``debug`` block on this path, as recorded)."""
        body = {"provider": "letsencrypt", "domain_names": sorted(domain_names)}
        try:
            return self._issued(owner_id, body)
        except CertbotFailed:
            raise _error(500, "Internal Error", code=self.modern) from None

    @staticmethod
    def _drop_ssl_flags(host: dict) -> None:
        """A write that requested a certificate stores the SSL flags false (upstream #3956)."""
        host["ssl_forced"] = host["http2_support"] = host["hsts_enabled"] = host["hsts_subdomains"] = False

    def _create_proxy(self, user_id: int, body: Any) -> Reply:
        self._validate_proxy(body, create=True)
        self._check_in_use(body["domain_names"], None)
        host = self._blank_host(self._next_id("proxy"), user_id)
        self._normalise(host, body)
        self.proxy_hosts[host["id"]] = host
        if body.get("certificate_id") == "new":
            # the row is already written: a failed request leaves it, without SSL and without a config
            self._drop_ssl_flags(host)
            host["certificate_id"] = self._quick_certificate(user_id, host["domain_names"])["id"]
            # with its certificate the host is configured before the answer, which shows the outcome
            self._generate_config(host)
            return 201, self._render(host, {"owner", "access_list", "certificate"}, deep=True), {}
        shown = self._render(host, {"owner", "access_list", "certificate"}, deep=True)
        self._generate_config(host)
        return 201, shown, {}

    def _live_proxy(self, host_id: int) -> dict:
        host = self.proxy_hosts.get(host_id)
        if host is None or host["is_deleted"]:
            raise self._not_found(str(host_id))
        return host

    def _update_proxy(self, user_id: int, host_id: int, body: Any) -> Reply:
        self._validate_proxy(body, create=False)
        host = self._live_proxy(host_id)
        if "domain_names" in body:
            self._check_in_use(body["domain_names"], host_id)
        certificate = None
        if body.get("certificate_id") == "new":
            # certbot runs before anything is stored: when it fails, none of the update is kept
            names = body.get("domain_names", host["domain_names"])
            certificate = self._quick_certificate(user_id, names)
        self._normalise(host, body)
        host["modified_on"] = self._stamp()
        if certificate is not None:
            self._drop_ssl_flags(host)
            host["certificate_id"] = certificate["id"]
        shown = self._render(host, {"owner", "access_list", "certificate"}, deep=True)
        self._generate_config(host)
        return 200, shown, {}

    def _toggle_proxy(self, host_id: int, enable: bool) -> Reply:
        host = self._live_proxy(host_id)
        if host["enabled"] == enable:
            raise _error(400, f"Host is already {'enabled' if enable else 'disabled'}")
        host["enabled"] = enable
        if enable:
            self._generate_config(host)
        elif self.nginx is not None:
            self.nginx.remove(host)
        return 200, True, {}

    def _list_proxies(self, query: dict[str, list[str]]) -> Reply:
        expand = set(",".join(query.get("expand", [])).split(","))
        needle = query.get("query", [""])[0].lower()
        hosts = [
            h
            for h in self.proxy_hosts.values()
            if not h["is_deleted"] and any(needle in name.lower() for name in h["domain_names"])
        ]
        hosts.sort(key=lambda h: h["domain_names"])
        return 200, [self._render(h, expand) for h in hosts], {}

    def _proxy_route(self, method: str, parts: list[str], query: dict, user_id: int, body: Any) -> Reply:
        if len(parts) == 0:
            if method == "GET":
                return self._list_proxies(query)
            return self._create_proxy(user_id, body)
        host_id = int(parts[0]) if parts[0].isdigit() else -1
        if len(parts) == 2 and method == "POST" and parts[1] in ("enable", "disable"):
            return self._toggle_proxy(host_id, parts[1] == "enable")
        if method == "GET":
            expand = set(",".join(query.get("expand", [])).split(","))
            return 200, self._render(self._live_proxy(host_id), expand), {}
        if method == "PUT":
            return self._update_proxy(user_id, host_id, body)
        if method == "DELETE":
            host = self._live_proxy(host_id)
            host["is_deleted"] = True
            if self.nginx is not None:
                self.nginx.remove(host)
            return 200, True, {}
        raise _error(404, "Not Found")

    # -- redirection and 404 hosts (only what "already in use" needs) ----------------------------
    def _create_other(self, kind: str, user_id: int, body: dict) -> Reply:
        self._check_in_use(body["domain_names"], None)
        now = self._stamp()
        host: dict[str, Any] = {
            "id": self._next_id(kind),
            "created_on": now,
            "modified_on": now,
            "owner_user_id": user_id,
            "domain_names": sorted(body["domain_names"]),
        }
        if kind == "redirection-hosts":
            host.update(
                forward_domain_name=body.get("forward_domain_name", ""),
                preserve_path=False,
            )
        host.update(certificate_id=0, ssl_forced=False)
        if kind == "redirection-hosts":
            host["block_exploits"] = False
        host.update(advanced_config="", meta={}, http2_support=False, enabled=True)
        host.update(hsts_enabled=False, hsts_subdomains=False)
        if kind == "redirection-hosts":
            host.update(
                forward_scheme=body.get("forward_scheme", "auto"),
                forward_http_code=body.get("forward_http_code", 301),
            )
        self.other_hosts[kind][host["id"]] = host
        owner = {**self.users[user_id], "is_deleted": False}
        return 201, {**host, "certificate": None, "owner": owner}, {}

    def _list_other(self, kind: str) -> Reply:
        table = self.streams if kind == "streams" else self.other_hosts[kind]
        return 200, [dict(table[key]) for key in sorted(table)], {}

    def _create_stream(self, user_id: int, body: dict) -> Reply:
        """A stream forwards a port, it has no server names (2.15.1's stored row has none)."""
        now = self._stamp()
        stream: dict[str, Any] = {
            "id": self._next_id("streams"),
            "created_on": now,
            "modified_on": now,
            "owner_user_id": user_id,
            "incoming_port": _coerce_int(body.get("incoming_port")),
            "forwarding_host": body.get("forwarding_host", ""),
            "forwarding_port": _coerce_int(body.get("forwarding_port")),
            "tcp_forwarding": bool(body.get("tcp_forwarding", True)),
            "udp_forwarding": bool(body.get("udp_forwarding", False)),
            "meta": {"nginx_online": True, "nginx_err": None},
            "enabled": True,
            "certificate_id": 0,
        }
        self.streams[stream["id"]] = stream
        return 201, dict(stream), {}

    # -- access lists --------------------------------------------------------------------------
    def _render_access_list(self, list_id: int) -> dict | None:
        """An access list as its own routes show it: users' passwords hidden behind a hint."""
        stored = self.access_lists.get(list_id)
        if stored is None:
            return None
        count = sum(
            1 for h in self.proxy_hosts.values() if not h["is_deleted"] and h["access_list_id"] == list_id
        )
        items = [{**item, "password": "", "hint": item["password"][:1] + "*" * 9} for item in stored["items"]]
        return {
            **{k: v for k, v in stored.items() if k not in ("items", "clients")},
            "proxy_host_count": count,
            "items": items,
            "clients": stored["clients"],
        }

    def _expanded_access_list(self, list_id: int, deep: bool) -> dict | None:
        """An access list inside a proxy host: with clients and items (passwords in clear, as upstream)
        in a create/update answer (``deep``), without them in a GET."""
        stored = self.access_lists.get(list_id)
        if stored is None:
            return None
        shown = {k: stored[k] for k in ("id", "created_on", "modified_on", "owner_user_id")}
        shown.update(is_deleted=False, **{k: stored[k] for k in ("name", "meta", "satisfy_any", "pass_auth")})
        if deep:
            shown.update(clients=stored["clients"], items=stored["items"])
        return shown

    def _create_access_list(self, user_id: int, body: dict) -> Reply:
        allowed = {"name", "satisfy_any", "pass_auth", "items", "clients"} | (
            set() if self.modern else {"meta"}
        )
        if any(key not in allowed for key in body):
            raise _error(400, "data must NOT have additional properties")
        list_id = self._next_id("access_list")
        now = self._stamp()
        stamp = {"created_on": now, "modified_on": now, "access_list_id": list_id}
        stored = {
            "id": list_id,
            "created_on": now,
            "modified_on": now,
            "owner_user_id": user_id,
            "name": body["name"],
            "meta": {},
            "satisfy_any": bool(body.get("satisfy_any", False)),
            "pass_auth": bool(body.get("pass_auth", True)),
            "items": [],
            "clients": [
                {
                    "id": self._next_id("client"),
                    **stamp,
                    "address": c["address"],
                    "directive": c["directive"],
                    "meta": {},
                }
                for c in body.get("clients", [])
            ],
        }
        self.access_lists[list_id] = stored
        if "items" not in body:
            raise _error(500, "Internal Error", code=self.modern)
        stored["items"] = [
            {
                "id": self._next_id("item"),
                **stamp,
                "username": item["username"],
                "password": item["password"],
                "meta": {},
            }
            for item in body["items"]
        ]
        shown = {**self._render_access_list(list_id), "owner": {**self.users[user_id], "is_deleted": False}}
        shown["proxy_hosts"] = []
        return 201, shown, {}

    # -- certificates --------------------------------------------------------------------------
    def _new_certificate(self, user_id: int, body: dict) -> dict:
        now = self._stamp()
        cert: dict[str, Any] = {"provider": body["provider"], "nice_name": body.get("nice_name", "")}
        cert["domain_names"] = body.get("domain_names", [])
        cert.update(owner_user_id=user_id, created_on=now, modified_on=now, expires_on=now,
                    meta=dict(body.get("meta") or {}))
        cert["id"] = self._next_id("certificate")
        self.certificates[cert["id"]] = cert
        return cert

    def _default_issuer(self, cert: dict, email: str) -> int:
        """No certbot: the ``letsencrypt_ok`` switch decides (False: certbot's recorded failure)."""
        if not self.letsencrypt_ok:
            raise CertbotFailed(self._certbot_failure(cert))
        return int(self.clock() + CERTIFICATE_LIFETIME)

    def _issued(self, user_id: int, body: dict) -> dict:
        """A Let's Encrypt certificate: the row is written, then the issuer runs; when it fails the row is
        removed again (its id stays used) and ``CertbotFailed`` goes on."""
        names = list(body.get("domain_names", []))
        cert = self._new_certificate(user_id, {**body, "nice_name": ", ".join(names)})
        owner = self.users.get(user_id, {})
        try:
            expiry = self.issuer(dict(cert, meta=dict(cert["meta"])), str(owner.get("email", "")))
        except CertbotFailed:
            del self.certificates[cert["id"]]
            raise
        cert["expires_on"] = datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%d %H:%M:%S")
        return cert

    @staticmethod
    def _shown_certificate(cert: dict) -> dict:
        """A certificate as the API answers it: the DNS provider's credentials never leave NPM."""
        meta = {key: value for key, value in (cert.get("meta") or {}).items() if key not in HIDDEN_META}
        return {**cert, "meta": meta}

    def _create_certificate(self, user_id: int, body: dict) -> Reply:
        extra_meta = [k for k in body.get("meta", {}) if k not in CERT_META_KEYS]
        if self.modern and extra_meta:
            message = ", ".join("data/meta must NOT have additional properties" for _ in extra_meta)
            raise _error(400, message, debug={"stack": [f"Error: {message}"]})
        if body["provider"] != "letsencrypt":
            return 201, self._shown_certificate(self._new_certificate(user_id, body)), {}
        try:
            cert = self._issued(user_id, body)
        except CertbotFailed as failed:
            raise _error(500, "Internal Error", code=self.modern, debug=failed.debug) from None
        return 201, self._shown_certificate(cert), {}

    def _certbot_failure(self, body: dict) -> dict:
        """The ``debug`` block of a failed certbot run (certbot absent, as in the recordings)."""
        if not self.modern:
            return {"stack": ["CommandError: /bin/sh: 1: certbot: not found"]}
        args = ["certonly", "-n", "--domains", ",".join(body.get("domain_names", []))]
        failure = {"errno": -2, "code": "ENOENT", "syscall": "spawn certbot", "path": "certbot"}
        return {
            "stack": ["Error"],
            "previous": {**failure, "spawnargs": args, "cmd": " ".join(["certbot", *args])},
        }

    def _list_certificates(self) -> Reply:
        listed = []
        for cert in self.certificates.values():
            fields = ("id", "created_on", "modified_on", "owner_user_id", "provider", "nice_name")
            entry = {key: cert[key] for key in fields}
            entry.update(domain_names=cert.get("domain_names", []), expires_on=cert["expires_on"],
                         meta=self._shown_certificate(cert)["meta"])
            listed.append(entry)
        return 200, sorted(listed, key=lambda c: c["nice_name"]), {}

    def _certificate_route(self, method: str, parts: list[str], user_id: int, body: Any) -> Reply:
        if not parts:
            return self._list_certificates() if method == "GET" else self._create_certificate(user_id, body)
        cert_id = int(parts[0]) if parts[0].isdigit() else -1
        if method == "DELETE" and cert_id in self.certificates:
            del self.certificates[cert_id]
            return 200, True, {}
        if method == "GET" and cert_id in self.certificates:
            return 200, self._shown_certificate(self.certificates[cert_id]), {}
        message = f"Not Found - /nginx/certificates/{parts[0]}"
        raise _error(404, message, debug={"stack": [f"Error: {message}"]})

    # -- dispatch ------------------------------------------------------------------------------
    def health(self) -> dict:
        major, minor, revision = self.version
        answer: dict[str, Any] = {"status": "OK"}
        if self.modern:
            answer["setup"] = bool(self.users)
        answer["version"] = {"major": major, "minor": minor, "revision": revision}
        return answer

    def _parse_body(self, headers: dict[str, str], raw: bytes) -> Any:
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        try:
            return parse_json(raw)
        except ValueError:
            raise _error(400, "Unexpected token in JSON") from None

    def _route(self, method: str, route: str, query: dict, headers: dict[str, str], body: Any) -> Reply:
        parts = [p for p in route.split("/") if p]
        if parts == ["tokens"]:
            return self._login(body) if method == "POST" else self._refresh(method, headers, query)
        if parts == ["users"] and method == "POST":
            return self._create_user(headers, body or {})
        user_id = self._auth(method, route, headers)
        if parts[:1] == ["users"] and len(parts) >= 2:
            target = user_id if parts[1] == "me" else int(parts[1]) if parts[1].isdigit() else -1
            if len(parts) == 2 and method == "GET":
                return 200, self._with_permissions(self.users[target]), {}
            if len(parts) == 2 and method == "PUT":
                return self._update_user(target, body or {})
            if parts[2:] == ["auth"] and method == "PUT":
                return self._change_password(target, body or {})
        if parts[:2] == ["nginx", "proxy-hosts"]:
            return self._proxy_route(method, parts[2:], query, user_id, body)
        if parts[:1] == ["nginx"] and parts[1:] in (["redirection-hosts"], ["dead-hosts"], ["streams"]):
            if method == "GET":
                return self._list_other(parts[1])
            if method == "POST" and parts[1] == "streams":
                return self._create_stream(user_id, body)
            if method == "POST":
                return self._create_other(parts[1], user_id, body)
        if parts[:2] == ["nginx", "access-lists"] and len(parts) == 2:
            if method == "GET":
                return 200, [self._render_access_list(i) for i in sorted(self.access_lists, reverse=True)], {}
            return self._create_access_list(user_id, body)
        if parts[:2] == ["nginx", "certificates"]:
            return self._certificate_route(method, parts[2:], user_id, body)
        raise _error(404, f"Not Found - {route}")

    def __call__(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        split = urlsplit(path)
        with self.lock:
            if self.control is not None:
                self.control.refresh()
            self.requests.append((method, path))
            try:
                return self._dispatch(method, path, split, headers, raw)
            finally:
                # what NPM keeps in its database outlives the process (a failed write may change it too)
                if method != "GET" and self.store is not None:
                    self.store.save(self)

    def _dispatch(self, method: str, path: str, split: Any, headers: dict[str, str], raw: bytes) -> Reply:
        """One request, inside the lock."""
        if split.path == "/api":
            location = f"http://{headers.get('host', '127.0.0.1')}/api/"
            return 302, _REDIRECT_PAGE, {"Location": location}
        if not split.path.startswith("/api/"):
            raise HttpError(404, "<html><body>Not Found</body></html>")
        route = split.path[len("/api") :]
        if route == "/" and method == "GET":
            return 200, self.health(), {}
        query = parse_qs(split.query)
        return self._route(method, route, query, headers, self._parse_body(headers, raw))


_REDIRECT_PAGE = (
    "<html>\r\n<head><title>302 Found</title></head>\r\n<body>\r\n<center><h1>302 Found</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def serve(double: NpmDouble, host: str = "127.0.0.1", port: int = 0) -> ServedDouble:
    """Serve ``double`` over HTTP (not started: call ``.start()`` or use it as a context manager)."""
    return ServedDouble(double, host, port)


def with_switches(double: NpmDouble, environ: dict[str, str], control_file: str | None) -> NpmDouble:
    """Set the failure switches of a served double: at start from ``LAB_NPM_LETSENCRYPT`` (``fail``)
    and ``LAB_NPM_NGINX_REJECT`` (comma-separated names), then from ``control_file`` (if given)
    whenever it changes."""
    start: dict[str, Any] = {"letsencrypt": environ.get("LAB_NPM_LETSENCRYPT") or "ok"}
    names = [name.strip() for name in environ.get("LAB_NPM_NGINX_REJECT", "").split(",") if name.strip()]
    start["nginx_reject"] = names
    double.letsencrypt_ok, double.nginx_reject = parse_switches(start)
    if control_file:
        double.control = ControlFile(Path(control_file), double)
    return double


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="NGINX Proxy Manager API stand-in (test double)")
    parser.add_argument("--bind", default="0.0.0.0")  # noqa: S104 - runs inside a lab container
    parser.add_argument("--port", type=int, default=81)
    parser.add_argument("--version", default="2.15.1", help="NPM version to imitate, e.g. 2.12.6 or 2.15.1")
    parser.add_argument("--token-lifetime", type=float, default=DAY, help="seconds a token stays valid")
    parser.add_argument("--control-file", help="JSON file with the failure switches (see parse_switches)")
    args = parser.parse_args(argv)
    double = NpmDouble(args.version, token_lifetime=args.token_lifetime)
    served = serve(with_switches(double, dict(os.environ), args.control_file), args.bind, args.port)
    served.serve_forever()


if __name__ == "__main__":
    main()
