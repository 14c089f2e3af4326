"""The NPM stand-in keeps what NPM keeps in its database (a real SQLite file in its data folder), so a
recreated container keeps its admin and proxy hosts; the Open WebUI stand-in has a real webui.db."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import requests

from lab.doubles.npm_double import NpmDatabase, NpmDouble, serve
from lab.standin import webui_database

EMAIL, PASSWORD = "owner@example.com", "Persist-pass-123"  # noqa: S105 - test value
HOST = {"domain_names": ["chat.example.test"], "forward_scheme": "http", "forward_host": "webui",
        "forward_port": 8080, "allow_websocket_upgrade": True}


def _started(path: Path, initial_admin: tuple[str, str] | None = (EMAIL, PASSWORD)) -> NpmDouble:
    """What the stand-in does at start: a double from the environment, then the stored state."""
    double = NpmDouble("2.15.1", initial_admin=initial_admin)
    double.store = NpmDatabase(path)
    double.store.load(double)
    double.store.save(double)
    return double


def _session(url: str, email: str = EMAIL, password: str = PASSWORD) -> requests.Session:
    session = requests.Session()
    answer = session.post(url + "/api/tokens", json={"identity": email, "secret": password}, timeout=5)
    assert answer.status_code == 200, answer.text
    session.headers["Authorization"] = f"Bearer {answer.json()['token']}"
    return session


def test_proxy_hosts_and_admin_survive_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "database.sqlite"
    with serve(_started(database)) as served:
        session = _session(served.url)
        kept = session.post(served.url + "/api/nginx/proxy-hosts", json=HOST, timeout=5).json()
        gone = session.post(served.url + "/api/nginx/proxy-hosts",
                            json={**HOST, "domain_names": ["old.example.test"]}, timeout=5).json()
        deleted = session.delete(served.url + f"/api/nginx/proxy-hosts/{gone['id']}", timeout=5)
        assert deleted.status_code == 200
        new_password = "Changed-pass-456"  # noqa: S105 - test value
        body = {"type": "password", "current": PASSWORD, "secret": new_password}
        changed = session.put(served.url + "/api/users/1/auth", json=body, timeout=5)
        assert changed.status_code == 200, changed.text

    # a new process on the same data folder, started without INITIAL_ADMIN_* as a recreated container
    with serve(_started(database, initial_admin=None)) as served:
        assert requests.get(served.url + "/api/", timeout=5).json()["setup"] is True
        session = _session(served.url, password=new_password)
        listed = session.get(served.url + "/api/nginx/proxy-hosts", timeout=5).json()
        assert [(h["id"], h["domain_names"], h["forward_host"]) for h in listed] == [
            (kept["id"], ["chat.example.test"], "webui")
        ]
        assert listed[0]["allow_websocket_upgrade"] is True
        # ids go on after the stored ones, as with NPM's autoincrement: a deleted host's id is not reused
        again = session.post(served.url + "/api/nginx/proxy-hosts",
                             json={**HOST, "domain_names": ["new.example.test"]}, timeout=5).json()
        assert again["id"] == gone["id"] + 1
        # the deleted name is free again, the kept one still in use
        in_use = session.post(served.url + "/api/nginx/proxy-hosts", json=HOST, timeout=5)
        assert in_use.status_code == 400 and "already in use" in in_use.text


def test_the_database_is_real_sqlite_with_npms_table_names(tmp_path: Path) -> None:
    database = tmp_path / "database.sqlite"
    with serve(_started(database)) as served:
        session = _session(served.url)
        session.post(served.url + "/api/nginx/proxy-hosts", json=HOST, timeout=5)
    conn = sqlite3.connect(database)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"user", "auth", "proxy_host", "certificate", "access_list"} <= tables
        assert conn.execute("SELECT count(*) FROM proxy_host").fetchone() == (1,)
    finally:
        conn.close()


def test_a_first_start_keeps_the_initial_admin_and_a_stored_admin_wins(tmp_path: Path) -> None:
    database = tmp_path / "database.sqlite"
    first = _started(database)
    assert [u["email"] for u in first.users.values()] == [EMAIL]
    # INITIAL_ADMIN_* changed later: NPM only reads them while it has no user, and so does the double
    later = _started(database, initial_admin=("other@example.com", "Other-pass-123"))
    assert [u["email"] for u in later.users.values()] == [EMAIL]
    assert later.passwords == {1: PASSWORD}


def test_no_database_means_the_state_the_environment_gives(tmp_path: Path) -> None:
    double = NpmDouble("2.15.1")
    assert NpmDatabase(tmp_path / "missing.sqlite").load(double) is False
    assert double.users == {} and double.health()["setup"] is False


def test_open_webui_database_has_a_user_table_and_is_never_replaced(tmp_path: Path) -> None:
    path = webui_database(tmp_path / "data" / "webui.db")
    conn = sqlite3.connect(path)
    try:
        columns = [row[1] for row in conn.execute('PRAGMA table_info("user")')]
        assert columns[:4] == ["id", "name", "email", "role"]
        with conn:
            conn.execute('INSERT INTO "user" (id, name, email, role) VALUES (?, ?, ?, ?)',
                         ("u1", "Owner", "owner@example.com", "admin"))
    finally:
        conn.close()
    webui_database(path)  # the next start
    conn = sqlite3.connect(path)
    try:
        assert conn.execute('SELECT email FROM "user"').fetchall() == [("owner@example.com",)]
    finally:
        conn.close()
