"""While planning, an API that does not answer is asked once per host (not once per operation) and
a line says so; while executing every call goes through (the service may have started meanwhile)."""

from types import SimpleNamespace

import pytest

from deploys.library import tunnel
from operations.clients import ServiceUnreachable


def _host(monkeypatch, executing: bool):
    monkeypatch.setattr(tunnel, "current_host", SimpleNamespace(name="server", state=SimpleNamespace(
        is_executing=executing)))


def test_planning_asks_an_unreachable_api_once_and_says_so(monkeypatch, caplog):
    _host(monkeypatch, executing=False)
    calls = []

    def make():
        calls.append(1)
        raise ServiceUnreachable("GET /api/: no answer from http://127.0.0.1:4001 (ConnectionError)")

    factory = tunnel.answering_once(make, "NGINX Proxy Manager")
    for _ in range(4):
        with pytest.raises(ServiceUnreachable):
            factory()
    assert len(calls) == 1
    lines = [r.getMessage() for r in caplog.records if "does not answer" in r.getMessage()]
    assert lines == [
        "server: NGINX Proxy Manager does not answer (GET /api/: no answer from http://127.0.0.1:4001 "
        "(ConnectionError)): planned as if it held nothing; the run waits for it (it starts earlier in the "
        "same run when it is not deployed yet)"
    ]


def test_executing_asks_every_time(monkeypatch):
    _host(monkeypatch, executing=True)
    answers = iter([ServiceUnreachable("down"), "client"])

    def make():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    factory = tunnel.answering_once(make, "Pi-hole")
    with pytest.raises(ServiceUnreachable):
        factory()
    assert factory() == "client"
