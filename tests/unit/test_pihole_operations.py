"""The pyinfra operation pihole.dns_records against the Pi-hole double: entries as FTL stores them
(capitals, several names on a line, a tab), a CNAME conflict and a refused password while planning,
FTL's hint kept at execute time as one line on the host, and a Pi-hole without a password."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pyinfra.api import Config, FunctionCommand, Inventory, State
from pyinfra.api.connect import connect_all
from pyinfra.api.exceptions import OperationError, OperationValueError, PyinfraError
from pyinfra.api.operation import add_op
from pyinfra.api.operations import run_ops
from pyinfra.context import ctx_host, ctx_state
from pyinfra_testing.util import FakeState, create_host

from lab.doubles.pihole_double import PiholeDouble, serve
from operations import pihole
from operations.clients import ServiceUnreachable
from operations.clients.pihole import PiholeClient, PiholeUnreachable
from tests.failing_run import fails_on_its_host

PASSWORD = "Op-pihole-pass-52"  # noqa: S105 - test value
CHAT = {"chat.example.com": "100.64.0.1"}

Factory = Callable[[], PiholeClient]


def run_op(**kwargs: Any) -> tuple[list[Any], str | None]:
    """The commands the operation yields (planning) and its no-op description."""
    host = create_host(FakeState())
    with ctx_state.use(FakeState()), ctx_host.use(host):
        commands = list(pihole.dns_records._inner(**kwargs))
    return commands, host.noop_description


class LogHost:
    """What pyinfra hands a FunctionCommand that takes ``state`` and ``host``: only logging is used."""

    print_prefix = "[pihole-host] "

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log_styled(self, message: str, log_func: Any = None, **kwargs: Any) -> None:
        self.lines.append(message)


def execute(commands: list[Any], host: Any = None) -> list[Any]:
    """Run the yielded commands as pyinfra does (``FunctionCommand.execute``), returning each status."""
    statuses = []
    for command in commands:
        assert isinstance(command, FunctionCommand)
        statuses.append(command.execute(FakeState(), host or LogHost(), {}))
    return statuses


def make_factory(url: str, password: str = PASSWORD) -> Factory:
    def factory() -> PiholeClient:
        return PiholeClient(url, password, setting_name="HOMELAB_PIHOLE_PASSWORD", timeout=5)

    return factory


@pytest.fixture
def pihole_double() -> Iterator[tuple[PiholeDouble, Factory]]:
    double = PiholeDouble(PASSWORD)
    with serve(double) as served:
        yield double, make_factory(served.url)


def test_capitals_with_a_wrong_address_are_planned_from_the_stored_string(pihole_double) -> None:
    double, factory = pihole_double
    double.hosts.append("10.9.9.7\tChat.Example.COM")
    commands, _ = run_op(client_factory=factory, records=CHAT)
    assert [c.function.__name__ for c in commands] == [
        "Pi-hole local DNS: remove '10.9.9.7\\tChat.Example.COM'; add chat.example.com -> 100.64.0.1"
    ]
    assert double.hosts == ["10.9.9.7\tChat.Example.COM"]  # planning reads only
    assert execute(commands) == [True]
    assert double.hosts == ["100.64.0.1 chat.example.com"]
    assert run_op(client_factory=factory, records=CHAT) == ([], "Pi-hole local DNS: up to date")
    assert double.logins == double.logouts and not double.sessions


def test_capitals_with_the_right_address_are_up_to_date(pihole_double) -> None:
    double, factory = pihole_double
    double.hosts.append("100.64.0.1 CHAT.example.com")
    assert run_op(client_factory=factory, records=CHAT) == ([], "Pi-hole local DNS: up to date")


def test_several_names_on_a_line_keep_the_others(pihole_double) -> None:
    double, factory = pihole_double
    double.hosts.append("10.9.9.7 nas.lan chat.example.com")
    commands, _ = run_op(client_factory=factory, records=CHAT)
    assert [c.function.__name__ for c in commands] == [
        "Pi-hole local DNS: rewrite '10.9.9.7 nas.lan chat.example.com' without chat.example.com; "
        "keep '10.9.9.7 nas.lan'; add chat.example.com -> 100.64.0.1"
    ]
    assert execute(commands) == [True]
    assert double.hosts == ["10.9.9.7 nas.lan", "100.64.0.1 chat.example.com"]
    assert run_op(client_factory=factory, records=CHAT)[0] == []


def test_cname_for_our_name_fails_while_planning(pihole_double) -> None:
    """Said while planning (so --dry shows it), and the operation fails on this host when run: one
    line, no traceback, the other hosts carry on."""
    double, factory = pihole_double
    double.cname_records.append("chat.example.com,elsewhere.example.net")
    commands, _ = run_op(client_factory=factory, records=CHAT)
    host = LogHost()
    assert execute(commands, host) == [False]
    assert host.lines == [
        "Pi-hole's CNAME record 'chat.example.com,elsewhere.example.net' answers for chat.example.com, so "
        "the local DNS record chat.example.com -> 100.64.0.1 would never be used: delete that CNAME record "
        "in Pi-hole (Local DNS > CNAME records) and run again"
    ]
    assert double.hosts == [] and not double.sessions


def test_refused_password_is_an_operation_error_naming_the_setting(pihole_double) -> None:
    double, _ = pihole_double
    with serve(double) as served:
        commands, _ = run_op(client_factory=make_factory(served.url, "Wrong-pihole-pass-1"), records=CHAT)
    host = LogHost()
    assert execute(commands, host) == [False]
    (line,) = host.lines
    assert line.startswith("Pi-hole refused the password in HOMELAB_PIHOLE_PASSWORD")
    assert "Wrong-pihole-pass-1" not in line


def test_ftl_hint_reaches_the_host_as_one_line(pihole_double) -> None:
    double, factory = pihole_double
    commands, _ = run_op(client_factory=factory, records={"bad_name!.example.com": "100.64.0.1"})
    host = LogHost()
    assert execute(commands, host) == [False]
    assert host.lines == [
        "Pi-hole refused to add the local DNS entry '100.64.0.1 bad_name!.example.com' -> 400: Invalid "
        'value (dns.hosts[0]: invalid hostname ("bad_name!.example.com"))'
    ]
    with pytest.raises(OperationError, match="invalid hostname"):
        commands[0].function()  # called without pyinfra's state and host, it raises


def test_pihole_without_a_password(pihole_double) -> None:
    double = PiholeDouble("")
    with serve(double) as served:
        factory = make_factory(served.url)
        commands, _ = run_op(client_factory=factory, records=CHAT)
        assert execute(commands) == [True]
        assert run_op(client_factory=factory, records=CHAT)[0] == []
    assert double.hosts == ["100.64.0.1 chat.example.com"] and double.logins == 0


def test_pyinfra_reports_an_ftl_refusal_as_a_failed_operation_without_a_traceback(
    pihole_double, caplog
) -> None:
    _, factory = pihole_double
    caplog.set_level(logging.DEBUG)
    state = State(Inventory((["@local"], {})), Config())
    connect_all(state)
    add_op(state, pihole.dns_records, client_factory=factory, records={"bad_name!.example.com": "100.64.0.1"})
    with pytest.raises(PyinfraError, match="No hosts remaining"):  # the only host failed
        run_ops(state)
    local = state.inventory.get_host("@local")
    assert state.get_results_for_host(local).error_ops == 1
    assert 'invalid hostname ("bad_name!.example.com")' in caplog.text
    assert "Traceback" not in caplog.text and "Unexpected error" not in caplog.text
    assert PASSWORD not in caplog.text


def test_retired_names_are_removed_by_name_and_every_other_entry_stays(pihole_double) -> None:
    """Removing needs only the names: each entry of them goes, whatever its address; another entry,
    and the other names on a shared line, stay."""
    double, factory = pihole_double
    double.hosts.extend([
        "100.64.0.1 chat.example.com", "100.64.0.9 Comfy.Example.com", "10.9.9.7 nas.lan comfy.example.com",
        "10.9.9.8 comfy.example.com.lan",
    ])
    commands, _ = run_op(client_factory=factory, records=["comfy.example.com"], present=False)
    assert [c.function.__name__ for c in commands] == [
        "Pi-hole local DNS: remove Comfy.Example.com -> 100.64.0.9; rewrite '10.9.9.7 nas.lan "
        "comfy.example.com' without comfy.example.com; keep '10.9.9.7 nas.lan'"
    ]
    assert len(double.hosts) == 4  # planning reads only
    assert execute(commands) == [True]
    assert double.hosts == [
        "100.64.0.1 chat.example.com", "10.9.9.8 comfy.example.com.lan", "10.9.9.7 nas.lan",
    ]
    # already gone: nothing to do
    assert run_op(client_factory=factory, records=["comfy.example.com"], present=False) == (
        [], "Pi-hole local DNS: up to date",
    )
    assert double.logins == double.logouts and not double.sessions


def test_names_without_addresses_are_only_for_removing(pihole_double) -> None:
    _, factory = pihole_double
    with pytest.raises(OperationValueError, match=r"expected \{hostname: ip\} to add records, got list"):
        run_op(client_factory=factory, records=["comfy.example.com"])
    with pytest.raises(OperationValueError, match="or a list of hostnames, got 'comfy.example.com'"):
        run_op(client_factory=factory, records="comfy.example.com", present=False)
    with pytest.raises(OperationValueError, match="a hostname without spaces, got 'comfy example'"):
        run_op(client_factory=factory, records=["comfy example"], present=False)


@pytest.mark.parametrize("error", [
    ServiceUnreachable("no answer from Pi-hole: its container is not running on the homelab network"),
    PiholeUnreachable("Pi-hole at http://127.0.0.1:9 did not answer within 120s (last: no answer yet)"),
])
def test_a_pihole_that_does_not_answer_when_the_run_gets_there_is_one_line_on_its_host(error, caplog) -> None:
    """Planned blind (it may start earlier in the run); when the run gets there and it still does not
    answer, the operation fails on that host with the one line that says so, not an unexpected error."""
    caplog.set_level(logging.DEBUG)

    def factory() -> PiholeClient:
        raise error

    fails_on_its_host(caplog, pihole.dns_records, str(error), client_factory=factory, records=CHAT)
