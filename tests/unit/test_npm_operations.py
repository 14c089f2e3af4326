"""The pyinfra operations npm.admin, npm.proxy_host and pihole.dns_records, run the way pyinfra
runs them (generator under a fake host), against the doubles: the plan reads state only, the
yielded FunctionCommand applies it, and a second pass is a no-op."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pyinfra.api import FunctionCommand
from pyinfra.api.exceptions import OperationError
from pyinfra.context import ctx_host, ctx_state
from pyinfra_testing.util import FakeState, create_host

from lab.doubles.npm_double import NpmDouble
from lab.doubles.npm_double import serve as serve_npm
from lab.doubles.pihole_double import PiholeDouble
from lab.doubles.pihole_double import serve as serve_pihole
from operations import npm, pihole
from operations.clients.npm import NpmClient
from operations.clients.pihole import PiholeClient

PASSWORD = "Op-secret-pass-31"  # noqa: S105 - test value
CHAT = {"domain_names": ["chat.example.com"], "forward_host": "open-webui", "forward_port": 8080}


def run_op(op: Any, **kwargs: Any) -> tuple[list[Any], str | None]:
    """The commands an operation yields and its no-op description."""
    host = create_host(FakeState())
    with ctx_state.use(FakeState()), ctx_host.use(host):
        commands = list(op._inner(**kwargs))
    return commands, host.noop_description


def execute(commands: list[Any]) -> None:
    for command in commands:
        assert isinstance(command, FunctionCommand)
        command.function(*command.args, **command.kwargs)


@pytest.fixture
def npm_factory() -> Iterator[tuple[NpmDouble, Callable[[], NpmClient]]]:
    double = NpmDouble("2.15.1")
    with serve_npm(double) as served:
        yield double, lambda: NpmClient(served.url, "owner@example.com", PASSWORD, timeout=5)


def test_admin_then_proxy_host_create_rerun_drift(npm_factory) -> None:
    double, factory = npm_factory
    commands, _ = run_op(npm.admin, client_factory=factory)
    assert len(commands) == 1 and "setup mode" in commands[0].function.__name__
    assert not double.users  # planning changed nothing
    execute(commands)
    assert run_op(npm.admin, client_factory=factory) == ([], "NPM admin account is set up")

    commands, _ = run_op(npm.proxy_host, client_factory=factory, **CHAT)
    assert [c.function.__name__ for c in commands] == [
        "create proxy host chat.example.com -> http://open-webui:8080"
    ]
    assert not double.proxy_hosts  # --dry reads only
    execute(commands)
    assert run_op(npm.proxy_host, client_factory=factory, **CHAT)[0] == []

    double.proxy_hosts[1]["forward_port"] = 9000
    commands, _ = run_op(npm.proxy_host, client_factory=factory, **CHAT)
    assert [c.function.__name__ for c in commands] == [
        "update proxy host #1 (chat.example.com): forward_port: 9000 -> 8080"
    ]
    assert PASSWORD not in repr(commands)


def test_foreign_host_warns_or_fails(npm_factory) -> None:
    double, factory = npm_factory
    client = factory()
    client.ensure_admin()
    client.create_proxy_host({**CHAT, "forward_scheme": "http", "forward_host": "someone-else"})
    commands, noop = run_op(npm.proxy_host, client_factory=factory, **CHAT)
    assert commands == [] and "not managed by" in noop
    with pytest.raises(OperationError, match="held by proxy host #1"):
        run_op(npm.proxy_host, client_factory=factory, fail_on_conflict=True, **CHAT)
    assert double.proxy_hosts[1]["forward_host"] == "someone-else"


def test_dns_records_operation() -> None:
    double = PiholeDouble(PASSWORD)
    records = {"chat.example.com": "100.64.0.1"}
    with serve_pihole(double) as served:

        def factory() -> PiholeClient:
            return PiholeClient(served.url, PASSWORD, timeout=5)

        commands, _ = run_op(pihole.dns_records, client_factory=factory, records=records)
        assert [c.function.__name__ for c in commands] == [
            "Pi-hole local DNS: add chat.example.com -> 100.64.0.1"
        ]
        assert double.hosts == []
        execute(commands)
        assert double.hosts == ["100.64.0.1 chat.example.com"]
        assert run_op(pihole.dns_records, client_factory=factory, records=records) == (
            [],
            "Pi-hole local DNS: up to date",
        )
    assert double.logins == double.logouts and not double.sessions
