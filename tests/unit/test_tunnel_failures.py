"""An API reached through an SSH tunnel that does not answer says which part failed: SSH to the host,
the tunnel to the port (the host refuses to connect to it), or the service behind it. Scripted SSH
transports, no lab."""

from __future__ import annotations

from types import SimpleNamespace

import paramiko
import pytest

from deploys.library import tunnel
from operations.clients import ServiceUnreachable
from operations.clients.npm import NpmTimeout


class Channel:
    def close(self) -> None:
        pass


class Transport:
    """Answers ``open_channel`` with ``outcome``: an exception to raise, or a channel."""

    def __init__(self, outcome: Exception | None = None, active: bool = True) -> None:
        self.outcome, self.active, self.opened = outcome, active, []

    def is_active(self) -> bool:
        return self.active

    def open_channel(self, kind, dest_addr, src_addr, timeout):
        self.opened.append((kind, dest_addr))
        if self.outcome is not None:
            raise self.outcome
        return Channel()


def failed(transport: Transport | None) -> str:
    return tunnel.which_failed(SimpleNamespace(_transport=transport), "100.64.0.1", 81, "server",
                               "NGINX Proxy Manager")


def test_ssh_gone() -> None:
    assert failed(Transport(active=False)) == "SSH to server failed (the tunnel's connection is gone)"
    assert failed(None) == "SSH to server failed (the tunnel's connection is gone)"
    assert failed(Transport(paramiko.SSHException("closed"))) == "SSH to server stopped answering"


def test_the_tunnel_to_the_port_refused() -> None:
    transport = Transport(paramiko.ChannelException(2, "Connect failed"))
    assert failed(transport) == (
        "SSH to server works, but the tunnel to 100.64.0.1:81 is refused there: nothing accepts connections "
        "on that port (NGINX Proxy Manager not running or not listening there)"
    )
    assert transport.opened == [("direct-tcpip", ("100.64.0.1", 81))]


def test_the_service_behind_a_working_tunnel() -> None:
    assert failed(Transport()) == (
        "SSH to server and the tunnel to 100.64.0.1:81 work, but NGINX Proxy Manager behind it does not "
        "answer"
    )


@pytest.mark.parametrize("executing", [False, True])
def test_a_factory_whose_api_does_not_answer_names_the_part_that_failed(monkeypatch, executing) -> None:
    monkeypatch.setattr(tunnel, "current_host", SimpleNamespace(
        name="server", state=SimpleNamespace(is_executing=executing)))
    tunnels = {("server", "100.64.0.1", 81): SimpleNamespace(is_active=True, local_bind_port=4001,
                                                             _transport=Transport(
        paramiko.ChannelException(2, "Connect failed")))}
    monkeypatch.setattr(tunnel, "current_run", lambda: SimpleNamespace(tunnels=tunnels))

    def make():
        tunnel.local_url(SimpleNamespace(name="server"), "100.64.0.1", 81)
        raise NpmTimeout("NPM at http://127.0.0.1:4001 not ready after 120s (last: no answer)")

    with pytest.raises(NpmTimeout) as caught:  # the client's own error type: its operation reports it
        tunnel.answering_once(make, "NGINX Proxy Manager")()
    assert str(caught.value) == (
        "SSH to server works, but the tunnel to 100.64.0.1:81 is refused there: nothing accepts connections "
        "on that port (NGINX Proxy Manager not running or not listening there) (NPM at http://127.0.0.1:4001 "
        "not ready after 120s (last: no answer))"
    )
    assert tunnel._asked == {}


def test_ssh_that_fails_to_open_the_tunnel_says_so(monkeypatch) -> None:
    class Refusing:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def start(self) -> None:
            raise tunnel.sshtunnel.BaseSSHTunnelForwarderError("Could not establish session to SSH gateway")

    monkeypatch.setattr(tunnel.sshtunnel, "SSHTunnelForwarder", Refusing)
    monkeypatch.setattr(tunnel, "_nodelay_socket", lambda target: None)
    monkeypatch.setattr(tunnel, "current_run", lambda: SimpleNamespace(tunnels={}))
    host = SimpleNamespace(name="@homelab/server", data={"ssh_hostname": "10.0.0.5", "ssh_port": 2222})
    with pytest.raises(ServiceUnreachable) as caught:
        tunnel.local_url(host, "100.64.0.1", 81)
    assert str(caught.value) == (
        "SSH to @homelab/server (10.0.0.5:2222) failed, so no tunnel to 100.64.0.1:81 could be opened: "
        "Could not establish session to SSH gateway"
    )


def test_a_factory_whose_ssh_fails_names_the_service_it_was_for(monkeypatch) -> None:
    class Refusing:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def start(self) -> None:
            raise tunnel.sshtunnel.BaseSSHTunnelForwarderError("Could not establish session to SSH gateway")

    monkeypatch.setattr(tunnel.sshtunnel, "SSHTunnelForwarder", Refusing)
    monkeypatch.setattr(tunnel, "_nodelay_socket", lambda target: None)
    monkeypatch.setattr(tunnel, "current_run", lambda: SimpleNamespace(tunnels={}))
    host = SimpleNamespace(name="@homelab/server", data={"ssh_hostname": "10.0.0.5", "ssh_port": 2222},
                           state=SimpleNamespace(is_executing=True))
    monkeypatch.setattr(tunnel, "current_host", host)
    with pytest.raises(ServiceUnreachable) as caught:
        tunnel.answering_once(lambda: tunnel.local_url(host, "172.18.0.3", 80), "Pi-hole")()
    assert str(caught.value) == (
        "no answer from Pi-hole: SSH to @homelab/server (10.0.0.5:2222) failed, so no tunnel to "
        "172.18.0.3:80 could be opened: Could not establish session to SSH gateway"
    )
