"""Replay every recorded NPM exchange the client can meet against the NPM double.

Each run of ``shared/reference/npm-recorded/`` is replayed in order against a fresh double of the
same version (so ids line up); status codes must be equal, bodies equal in shape (keys and value
types, not dates or tokens), and error messages equal word for word. ``SKIPPED`` lists the
exchanges left out, each with its reason.

The failure-path transcripts (``v2.15.1-failure-paths/*.jsonl``: certificate requests that fail,
nginx rejecting a host, foreign hosts, expired and garbage tokens) are replayed whole against one
double seeded with the recorded server's starting state, and must match status and body exactly
(times and tokens aside).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from lab.doubles.npm_double import NpmDouble, serve

RECORDED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "npm-recorded"
if not RECORDED.is_dir():
    RECORDED = Path("/work/shared/reference/npm-recorded")

SKIPPED = {
    "v2.15.1/77-certificates-upload-custom.json": "custom-certificate upload; the client never uploads",
    "v2.15.1/78-certificates-get-custom.json": "returns the uploaded PEM pair (77 is skipped)",
    "v2.15.1/89-schema.json": "the OpenAPI document; the client never reads it",
    **{
        f"v2.15.1/{name}": "viewer permissions and 2FA: the client logs in only as the configured admin "
        "(and the viewer's own login was not recorded, so its token cannot be replayed)"
        for name in (
            "98-users-create-viewer.json",
            "99-users-set-viewer-permissions.json",
            "100-viewer-proxy-hosts-list.json",
            "101-viewer-proxy-hosts-get-admins-host.json",
            "102-viewer-proxy-hosts-create.json",
            "103-viewer-proxy-hosts-update-admins-host.json",
            "104-viewer-proxy-hosts-delete-admins-host.json",
            "105-viewer-access-lists-list.json",
            "106-viewer-users-list.json",
            "107-users-create-2fa-user.json",
            "108-users-me-2fa-start.json",
            "109-users-me-2fa-enable.json",
            "110-tokens-login-2fa-user.json",
            "111-tokens-2fa-wrong-code.json",
            "112-tokens-2fa-good-code.json",
        )
    },
}

# (segment name, recorded folder, first file number, last file number, double options)
SEGMENTS = [
    ("v2.15.1 setup mode", "v2.15.1", 1, 112, {"version": "2.15.1"}),
    ("v2.15.1 part 3", "v2.15.1", 113, 125, {"version": "2.15.1"}),
    ("v2.12.6 default admin", "v2.12", 1, 99, {"version": "2.12.6"}),
    (
        "v2.15.1 env admin",
        "v2.15.1-initial-admin-env",
        1,
        9,
        {"version": "2.15.1", "initial_admin": ("admin@example.com", "Env-pass-123")},
    ),
    (
        "v2.15.1 env mixed case",
        "v2.15.1-initial-admin-env",
        11,
        19,
        {"version": "2.15.1", "initial_admin": ("Admin@Example.com", "Env-pass-123")},
    ),
    ("v2.15.1 env email only", "v2.15.1-initial-admin-env", 21, 29, {"version": "2.15.1"}),
]


def shape(value: Any) -> Any:
    """Keys and value types, recursively; lists by their first element."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def _files(folder: str, first: int, last: int) -> list[Path]:
    found = [p for p in (RECORDED / folder).glob("[0-9]*.json") if first <= int(p.name.split("-")[0]) <= last]
    return sorted(found, key=lambda p: int(p.name.split("-")[0]))


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Replayer:
    """Sends recorded requests, standing in the live tokens for the recording's ``<token>``."""

    def __init__(self, url: str, clock: Clock) -> None:
        self.url = url
        self.clock = clock
        self.login_token = ""
        self.refresh: tuple[str, float] | None = None

    def _headers(self, recorded: dict, expect_expired: bool) -> dict[str, str]:
        headers = dict(recorded.get("headers") or {})
        if headers.get("Authorization") == "Bearer <token>":
            token = self.login_token
            if expect_expired and self.refresh:
                token = self.refresh[0]
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def send(self, exchange: dict) -> requests.Response:
        request, response = exchange["request"], exchange["response"]
        body = response.get("body")
        expect_expired = (
            isinstance(body, dict) and body.get("error", {}).get("message") == "Token has expired"
        )
        if expect_expired and self.refresh:
            self.clock.now = max(self.clock.now, self.refresh[1] + 1)
        payload = request.get("body")
        data = payload if isinstance(payload, str) else None if payload is None else json.dumps(payload)
        answer = requests.request(
            request["method"],
            self.url + request["path"],
            headers=self._headers(request, expect_expired),
            data=data,
            allow_redirects=False,
            timeout=5,
        )
        self._remember(request, answer)
        return answer

    def _remember(self, request: dict, answer: requests.Response) -> None:
        if answer.status_code != 200 or not request["path"].startswith("/api/tokens"):
            return
        issued = answer.json()["token"]
        if request["method"] == "POST":
            self.login_token = issued
        else:
            lifetime = {"2s": 2.0}.get(request["path"].partition("expiry=")[2], 86400.0)
            self.refresh = (issued, self.clock.now + lifetime)


def _cases() -> Iterator[Any]:
    for name, folder, first, last, options in SEGMENTS:
        yield pytest.param(folder, first, last, options, id=name)


@pytest.mark.parametrize(("folder", "first", "last", "options"), list(_cases()))
def test_recorded_exchanges_replay_through_the_double(
    folder: str, first: int, last: int, options: dict
) -> None:
    clock = Clock()
    double = NpmDouble(letsencrypt_ok=False, clock=clock, **options)
    replayed = 0
    with serve(double) as served:
        replayer = Replayer(served.url, clock)
        for path in _files(folder, first, last):
            key = f"{folder}/{path.name}"
            if key in SKIPPED:
                continue
            exchange = json.loads(path.read_text())
            answer = replayer.send(exchange)
            expected = exchange["response"]
            assert answer.status_code == expected["status"], (key, answer.text)
            got = answer.text if isinstance(expected["body"], str) else answer.json()
            if isinstance(expected["body"], str):
                assert got == expected["body"], key
                continue
            assert shape(got) == shape(expected["body"]), key
            if isinstance(expected["body"], dict) and "error" in expected["body"]:
                assert got["error"]["message"] == expected["body"]["error"]["message"], key
            replayed += 1
    assert replayed > 0


def test_every_recorded_file_is_replayed_or_skipped_with_a_reason() -> None:
    covered = {
        f"{folder}/{p.name}" for _, folder, first, last, _ in SEGMENTS for p in _files(folder, first, last)
    }
    recorded = {f"{p.parent.name}/{p.name}" for p in RECORDED.glob("*/[0-9]*.json")}
    assert recorded == covered
    assert set(SKIPPED) <= recorded


# -- failure paths (JSON lines, one server, state carried from one file to the next) -----------------
FAILURE_PATHS = RECORDED / "v2.15.1-failure-paths"
FAILURE_FILES = ("proxy-hosts.jsonl", "tokens-and-foreign-hosts.jsonl")
# what differs between two runs of the same server, not between servers: times and tokens
VOLATILE = {"created_on", "modified_on", "expires_on", "expires", "expiredAt", "token"}
GARBAGE_TOKEN_STEPS = {"f2-garbage-token"}  # the recording sent a token the server never issued


def normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: "<volatile>" if key in VOLATILE else normalised(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalised(item) for item in value]
    return value


def _failure_exchanges() -> list[dict]:
    return [
        json.loads(line)
        for name in FAILURE_FILES
        for line in (FAILURE_PATHS / name).read_text().splitlines()
        if line.strip()
    ]


def _seeded_double(first: list[dict], clock: Clock) -> NpmDouble:
    """A 2.15.1 double holding what the recorded server held when the transcript starts: its admin
    (the throwaway password the recording logs in with) and the proxy hosts of the first listing."""
    double = NpmDouble("2.15.1", letsencrypt_ok=False, clock=clock)
    login = next(e for e in first if e["path"] == "/api/tokens" and e["method"] == "POST")["body"]
    double._add_user(login["identity"], login["secret"], "Administrator", "Admin", ["admin"])
    listing = next(e for e in first if e["path"] == "/api/nginx/proxy-hosts" and e["method"] == "GET")
    for host in listing["response"]:
        double.proxy_hosts[host["id"]] = {**host, "meta": dict(host["meta"]), "is_deleted": False}
    double._ids["proxy"] = max(double.proxy_hosts)
    return double


def test_failure_path_recordings_replay_through_the_double_with_the_same_answers() -> None:
    """Every exchange of the 2.15.1 failure-path transcripts, in order, against one double: the same
    status and the same body (times and tokens aside). Certificate requests fail until the steps
    named ``e*`` (recorded with a certbot that succeeds)."""
    exchanges = _failure_exchanges()
    clock = Clock()
    double = _seeded_double(exchanges, clock)
    token = ""
    with serve(double) as served:
        for number, exchange in enumerate(exchanges):
            where = f"{exchange['step']} #{number}: {exchange['method']} {exchange['path']}"
            double.letsencrypt_ok = exchange["step"].startswith("e")
            expected = exchange["response"]
            if isinstance(expected, dict) and expected.get("error", {}).get("message") == "Token has expired":
                clock.now += 3  # the token came from GET /api/tokens?expiry=2s
            headers = {}
            if exchange["auth"]:
                sent = "garbage" if exchange["step"] in GARBAGE_TOKEN_STEPS else token
                headers["Authorization"] = f"Bearer {sent}"
            answer = requests.request(
                exchange["method"],
                served.url + exchange["path"],
                headers=headers,
                json=exchange["body"],
                timeout=5,
            )
            assert answer.status_code == exchange["status"], (where, answer.text[:500])
            got = answer.json() if answer.content else None
            assert normalised(got) == normalised(expected), where
            if exchange["path"].startswith("/api/tokens") and answer.status_code == 200:
                token = got["token"]
    assert len(exchanges) == 147


def test_failed_certificate_update_stores_nothing_of_the_put() -> None:
    """c6: ``{"forward_port": 9090, "certificate_id": "new"}`` without a working certbot: 500, and the
    port stays what it was (the real server drops the whole PUT)."""
    double = NpmDouble("2.15.1", letsencrypt_ok=False, initial_admin=("owner@example.com", "Pass-1234567"))
    with serve(double) as served:
        token = requests.post(
            served.url + "/api/tokens",
            json={"identity": "owner@example.com", "secret": "Pass-1234567"},
            timeout=5,
        ).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        created = requests.post(
            served.url + "/api/nginx/proxy-hosts",
            json={
                "domain_names": ["a.example.com"],
                "forward_scheme": "http",
                "forward_host": "a",
                "forward_port": 8080,
            },
            headers=auth,
            timeout=5,
        ).json()
        answer = requests.put(
            served.url + f"/api/nginx/proxy-hosts/{created['id']}",
            json={"forward_port": 9090, "certificate_id": "new"},
            headers=auth,
            timeout=5,
        )
        assert answer.status_code == 500
        assert answer.json() == {"error": {"code": 500, "message": "Internal Error"}}
        stored = requests.get(served.url + f"/api/nginx/proxy-hosts/{created['id']}", headers=auth, timeout=5)
        assert stored.json()["forward_port"] == 8080
        assert stored.json()["certificate_id"] == 0
