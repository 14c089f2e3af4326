"""The lab's Open WebUI double answers as the real Open WebUI 0.6.34 did: the exchanges recorded against
the real backend (tests/fixtures/openwebui-recorded, its README says how) are replayed in their order
against the double, with the deploy's account script run where it was run then, and every answer
must have the recorded status and the recorded body (ids, tokens and expiry times aside)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import requests
from test_openwebui_admin import account

from lab.doubles import openwebui_double

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "openwebui-recorded"
VOLATILE = {"id", "token", "expires_at"}
# the passwords behind the recordings' "<password>": the admin's first and second, anything else
FIRST, SECOND = "first-admin-pw-1", "second-admin-pw-2"
PASSWORDS = {"08": FIRST, "09": "not-the-password", "13": FIRST, "14": SECOND}


def _comparable(value):
    if isinstance(value, dict):
        return {key: ("<volatile>" if key in VOLATILE else _comparable(item)) for key, item in value.items()}
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    return value


def _fill(value, password: str):
    if value == "<password>":
        return password
    if isinstance(value, dict):
        return {key: _fill(item, password) for key, item in value.items()}
    return value


@pytest.fixture
def double(tmp_path, monkeypatch):
    monkeypatch.setattr(openwebui_double, "DATABASE", tmp_path / "webui.db")
    monkeypatch.setenv("ENABLE_SIGNUP", "false")  # as the recording's server ran (and the deploy runs it)
    monkeypatch.setenv("LAB_WEBUI_BCRYPT_COST", "4")
    monkeypatch.delenv("ENABLE_INITIAL_ADMIN_SIGNUP", raising=False)
    server = openwebui_double.serve(openwebui_double.OpenWebUIDouble(), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path / "webui.db"
    server.shutdown()


def test_the_recorded_exchanges_replay_against_the_double(double):
    url, database = double
    tokens: dict[str, str] = {}  # "admin" / "pending": the last session of each
    replayed = 0
    for path in sorted(RECORDED.glob("*.json")):
        number = path.name[:2]
        recorded = json.loads(path.read_text())
        if "command" in recorded:  # a run of the account script
            if "by-path" in path.name:
                continue  # run from the repository by its path: not how the deploy runs it (README)
            assert recorded["stdin"]["password"] == "<password>"
            done = account(database, email=recorded["stdin"]["email"], name=recorded["stdin"]["name"],
                           password=FIRST if number == "07" else SECOND)
            assert (done.returncode, done.stdout) == (recorded["exit_code"], recorded["stdout"]), path.name
            continue
        request, expected = recorded["request"], recorded["response"]
        headers = {}
        if "Authorization" in (request.get("headers") or {}):
            holder = "pending" if "pending" in path.name else "bogus" if "bad-token" in path.name else "admin"
            headers["Authorization"] = f"Bearer {tokens.get(holder, 'not-a-token-it-issued')}"
        body = _fill(request.get("body"), PASSWORDS.get(number, "any-other-password-1"))
        answer = requests.request(request["method"], url + request["path"], headers=headers, timeout=10,
                                  **({"json": body} if body is not None else {}))
        assert answer.status_code == expected["status"], (path.name, answer.text[:300])
        if isinstance(expected["body"], str):
            assert answer.headers["Content-Type"].startswith("text/html"), path.name
            assert answer.text.startswith(expected["body"][:40]), path.name
        else:
            got = answer.json()
            assert _comparable(got) == _comparable(expected["body"]), path.name
            if isinstance(got, dict) and "token" in got:
                tokens[got["role"]] = got["token"]
        replayed += 1
    assert replayed >= 25
