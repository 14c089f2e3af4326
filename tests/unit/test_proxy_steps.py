"""While planning, an API that does not answer is asked once per host (not once per operation) and
a line says so; while executing every call goes through (the service may have started meanwhile).
Pi-hole's client factory asks Pi-hole when it makes the client, so a Pi-hole that does not answer is
found there and said naming the part that failed."""

import time
from types import SimpleNamespace

import paramiko
import pytest

from deploys.library import proxy_steps, tunnel
from deploys.library.catalog import NETWORK
from lab.doubles.pihole_double import PiholeDouble
from lab.doubles.pihole_double import serve as serve_pihole
from operations.clients import ServiceUnreachable
from operations.clients.pihole import PiholeClient, PiholeUnreachable


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


# --- Pi-hole's client factory asks Pi-hole once when it makes the client -----------------------------

PIHOLE_ADDRESS = "172.18.0.3"


class Refused:
    """The tunnel's SSH transport: the host refuses to connect to the port (nothing listens there)."""

    def is_active(self) -> bool:
        return True

    def open_channel(self, kind, dest_addr, src_addr, timeout):
        raise paramiko.ChannelException(2, "Connect failed")


def _pihole_host(monkeypatch, executing: bool, url: str) -> SimpleNamespace:
    """A host whose Pi-hole container has an address on the Docker network, its tunnel already open and
    leading to ``url``."""
    server = SimpleNamespace(
        name="server", state=SimpleNamespace(is_executing=executing),
        get_fact=lambda fact: {"pihole": {NETWORK: PIHOLE_ADDRESS}},
    )
    port = int(url.rsplit(":", 1)[1])
    tunnels = {("server", PIHOLE_ADDRESS, 80): SimpleNamespace(is_active=True, local_bind_port=port,
                                                               _transport=Refused())}
    monkeypatch.setattr(tunnel, "current_host", server)
    monkeypatch.setattr(proxy_steps, "host", server)
    monkeypatch.setattr(tunnel, "current_run", lambda: SimpleNamespace(tunnels=tunnels))
    return server


CTX = SimpleNamespace(settings=SimpleNamespace(pihole_password="Pihole-factory-pw-3"))


def test_planning_with_pihole_not_answering_says_so_in_one_line_quickly(monkeypatch, caplog) -> None:
    _pihole_host(monkeypatch, executing=False, url="http://127.0.0.1:9")
    factory = proxy_steps._pihole_factory(CTX)
    started = time.monotonic()
    with pytest.raises(PiholeUnreachable) as caught:
        factory()
    took = time.monotonic() - started
    assert str(caught.value) == (
        f"SSH to server works, but the tunnel to {PIHOLE_ADDRESS}:80 is refused there: nothing accepts "
        "connections on that port (Pi-hole not running or not listening there) (Pi-hole at "
        "http://127.0.0.1:9 did not answer within 2s (last: no answer yet))"
    )
    assert tunnel.PLANNING_WAIT <= took < tunnel.PLANNING_WAIT + 2
    with pytest.raises(PiholeUnreachable):  # asked once: the next operation is told at once
        factory()
    assert time.monotonic() - started < took + 0.5
    said = [r.getMessage() for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("server: Pi-hole does not answer (SSH to server works")
    assert "planned as if it held nothing" in said[0]
    assert CTX.settings.pihole_password not in caplog.text


@pytest.mark.parametrize("executing, waited", [(False, tunnel.PLANNING_WAIT),
                                               (True, proxy_steps.PIHOLE_READY_TIMEOUT)])
def test_the_pihole_factory_waits_for_the_api_once_per_phase(monkeypatch, executing, waited) -> None:
    double = PiholeDouble(CTX.settings.pihole_password)
    waits = []
    original = PiholeClient.wait_ready

    def wait_ready(self, timeout, **kwargs):
        waits.append(timeout)
        return original(self, timeout, **kwargs)

    monkeypatch.setattr(PiholeClient, "wait_ready", wait_ready)
    with serve_pihole(double) as served:
        _pihole_host(monkeypatch, executing=executing, url=served.url)
        factory = proxy_steps._pihole_factory(CTX)
        for _ in range(2):
            with factory() as client:
                assert client.get_hosts() == []
    assert waits == [waited]
    assert double.logins == double.logouts == 2
