"""Long waits say what they wait for about every 10 s: the clock-driven ticker, its default line on
pyinfra's output (on the host concerned), and the API readiness waits that use it."""

from __future__ import annotations

import logging

import pytest
from pyinfra.context import ctx_host
from pyinfra_testing.util import FakeState, create_host

from operations.clients.npm import NpmClient, NpmTimeout
from operations.clients.ollama import OllamaClient, OllamaUnreachable
from operations.clients.openwebui import OpenWebUIClient, OpenWebUIUnreachable
from operations.clients.pihole import PiholeClient, PiholeUnreachable
from operations.progress import Waiting, say, waiting_line


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_wait_says_its_state_about_every_ten_seconds_and_nothing_when_quick() -> None:
    clock, lines = Clock(), []
    waiting = Waiting("NGINX Proxy Manager's API", 120, tell=lines.append, clock=clock)
    for _ in range(45):  # 45 rounds of one second
        clock.now += 1
        waiting("no answer yet")
    assert lines == [
        f"waiting for NGINX Proxy Manager's API: no answer yet ({seconds} s of 120 s)"
        for seconds in (10, 20, 30, 40)
    ]
    quick = []
    waiting = Waiting("x", 120, tell=quick.append, clock=clock)
    clock.now += 9.5
    waiting("starting")
    assert quick == []


def test_the_shell_wait_and_the_api_waits_word_their_lines_alike() -> None:
    assert waiting_line("ollama: starting", 41.7, 300) == "waiting for ollama: starting (41 s of 300 s)"
    assert waiting_line("$w", "$(( now - start ))", 300) == "waiting for $w ($(( now - start )) s of 300 s)"


def test_the_line_goes_to_pyinfras_output_on_the_host_concerned(caplog) -> None:
    caplog.set_level(logging.INFO, logger="pyinfra")
    server = create_host(FakeState(), name="server")
    with ctx_host.use(server):
        say("waiting for Ollama's API: no answer yet (10 s of 300 s)")
    records = [r for r in caplog.records if r.name == "pyinfra"]
    assert [r.getMessage() for r in records] == [
        f"{server.print_prefix}waiting for Ollama's API: no answer yet (10 s of 300 s)"
    ]
    assert records[0].levelno == logging.INFO


# each API's readiness wait, on an address where nothing answers, and the error it ends in
WAITS = {
    "npm": (lambda: NpmClient("http://127.0.0.1:9", "a@example.com", "x" * 12, timeout=0.2), NpmTimeout),
    "ollama": (lambda: OllamaClient("http://127.0.0.1:9"), OllamaUnreachable),
    "pihole": (lambda: PiholeClient("http://127.0.0.1:9", "x" * 12, timeout=0.2), PiholeUnreachable),
    "openwebui": (lambda: OpenWebUIClient("http://127.0.0.1:9", "a@example.com", "x" * 12),
                  OpenWebUIUnreachable),
}
SAID = {"npm": "NGINX Proxy Manager's API", "ollama": "Ollama's API", "pihole": "Pi-hole's API",
        "openwebui": "Open WebUI"}
# how a wait that runs out names the service
NAMED = {"npm": "NPM at ", "ollama": "Ollama at ", "pihole": "Pi-hole at ", "openwebui": "Open WebUI at "}


@pytest.mark.parametrize("client", list(WAITS))
def test_a_wait_that_runs_out_names_the_service_what_it_last_found_and_how_long(client) -> None:
    make, error = WAITS[client]
    with pytest.raises(error) as caught:
        make().wait_ready(timeout=0.3, interval=0.1)
    message = str(caught.value)
    assert message.startswith(NAMED[client]) and " 0s (last: " in message and "no answer" in message, message


@pytest.mark.parametrize("client", list(WAITS))
def test_the_api_readiness_waits_tell_what_they_found_on_every_round(client) -> None:
    seen: list[str] = []
    make, error = WAITS[client]
    with pytest.raises(error):
        make().wait_ready(timeout=0.5, interval=0.1, waiting=seen.append)
    assert len(seen) >= 2
    assert all("no answer" in state for state in seen), seen


@pytest.mark.parametrize("client", list(WAITS))
def test_by_default_a_readiness_wait_says_so_through_pyinfras_logger(client, caplog, monkeypatch) -> None:
    caplog.set_level(logging.INFO, logger="pyinfra")
    original = Waiting.__init__

    def quick(self, what, timeout, **kwargs):  # the default wait, saying so every 0.2 s
        original(self, what, timeout, **{**kwargs, "every": 0.2})

    monkeypatch.setattr(Waiting, "__init__", quick)
    make, error = WAITS[client]
    with pytest.raises(error):
        make().wait_ready(timeout=0.7, interval=0.1)
    lines = [r.getMessage() for r in caplog.records if r.name == "pyinfra"]
    assert lines, "no line said what the wait waits for"
    said = f"waiting for {SAID[client]}: "
    assert all(line.startswith(said) and "no answer" in line for line in lines), lines
