"""Replay every recorded Pi-hole FTL v6.2.3 exchange against the Pi-hole double.

``shared/reference/pihole-recorded/ftl-v6.2.3-exchanges.txt`` holds one exchange a line
(``label | METHOD path | status | body``), recorded in order against the real engine. They are sent
in the same order to one fresh double: the status must be equal and the body equal value for value,
except the recording's masked parts (``<t>``/``<n>`` any number, ``<X>``/``<s>`` any string).
The request bodies were not recorded: the label says which password a login sent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import requests

from lab.doubles.pihole_double import PiholeDouble, serve

RECORDED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "pihole-recorded"
if not RECORDED.is_dir():
    RECORDED = Path("/work/shared/reference/pihole-recorded")
EXCHANGES = RECORDED / "ftl-v6.2.3-exchanges.txt"
PASSWORD = "Recorded-right-pw-1"  # noqa: S105 - test value
ANY_NUMBER = "\0number"


def exchanges() -> list[tuple[str, str, str, int, str]]:
    """(label, method, path, status, body text) for each recorded line."""
    found = []
    for line in EXCHANGES.read_text().splitlines():
        if not line.strip():
            continue
        label, request, status, body = (part.strip() for part in line.split(" | ", 3))
        method, path = request.split()
        found.append((label, method, path, int(status), body))
    return found


def recorded_body(text: str) -> Any:
    return json.loads(re.sub(r'(?<!")<[tn]>(?!")', lambda _: json.dumps(ANY_NUMBER), text))


def matches(expected: Any, got: Any) -> bool:
    if expected == ANY_NUMBER:
        return isinstance(got, int | float) and not isinstance(got, bool)
    if expected in ("<X>", "<s>"):
        return isinstance(got, str)
    if isinstance(expected, dict):
        return isinstance(got, dict) and set(got) == set(expected) and all(
            matches(value, got[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(got, list)
            and len(got) == len(expected)
            and all(matches(a, b) for a, b in zip(expected, got, strict=True))
        )
    return type(got) is type(expected) and got == expected


class Replayer:
    """Sends a recorded request with what its label says: the right or a wrong password, no session
    id, the live one or the one logged out before."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sid: str | None = None
        self.old_sid: str | None = None

    def send(self, label: str, method: str, path: str) -> requests.Response:
        headers = {}
        sid = None if "no sid" in label else self.old_sid if "old sid" in label else self.sid
        if sid:
            headers["X-FTL-SID"] = sid
        body = None
        if method == "POST" and path == "/api/auth" and "no body" not in label:
            password = PASSWORD if "right pw" in label else "a-wrong-password"
            body = json.dumps({"password": password})
        answer = requests.request(method, self.url + path, headers=headers, data=body, timeout=5)
        if (method, path, answer.status_code) == ("POST", "/api/auth", 200):
            self.sid = answer.json()["session"]["sid"]
        if (method, path, answer.status_code) == ("DELETE", "/api/auth", 204):
            self.old_sid, self.sid = self.sid, None
        return answer


def test_recorded_exchanges_replay_through_the_double() -> None:
    double = PiholeDouble(PASSWORD)
    replayed = 0
    with serve(double) as served:
        # the recording's session list shows one more session, opened before the recorded exchanges
        requests.post(f"{served.url}/api/auth", json={"password": PASSWORD}, timeout=5)
        replayer = Replayer(served.url)
        for label, method, path, status, body in exchanges():
            answer = replayer.send(label, method, path)
            where = f"{label}: {method} {path}"
            assert answer.status_code == status, (where, answer.text)
            if not body:
                assert answer.text == "", where
            else:
                assert matches(recorded_body(body), answer.json()), (where, body, answer.text)
            replayed += 1
    assert replayed == len(exchanges()) > 30


def test_the_comparison_is_strict() -> None:
    expected = recorded_body(
        '{"error":{"key":"bad_request","message":"Invalid value","hint":"x"},"took":<t>}'
    )
    assert matches(expected, {"error": {"key": "bad_request", "message": "Invalid value", "hint": "x"},
                              "took": 0.1})
    assert not matches(expected, {"error": {"key": "bad_request", "message": "Invalid value", "hint": None},
                                  "took": 0.1})
    assert not matches(recorded_body('{"took":<t>}'), {"took": 0.1, "config": {}})
