"""LAB STAND-IN: Open WebUI 0.6.34's accounts, as its backend keeps and serves them.

State lives where Open WebUI keeps it, in a real SQLite ``webui.db`` in its data folder, with its
tables' main columns: ``user`` (id, name, email, role, …), ``auth`` (id, email, password as a bcrypt
``$2b$12$`` hash, active) and ``config`` (one JSON document; sign-up at ``ui.enable_signup``).

The API answers as ``open_webui/routers/auths.py`` and ``main.py`` of 0.6.34 do (read from the
release's wheel, and checked against the real backend: tests/fixtures/openwebui-recorded holds its
recorded exchanges, which tests/unit/test_openwebui_replay.py replays here):

- ``GET /`` the web app's page (a placeholder); ``GET /health`` ``{"status": true}``;
  ``GET /api/config``: ``onboarding`` true only while there is no user, ``features.enable_signup``;
- ``POST /api/v1/auths/signin`` ``{email, password}``: 200 with ``token``, ``token_type``, ``id``,
  ``email``, ``name``, ``role``…; 400 ``{"detail": INVALID_CRED}``;
- ``POST /api/v1/auths/signup`` ``{name, email, password}``: 403 ``ACCESS_PROHIBITED`` when sign-up
  is off (``ENABLE_SIGNUP``) unless no user exists and ``ENABLE_INITIAL_ADMIN_SIGNUP`` is true (that
  check comes first, so a taken address is also 403 then); 400 ``EMAIL_TAKEN``; the first account is
  an admin and closes sign-up in the stored configuration; later ones get ``DEFAULT_USER_ROLE``
  (``pending``);
- ``GET`` / ``POST /api/v1/auths/admin/config`` (admin only, 401 otherwise): the whole admin
  configuration; ``ENABLE_SIGNUP`` is stored.

``ENABLE_SIGNUP`` is a "persistent config": the environment's value holds until a value is stored in
the database, which then wins (``ENABLE_PERSISTENT_CONFIG`` true, the default).

The module-level functions are also what the stand-in's ``open_webui`` package (lab/openwebui_shim)
calls, so ``docker exec open-webui python3`` finds Open WebUI's account functions as in the real image.
"""

from __future__ import annotations

import crypt  # bcrypt ($2b$) through the system's libxcrypt; the real image uses the bcrypt package
import json
import os
import secrets
import sqlite3
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DATABASE = Path(os.environ.get("LAB_WEBUI_DB", "/app/backend/data/webui.db"))
INVALID_CRED = "The email or password provided is incorrect. Please check for typos and try logging in again."
ACCESS_PROHIBITED = ("You do not have permission to access this resource. Please contact your administrator "
                     "for assistance.")
EMAIL_TAKEN = ("Uh-oh! This email is already registered. Sign in with your existing account or choose "
               "another email to start anew.")
NOT_AUTHENTICATED = "Not authenticated"  # no token at all
UNAUTHORIZED = "401 Unauthorized"  # a token it does not know
# as 0.6.34 answers them (tests/fixtures/openwebui-recorded: the admin configuration, a user's default
# permissions, the public configuration's fields)
ADMIN_CONFIG_DEFAULTS = {
    "SHOW_ADMIN_DETAILS": True, "WEBUI_URL": "", "ENABLE_SIGNUP": True, "ENABLE_API_KEY": True,
    "ENABLE_API_KEY_ENDPOINT_RESTRICTIONS": False, "API_KEY_ALLOWED_ENDPOINTS": "",
    "DEFAULT_USER_ROLE": "pending",
    "JWT_EXPIRES_IN": "4w", "ENABLE_COMMUNITY_SHARING": True, "ENABLE_MESSAGE_RATING": True,
    "ENABLE_CHANNELS": False, "ENABLE_NOTES": True, "ENABLE_USER_WEBHOOKS": True,
    "PENDING_USER_OVERLAY_TITLE": "", "PENDING_USER_OVERLAY_CONTENT": "", "RESPONSE_WATERMARK": "",
}
PERMISSIONS = {
    "workspace": {"models": False, "knowledge": False, "prompts": False, "tools": False},
    "sharing": {"public_models": False, "public_knowledge": False, "public_prompts": False,
                "public_tools": False, "public_notes": False},
    "chat": {name: True for name in (
        "controls", "valves", "system_prompt", "params", "file_upload", "delete", "delete_message",
        "continue_response", "regenerate_response", "rate_response", "edit", "share", "export", "stt", "tts",
        "call", "multiple_models", "temporary")} | {"temporary_enforced": False},
    "features": {"direct_tool_servers": False, "web_search": True, "image_generation": True,
                 "code_interpreter": True, "notes": True},
}
JWT_LIFETIME_S = 4 * 7 * 24 * 3600  # JWT_EXPIRES_IN 4w
# the web app's page: what 0.6.34 answers for any path it has no route for, /api/... included
INDEX_HTML = ('<!doctype html>\n<html lang="en">\n\t<head>\n\t\t<meta charset="utf-8" />\n'
              "\t\t<title>Open WebUI</title>\n\t</head>\n</html>\n")


def _env_true(name: str, default: str) -> bool:
    return os.environ.get(name, default).strip().lower() == "true"


def connect(path: Path | None = None) -> sqlite3.Connection:
    """The database, with Open WebUI's account tables made if missing (an existing file is kept)."""
    path = path or DATABASE
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10)
    conn.row_factory = sqlite3.Row
    with conn:
        conn.execute(
            'CREATE TABLE IF NOT EXISTS "user" (id TEXT PRIMARY KEY, name TEXT NOT NULL, '
            "email TEXT NOT NULL, role TEXT NOT NULL, profile_image_url TEXT, "
            "last_active_at INTEGER, updated_at INTEGER, created_at INTEGER)"
        )
        conn.execute("CREATE TABLE IF NOT EXISTS auth (id TEXT PRIMARY KEY, email TEXT NOT NULL, "
                     "password TEXT NOT NULL, active INTEGER NOT NULL)")
        conn.execute("CREATE TABLE IF NOT EXISTS config (id INTEGER PRIMARY KEY, data TEXT NOT NULL, "
                     "version INTEGER NOT NULL, created_at INTEGER, updated_at INTEGER)")
    return conn


# -- what Open WebUI's models and utils do (and lab/openwebui_shim exposes under their names) -------
def password_hash(password: str) -> str:
    # bcrypt's cost 12 as Open WebUI's bcrypt.gensalt(); LAB_WEBUI_BCRYPT_COST lowers it for fast tests
    cost = int(os.environ.get("LAB_WEBUI_BCRYPT_COST", "12"))
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**cost))  # noqa: S324 (bcrypt)


def verify_password(password: str, hashed: str) -> bool:
    return secrets.compare_digest(crypt.crypt(password, hashed) or "", hashed)


def user_by_email(email: str) -> dict[str, Any] | None:
    with connect() as conn:
        row = conn.execute('SELECT * FROM "user" WHERE email = ?', (email,)).fetchone()
    return dict(row) if row else None


def user_by_id(user_id: str) -> dict[str, Any] | None:
    with connect() as conn:
        row = conn.execute('SELECT * FROM "user" WHERE id = ?', (user_id,)).fetchone()
    return dict(row) if row else None


def user_count() -> int:
    with connect() as conn:
        return int(conn.execute('SELECT count(*) FROM "user"').fetchone()[0])


def insert_account(email: str, hashed: str, name: str, role: str,
                   profile_image_url: str = "/user.png") -> dict[str, Any]:
    user_id, now = str(uuid.uuid4()), int(time.time())
    with connect() as conn:
        conn.execute("INSERT INTO auth (id, email, password, active) VALUES (?, ?, ?, 1)",
                     (user_id, email, hashed))
        conn.execute('INSERT INTO "user" (id, name, email, role, profile_image_url, last_active_at, '
                     "updated_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (user_id, name, email, role, profile_image_url, now, now, now))
    return user_by_id(user_id) or {}


def set_password(user_id: str, hashed: str) -> bool:
    with connect() as conn:
        return conn.execute("UPDATE auth SET password = ? WHERE id = ?", (hashed, user_id)).rowcount == 1


def set_role(user_id: str, role: str) -> dict[str, Any] | None:
    with connect() as conn:
        conn.execute('UPDATE "user" SET role = ? WHERE id = ?', (role, user_id))
    return user_by_id(user_id)


def authenticate(email: str, password: str) -> dict[str, Any] | None:
    user = user_by_email(email.lower())
    if not user:
        return None
    with connect() as conn:
        row = conn.execute("SELECT password FROM auth WHERE id = ? AND active = 1", (user["id"],)).fetchone()
    return user if row and verify_password(password, row["password"]) else None


def stored_config() -> dict[str, Any]:
    with connect() as conn:
        row = conn.execute("SELECT data FROM config ORDER BY id DESC LIMIT 1").fetchone()
    return json.loads(row["data"]) if row else {}


def store_config(data: dict[str, Any]) -> None:
    now = int(time.time())
    with connect() as conn:
        if conn.execute("SELECT count(*) FROM config").fetchone()[0]:
            conn.execute("UPDATE config SET data = ?, updated_at = ?", (json.dumps(data), now))
        else:
            conn.execute("INSERT INTO config (data, version, created_at, updated_at) VALUES (?, 0, ?, ?)",
                         (json.dumps(data), now, now))


def signup_enabled() -> bool:
    """``ENABLE_SIGNUP``: the stored value once there is one, else the environment's (default true)."""
    stored = stored_config().get("ui", {}).get("enable_signup")
    if stored is not None and _env_true("ENABLE_PERSISTENT_CONFIG", "true"):
        return bool(stored)
    return _env_true("ENABLE_SIGNUP", "true")


def set_signup(enabled: bool) -> None:
    data = stored_config()
    data.setdefault("ui", {})["enable_signup"] = enabled
    store_config(data)


# -- the API ---------------------------------------------------------------------------------------
class OpenWebUIDouble:
    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}  # token -> user id (the real one signs a JWT; lost on restart too)
        connect().close()

    def _session(self, user: dict[str, Any]) -> dict[str, Any]:
        token = secrets.token_hex(24)
        self.tokens[token] = user["id"]
        return {"id": user["id"], "email": user["email"], "name": user["name"], "role": user["role"],
                "profile_image_url": user.get("profile_image_url") or "/user.png", "token": token,
                "token_type": "Bearer", "expires_at": int(time.time()) + JWT_LIFETIME_S,
                "permissions": PERMISSIONS}

    def _admin(self, headers: Any) -> tuple[int, str] | None:
        """``None`` for an admin's token, else Open WebUI's refusal: no token, an unknown one, a
        user who is not an admin."""
        auth = headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return 401, NOT_AUTHENTICATED
        user_id = self.tokens.get(auth.removeprefix("Bearer ").strip())
        user = user_by_id(user_id) if user_id else None
        if user is None:
            return 401, UNAUTHORIZED
        return None if user["role"] == "admin" else (401, ACCESS_PROHIBITED)

    @staticmethod
    def _missing(body: Any, fields: tuple[str, ...]) -> tuple[int, Any] | None:
        """FastAPI's 422 for a body without its required fields, one entry per field."""
        given = body if isinstance(body, dict) else {}
        missing = [name for name in fields if name not in given]
        if not missing:
            return None
        return 422, {"detail": [{"type": "missing", "loc": ["body", name], "msg": "Field required",
                                 "input": body} for name in missing]}

    def handle(self, method: str, path: str, headers: Any, body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/health":
            return 200, {"status": True}
        if method == "GET" and path == "/":  # the web app's page, as the real one serves it to a browser
            return 200, "<!doctype html><title>Open WebUI (lab stand-in)</title>"
        if method == "GET" and path == "/api/config":
            onboarding = {"onboarding": True} if user_count() == 0 else {}  # the key only while no user
            return 200, {**onboarding, "status": True, "name": "Open WebUI", "version": "0.6.34",
                         "default_locale": "", "oauth": {"providers": {}},
                         "features": {"auth": True, "auth_trusted_header": False,
                                      "enable_signup_password_confirmation": False, "enable_ldap": False,
                                      "enable_api_key": True, "enable_signup": signup_enabled(),
                                      "enable_login_form": True, "enable_websocket": True,
                                      "enable_version_update_check": False}}
        if method == "POST" and path == "/api/v1/auths/signin":
            refused = self._missing(body, ("email", "password"))
            if refused:
                return refused
            user = authenticate(str(body["email"]), str(body["password"]))
            return (200, self._session(user)) if user else (400, {"detail": INVALID_CRED})
        if method == "POST" and path == "/api/v1/auths/signup":
            refused = self._missing(body, ("name", "email", "password"))
            if refused:
                return refused
            has_users = user_count() > 0
            if not signup_enabled() and (has_users or not _env_true("ENABLE_INITIAL_ADMIN_SIGNUP", "false")):
                return 403, {"detail": ACCESS_PROHIBITED}
            email = str(body["email"]).lower()
            if user_by_email(email):
                return 400, {"detail": EMAIL_TAKEN}
            role = "admin" if not has_users else os.environ.get("DEFAULT_USER_ROLE", "pending")
            user = insert_account(email, password_hash(str(body["password"])), str(body["name"]), role)
            if not has_users:
                set_signup(False)  # the first account closes sign-up, stored (auths.py)
            return 200, self._session(user)
        if path == "/api/v1/auths/admin/config":
            refused = self._admin(headers)
            if refused:
                return refused[0], {"detail": refused[1]}
            if method == "POST":
                required = tuple(name for name in ADMIN_CONFIG_DEFAULTS if not name.startswith(
                    ("PENDING_USER_OVERLAY", "RESPONSE_WATERMARK")))  # those three have defaults
                refused_body = self._missing(body, required)
                if refused_body:
                    return refused_body
                set_signup(bool(body["ENABLE_SIGNUP"]))
            return 200, {**ADMIN_CONFIG_DEFAULTS, "ENABLE_SIGNUP": signup_enabled()}
        return 200, INDEX_HTML  # the web app's page, for every other path (/api/... too)


def serve(double: OpenWebUIDouble, bind: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                status, answer = 422, {"detail": [{"type": "json_invalid", "msg": "JSON decode error"}]}
            else:
                status, answer = double.handle(self.command, self.path.split("?", 1)[0], self.headers, body)
            text = isinstance(answer, str)
            payload = answer.encode() if text else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8" if text else "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer  # noqa: N815 - stdlib names

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer((bind, port), Handler)
    server.daemon_threads = True
    return server
