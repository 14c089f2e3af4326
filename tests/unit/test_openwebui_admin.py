"""Open WebUI's admin account: the client (operations/clients/openwebui.py) against the lab's double of
Open WebUI 0.6.34's account API (lab/doubles/openwebui_double.py, served in this process on a real
SQLite webui.db), and the account script (operations/openwebui_account.py) run as the deploy runs it
in the container: a separate Python with the stand-in's `open_webui` package on its path and the
account on stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lab.doubles import openwebui_double
from operations.clients.openwebui import OpenWebUIClient, OpenWebUIError, OpenWebUIUnreachable
from operations.openwebui import ACCOUNT_SCRIPT, account_command

ROOT = Path(__file__).resolve().parents[2]
EMAIL, PASSWORD = "admin@home.example.com", "open-webui-admin-secret"


@pytest.fixture
def webui(tmp_path, monkeypatch):
    """The double on a fresh webui.db, started as the deploy starts Open WebUI (ENABLE_SIGNUP=false)."""
    database = tmp_path / "data" / "webui.db"
    monkeypatch.setattr(openwebui_double, "DATABASE", database)
    monkeypatch.setenv("ENABLE_SIGNUP", "false")
    monkeypatch.delenv("ENABLE_INITIAL_ADMIN_SIGNUP", raising=False)
    monkeypatch.setenv("LAB_WEBUI_BCRYPT_COST", "4")  # the scripts' subprocesses inherit it
    server = openwebui_double.serve(openwebui_double.OpenWebUIDouble(), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", database
    server.shutdown()


def account(database: Path, email: str = EMAIL, password: str = PASSWORD, name: str = "Admin"):
    """The account script, run as `docker exec -i open-webui python3 -c …` runs it in the stand-in image."""
    env = {**os.environ, "LAB_WEBUI_DB": str(database),
           "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'lab' / 'openwebui_shim'}"}
    return subprocess.run([sys.executable, "-W", "ignore", str(ACCOUNT_SCRIPT)], env=env, text=True,
                          input=json.dumps({"email": email, "password": password, "name": name}),
                          capture_output=True, timeout=60)


def signup(url: str, email: str) -> tuple[int, str]:
    import requests

    form = {"name": "X", "email": email, "password": "pw12345678"}
    answer = requests.post(f"{url}/api/v1/auths/signup", json=form, timeout=10)
    return answer.status_code, answer.json().get("detail", "")


def test_signup_is_closed_from_the_first_start_even_for_the_first_account(webui):
    url, _ = webui
    assert signup(url, "stranger@example.com") == (403, openwebui_double.ACCESS_PROHIBITED)
    client = OpenWebUIClient(url, EMAIL, PASSWORD)
    assert client.config()["onboarding"] is True
    assert client.state() == {"account": "refused", "signup": False}


def test_the_account_script_makes_the_admin_and_it_signs_in(webui):
    url, database = webui
    made = account(database)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == f"homelab: Open WebUI admin {EMAIL} created"
    client = OpenWebUIClient(url, EMAIL, PASSWORD)
    assert client.state() == {"account": "admin", "signup": False}
    assert signup(url, "stranger@example.com")[0] == 403
    # the password is stored as Open WebUI stores it: a bcrypt hash, never the text
    import sqlite3

    (stored,) = sqlite3.connect(database).execute("SELECT password FROM auth").fetchone()
    assert stored.startswith("$2b$04$") and PASSWORD not in stored


def test_a_changed_password_is_set_on_the_same_account(webui):
    url, database = webui
    assert account(database).returncode == 0
    rotated = account(database, password="the-next-admin-secret")
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.strip() == f"homelab: Open WebUI admin {EMAIL}: password set"
    assert OpenWebUIClient(url, EMAIL, PASSWORD).state()["account"] == "refused"
    assert OpenWebUIClient(url, EMAIL, "the-next-admin-secret").state()["account"] == "admin"
    assert openwebui_double.user_count() == 1


def test_an_existing_user_with_the_email_is_made_admin(webui, monkeypatch):
    url, database = webui
    monkeypatch.setenv("ENABLE_SIGNUP", "true")
    assert signup(url, "first@example.com")[0] == 200  # the first account: admin, sign-up then closed
    monkeypatch.setenv("ENABLE_INITIAL_ADMIN_SIGNUP", "false")
    openwebui_double.set_signup(True)
    assert signup(url, EMAIL)[0] == 200  # a later one: pending
    assert OpenWebUIClient(url, EMAIL, "pw12345678").state()["account"] == "pending"
    made = account(database)
    assert made.stdout.strip() == f"homelab: Open WebUI admin {EMAIL}: password set, made admin", made.stderr
    assert OpenWebUIClient(url, EMAIL, PASSWORD).state() == {"account": "admin", "signup": True}


def test_a_stored_open_signup_is_closed_through_the_admin_api(webui):
    url, database = webui
    account(database)
    openwebui_double.set_signup(True)  # an admin opened it in Admin Settings: stored, it outranks the env
    client = OpenWebUIClient(url, EMAIL, PASSWORD)
    assert client.state()["signup"] is True
    client.close_signup()
    assert client.state() == {"account": "admin", "signup": False}
    assert signup(url, "stranger@example.com")[0] == 403


def test_errors_never_show_the_password(webui):
    url, _ = webui
    with pytest.raises(OpenWebUIError) as info:
        OpenWebUIClient(url, EMAIL, PASSWORD).close_signup()
    assert PASSWORD not in str(info.value) and "does not sign in" in str(info.value)
    with pytest.raises(OpenWebUIUnreachable) as info:
        OpenWebUIClient("http://127.0.0.1:9", EMAIL, PASSWORD).state()
    assert PASSWORD not in str(info.value) and "no answer from Open WebUI" in str(info.value)
    assert PASSWORD not in repr(OpenWebUIClient(url, EMAIL, PASSWORD))


def test_the_script_in_a_container_without_open_webui_fails_in_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, str(ACCOUNT_SCRIPT)], env=env, text=True, capture_output=True,
                          input=json.dumps({"email": EMAIL, "password": PASSWORD, "name": "Admin"}))
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("homelab: this container has no Open WebUI to ask") and PASSWORD not in line


def test_the_docker_exec_command_takes_the_account_from_the_file_and_always_removes_it(tmp_path):
    command = account_command("open-webui", "/opt/homelab/open-webui/.admin-account.json")
    assert command.startswith("docker exec -i open-webui python3 -c ")
    assert command.endswith("< /opt/homelab/open-webui/.admin-account.json; status=$?; "
                            "rm -f /opt/homelab/open-webui/.admin-account.json; exit $status")
    # the program on the command line is the script itself (base64), run as it is: no secret in it
    fake = tmp_path / "docker"
    fake.write_text(f"#!/bin/sh\nshift 3\nexec {sys.executable} \"$@\"\n")  # docker exec -i NAME python3 …
    fake.chmod(0o755)
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"email": EMAIL, "password": PASSWORD, "name": "Admin"}))
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(tmp_path)}
    command = account_command("open-webui", str(payload)).replace("python3 -c", "-c")
    done = subprocess.run(["sh", "-c", command], env=env, text=True, capture_output=True)
    assert done.returncode == 1 and "no Open WebUI to ask" in done.stderr  # the script ran, from the file
    assert not payload.exists()


def test_an_unexpected_answer_never_carries_the_password(webui):
    """Open WebUI's 422 echoes the request body, the password in it, as `input`: redacted in errors."""
    import http.server

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            detail = [{"type": "x", "loc": ["body"], "input": json.loads(body)}]
            answer = json.dumps({"detail": detail}).encode()
            self.send_response(422)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(OpenWebUIError) as info:
            OpenWebUIClient(f"http://127.0.0.1:{server.server_address[1]}", EMAIL, PASSWORD).sign_in()
    finally:
        server.shutdown()
    assert "422" in str(info.value) and PASSWORD not in str(info.value)
