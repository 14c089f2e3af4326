"""Open WebUI is waited for before its admin account is read or set: ``GET /health`` through the tunnel
to its container, a short wait while planning and a bounded one when the run applies, saying what it
waits for about every 10 s; one that does not answer is one line naming Open WebUI, the part that
failed, what it last answered and how long it was waited for."""

from __future__ import annotations

import logging
import threading
import time
from types import SimpleNamespace

import paramiko
import pytest
import requests
from pydantic import SecretStr

from deploys.library import openwebui_steps, tunnel
from deploys.library.catalog import NETWORK
from lab.doubles import openwebui_double
from operations import openwebui
from operations.clients import ServiceUnreachable
from operations.clients.openwebui import OpenWebUIClient, OpenWebUIUnreachable
from tests.failing_run import fails_on_its_host

EMAIL, PASSWORD = "admin@home.example.com", "open-webui-ready-secret"
ADDRESS = "172.18.0.6"
CTX = SimpleNamespace(settings=SimpleNamespace(open_webui_admin_email=EMAIL,
                                               open_webui_admin_password=PASSWORD))


@pytest.fixture
def webui(tmp_path, monkeypatch):
    monkeypatch.setattr(openwebui_double, "DATABASE", tmp_path / "webui.db")
    monkeypatch.setenv("ENABLE_SIGNUP", "false")
    server = openwebui_double.serve(openwebui_double.OpenWebUIDouble(), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class Answering(requests.Session):
    """Every request gets ``status`` with ``body``: Open WebUI's server up, the app not ready."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__()
        self.status, self.body, self.asked = status, body, []

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        self.asked.append((method, url))
        answer = requests.Response()
        answer.status_code, answer._content = self.status, self.body
        return answer


def test_wait_ready_returns_at_once_when_open_webui_answers(webui) -> None:
    OpenWebUIClient(webui, EMAIL, PASSWORD).wait_ready(timeout=2, waiting=pytest.fail)


def test_wait_ready_times_out_naming_open_webui_what_it_last_found_and_how_long() -> None:
    with pytest.raises(OpenWebUIUnreachable) as caught:
        OpenWebUIClient("http://127.0.0.1:9", EMAIL, PASSWORD).wait_ready(timeout=0.3, interval=0.1)
    assert str(caught.value) == (
        "Open WebUI at http://127.0.0.1:9 did not answer within 0s (last: no answer yet)"
    )


@pytest.mark.parametrize("status, body, found", [
    (503, b"<html>starting</html>", "it answers 503 (not JSON)"),
    (200, b'{"detail": "Not Found"}', "it answers 200"),
])
def test_wait_ready_waits_through_answers_that_are_not_health(status, body, found) -> None:
    seen: list[str] = []
    client = OpenWebUIClient("http://127.0.0.1:9", EMAIL, PASSWORD)
    client._session = session = Answering(status, body)
    with pytest.raises(OpenWebUIUnreachable) as caught:
        client.wait_ready(timeout=0.3, interval=0.1, waiting=seen.append)
    assert str(caught.value).endswith(f"did not answer within 0s (last: {found})")
    assert seen and set(seen) == {found}
    assert set(session.asked) == {("GET", "http://127.0.0.1:9/health")}


def test_by_default_the_wait_says_what_it_waits_for(caplog, monkeypatch) -> None:
    caplog.set_level(logging.INFO, logger="pyinfra")
    from operations.progress import Waiting

    init = Waiting.__init__
    monkeypatch.setattr(Waiting, "__init__",
                        lambda self, what, timeout, **kw: init(self, what, timeout, **{**kw, "every": 0.2}))
    with pytest.raises(OpenWebUIUnreachable):
        OpenWebUIClient("http://127.0.0.1:9", EMAIL, PASSWORD).wait_ready(timeout=0.7, interval=0.1)
    lines = [r.getMessage() for r in caplog.records if r.name == "pyinfra"]
    assert lines and all(line.startswith("waiting for Open WebUI: no answer yet (") for line in lines), lines


class Refused:
    """The tunnel's SSH transport: the host refuses to connect to the port (nothing listens there)."""

    def is_active(self) -> bool:
        return True

    def open_channel(self, kind, dest_addr, src_addr, timeout):
        raise paramiko.ChannelException(2, "Connect failed")


def _host(monkeypatch, executing: bool, url: str) -> None:
    """A host whose Open WebUI container has an address on the Docker network, its tunnel open and
    leading to ``url``."""
    server = SimpleNamespace(name="server", state=SimpleNamespace(is_executing=executing),
                             get_fact=lambda fact: {"open-webui": {NETWORK: ADDRESS}})
    tunnels = {("server", ADDRESS, 8080): SimpleNamespace(
        is_active=True, local_bind_port=int(url.rsplit(":", 1)[1]), _transport=Refused())}
    monkeypatch.setattr(tunnel, "current_host", server)
    monkeypatch.setattr(openwebui_steps, "host", server)
    monkeypatch.setattr(tunnel, "current_run", lambda: SimpleNamespace(tunnels=tunnels))


def test_planning_with_open_webui_not_answering_says_so_in_one_line_quickly(monkeypatch, caplog) -> None:
    _host(monkeypatch, executing=False, url="http://127.0.0.1:9")
    factory = openwebui_steps._factory(CTX)
    started = time.monotonic()
    with pytest.raises(OpenWebUIUnreachable) as caught:
        factory()
    took = time.monotonic() - started
    assert str(caught.value) == (
        f"SSH to server works, but the tunnel to {ADDRESS}:8080 is refused there: nothing accepts "
        "connections on that port (Open WebUI not running or not listening there) (Open WebUI at "
        "http://127.0.0.1:9 did not answer within 2s (last: no answer yet))"
    )
    assert tunnel.PLANNING_WAIT <= took < tunnel.PLANNING_WAIT + 2
    said = [r.getMessage() for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("server: Open WebUI does not answer (SSH to server works")
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("executing, waited", [(False, tunnel.PLANNING_WAIT),
                                               (True, openwebui_steps.OPEN_WEBUI_READY_TIMEOUT)])
def test_the_factory_waits_for_open_webui_once_per_phase(webui, monkeypatch, executing, waited) -> None:
    waits = []
    original = OpenWebUIClient.wait_ready

    def wait_ready(self, timeout, **kwargs):
        waits.append(timeout)
        return original(self, timeout, **kwargs)

    monkeypatch.setattr(OpenWebUIClient, "wait_ready", wait_ready)
    _host(monkeypatch, executing=executing, url=webui)
    factory = openwebui_steps._factory(CTX)
    assert factory().state() == factory().state() == {"account": "refused", "signup": False}
    assert waits == [waited]


def test_open_webui_not_answering_when_the_run_gets_there_is_one_line_on_its_host(tmp_path, caplog) -> None:
    """Planned blind (it starts earlier in the run); when the run gets there and it still does not answer,
    the operation fails on that host in one line, nothing is run in the container, no unexpected error."""
    caplog.set_level(logging.DEBUG)
    error = ServiceUnreachable(
        "no answer from Open WebUI: its container is not running on the homelab network")

    def factory() -> OpenWebUIClient:
        raise error

    said = fails_on_its_host(caplog, openwebui.admin, str(error), client_factory=factory,
                             container="open-webui", email=EMAIL, display_name="Admin",
                             password=SecretStr(PASSWORD), payload_path=str(tmp_path / "payload.json"))
    assert said[0].endswith(f"open-webui: {error}"), said
    assert PASSWORD not in caplog.text and not (tmp_path / "payload.json").exists()
