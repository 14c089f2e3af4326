"""The pyinfra operations npm.admin, npm.proxy_host and pihole.dns_records, run the way pyinfra
runs them (generator under a fake host), against the doubles: the plan reads state only, the
yielded FunctionCommand applies it, and a second pass is a no-op."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pyinfra.api import FunctionCommand
from pyinfra.context import ctx_host, ctx_state
from pyinfra_testing.util import FakeState, create_host

from lab.doubles.npm_double import NGINX_EMERG, NpmDouble
from lab.doubles.npm_double import serve as serve_npm
from lab.doubles.pihole_double import PiholeDouble
from lab.doubles.pihole_double import serve as serve_pihole
from operations import npm, pihole
from operations.clients.npm import NpmClient
from operations.clients.pihole import PiholeClient
from tests.failing_session import FailingOnce

PASSWORD = "Op-secret-pass-31"  # noqa: S105 - test value
CHAT = {"domain_names": ["chat.example.com"], "forward_host": "open-webui", "forward_port": 8080}


def run_op(op: Any, **kwargs: Any) -> tuple[list[Any], str | None]:
    """The commands an operation yields and its no-op description."""
    host = create_host(FakeState())
    with ctx_state.use(FakeState()), ctx_host.use(host):
        commands = list(op._inner(**kwargs))
    return commands, host.noop_description


class Output:
    """Stands in for the host at execute time: records the lines an operation prints on it."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log_styled(self, message: str, **_: Any) -> None:
        self.lines.append(message)


def execute(commands: list[Any], output: Output | None = None) -> list[Any]:
    """Run the commands as pyinfra does at execute time; what each returned (False: it failed)."""
    results = []
    for command in commands:
        assert isinstance(command, FunctionCommand)
        results.append(command.execute(FakeState(), output or Output(), {}))
    return results


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
    commands, _ = run_op(npm.proxy_host, client_factory=factory, fail_on_conflict=True, **CHAT)
    assert "held by proxy host #1" in commands[0].function.__name__
    assert execute(commands) == [False]
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


REJECTED = (
    'nginx rejected the config of proxy host #1 (chat.example.com): "nginx: [emerg] could not build '
    "server_names_hash, you should increase server_names_hash_bucket_size: 1024; nginx: configuration "
    'file /etc/nginx/nginx.conf test failed"'
)


def _ready(factory: Callable[[], NpmClient]) -> None:
    execute(run_op(npm.admin, client_factory=factory)[0])


def test_rejected_host_fails_every_run_until_nginx_accepts_it(npm_factory) -> None:
    double, factory = npm_factory
    _ready(factory)
    double.nginx_reject = {"chat.example.com": NGINX_EMERG}
    output = Output()
    assert execute(run_op(npm.proxy_host, client_factory=factory, **CHAT)[0], output) == [False]
    assert output.lines == [REJECTED]

    # the next run: the fields match, but the host is not "No change": it is applied again, and fails
    commands, noop = run_op(npm.proxy_host, client_factory=factory, **CHAT)
    assert noop is None
    assert commands[0].function.__name__.startswith(
        "update proxy host #1 (chat.example.com): apply again, nginx rejected its config: "
        '"nginx: [emerg] could not build server_names_hash'
    )
    output = Output()
    assert execute(commands, output) == [False]
    assert output.lines == [REJECTED]  # the same line on every run until nginx accepts the host

    double.nginx_reject = {}  # fixed: the run applies it again and passes, the next one has nothing to do
    assert execute(run_op(npm.proxy_host, client_factory=factory, **CHAT)[0]) == [True]
    assert double.proxy_hosts[1]["meta"]["nginx_online"] is True
    assert run_op(npm.proxy_host, client_factory=factory, **CHAT) == (
        [],
        "proxy host chat.example.com is up to date",
    )


def test_host_whose_config_was_never_written_is_applied_again(npm_factory) -> None:
    double, factory = npm_factory
    _ready(factory)
    execute(run_op(npm.proxy_host, client_factory=factory, **CHAT)[0])
    double.proxy_hosts[1]["meta"] = {"managed_by": npm.MANAGER_TAG}  # as a create whose certificate failed
    commands, _ = run_op(npm.proxy_host, client_factory=factory, **CHAT)
    assert "NPM never wrote its nginx config" in commands[0].function.__name__
    assert execute(commands) == [True]
    assert double.proxy_hosts[1]["meta"]["nginx_online"] is True


def test_failed_certificate_request_is_one_line_naming_it(npm_factory) -> None:
    double, factory = npm_factory
    _ready(factory)
    execute(run_op(npm.proxy_host, client_factory=factory, **CHAT)[0])
    double.letsencrypt_ok = False
    ssl = {"certificate": "new", "force_ssl": True}
    output = Output()
    commands, _ = run_op(npm.proxy_host, client_factory=factory, ssl=ssl, **{**CHAT, "forward_port": 9090})
    assert execute(commands, output) == [False]
    (line,) = output.lines
    assert line == (
        "the Let's Encrypt certificate request for chat.example.com failed (NPM answered 500: "
        "Internal Error); NPM stored none of this update of proxy host #1; NPM logs the reason in NPM's "
        "container output (lines marked [SSL]) and certbot's log /tmp/letsencrypt-log/letsencrypt.log "
        "inside the container"
    ), line
    assert "PUT /api" not in line and PASSWORD not in line
    assert double.proxy_hosts[1]["forward_port"] == 8080  # the whole update was dropped


def test_failed_certificate_request_on_create_says_the_host_stays_without_ssl(npm_factory) -> None:
    double, factory = npm_factory
    _ready(factory)
    double.letsencrypt_ok = False
    output = Output()
    commands, _ = run_op(npm.proxy_host, client_factory=factory, ssl={"certificate": "new"}, **CHAT)
    assert execute(commands, output) == [False]
    assert "certificate request for chat.example.com failed" in output.lines[0]
    assert "NPM keeps the new proxy host without SSL and the next run asks again" in output.lines[0]
    # the next run asks again (and says so while planning), it does not call the host up to date
    assert (
        "certificate_id: 0 -> 'new'"
        in run_op(npm.proxy_host, client_factory=factory, ssl={"certificate": "new"}, **CHAT)[0][
            0
        ].function.__name__
    )


@pytest.mark.parametrize(
    ("path", "kind"), [("redirection-hosts", "redirection host"), ("dead-hosts", "404 host")]
)
def test_name_held_by_another_kind_of_host_fails_while_planning(npm_factory, caplog, path, kind) -> None:
    double, factory = npm_factory
    _ready(factory)
    client = factory()
    client._call(
        "POST", f"/api/nginx/{path}", {"domain_names": ["Chat.example.com"], "forward_domain_name": "x"}
    )
    commands, noop = run_op(npm.proxy_host, client_factory=factory, **CHAT)
    expected = (
        f"proxy host chat.example.com cannot be created: chat.example.com is held by NPM's {kind} #1 "
        "(NPM gives a name to one host only): delete that host or take the name off it in NPM's admin UI, "
        "then run again"
    )
    assert [c.function.__name__ for c in commands] == [expected] and noop is None
    assert expected in caplog.text  # said while planning, so `--dry` shows it
    output = Output()
    assert execute(commands, output) == [False] and output.lines == [expected]
    assert not double.proxy_hosts


def test_plan_checks_every_kind_of_host_for_the_names() -> None:
    stream = ("stream", {"id": 4, "incoming_port": 53, "domain_names": ["hole.example.com"]})
    plain_stream = ("stream", {"id": 5, "incoming_port": 54})
    plan = npm.plan_proxy_host(
        [], ["hole.example.com"], forward_host="pihole", other_hosts=[plain_stream, stream]
    )
    assert plan.action == "conflict" and plan.blocking
    assert "hole.example.com is held by NPM's stream #4" in plan.describe()
    assert npm.plan_proxy_host([], ["hole.example.com"], other_hosts=[stream], present=False).action == "noop"
    assert npm.plan_proxy_host(
        [], ["hole.example.com"], forward_host="pihole", other_hosts=[plain_stream]
    ).action == ("create")


def run_op_with_diff(op: Any, **kwargs: Any) -> list[Any]:
    state = FakeState()
    state.config.DIFF = True
    host = create_host(state)
    with ctx_state.use(state), ctx_host.use(host):
        return list(op._inner(**kwargs))


def test_diff_shows_a_proxy_hosts_field_changes_while_planning(npm_factory, caplog) -> None:
    double, factory = npm_factory
    execute(run_op(npm.admin, client_factory=factory)[0])
    execute(run_op(npm.proxy_host, client_factory=factory, **CHAT)[0])
    caplog.set_level("INFO")
    commands = run_op_with_diff(npm.proxy_host, client_factory=factory, **{**CHAT, "forward_port": 9090})
    assert len(commands) == 1
    shown = [r.getMessage() for r in caplog.records if "Will change" in r.getMessage()]
    assert len(shown) == 1 and "forward_port: 8080 -> 9090" in shown[0], shown
    # without --diff nothing is said
    caplog.clear()
    run_op(npm.proxy_host, client_factory=factory, **{**CHAT, "forward_port": 9090})
    assert not [r for r in caplog.records if "Will change" in r.getMessage()]


def test_diff_shows_dns_record_changes_while_planning(caplog) -> None:
    double = PiholeDouble(password=PASSWORD)
    with serve_pihole(double) as served:
        factory = lambda: PiholeClient(served.url, PASSWORD)  # noqa: E731
        first = run_op(pihole.dns_records, client_factory=factory, records={"chat.example.com": "100.64.0.1"})
        execute(first[0])
        caplog.set_level("INFO")
        run_op_with_diff(pihole.dns_records, client_factory=factory,
                         records={"chat.example.com": "100.64.0.2"})
    shown = [r.getMessage() for r in caplog.records if "Will change" in r.getMessage()]
    assert len(shown) == 1 and "chat.example.com" in shown[0] and "100.64.0.2" in shown[0], shown


COMFY = {"domain_names": ["comfy.example.com"], "forward_host": "comfyui", "forward_port": 8188}
RETIRED = {"domain_names": ["comfy.example.com"], "present": False}


def test_a_retired_managed_host_is_removed_then_absent_and_can_come_back(npm_factory) -> None:
    double, factory = npm_factory
    _ready(factory)
    execute(run_op(npm.proxy_host, client_factory=factory, **CHAT)[0])
    execute(run_op(npm.proxy_host, client_factory=factory, **COMFY)[0])
    commands, _ = run_op(npm.proxy_host, client_factory=factory, **RETIRED)
    assert [c.function.__name__ for c in commands] == ["delete proxy host #2 (comfy.example.com)"]
    assert not double.proxy_hosts[2]["is_deleted"]  # --dry reads only
    assert execute(commands) == [True]
    assert [h["domain_names"] for h in factory().list_proxy_hosts()] == [["chat.example.com"]]
    # a second run: nothing to do
    assert run_op(npm.proxy_host, client_factory=factory, **RETIRED) == (
        [], "proxy host comfy.example.com is absent"
    )
    # the service enabled again: NPM's deleted row holds the name no more, the host is made anew
    commands, _ = run_op(npm.proxy_host, client_factory=factory, **COMFY)
    assert [c.function.__name__ for c in commands] == [
        "create proxy host comfy.example.com -> http://comfyui:8188"
    ]
    assert execute(commands) == [True]
    (back,) = [h for h in factory().list_proxy_hosts() if h["domain_names"] == ["comfy.example.com"]]
    assert back["id"] == 3 and back["meta"]["nginx_online"] is True
    assert run_op(npm.proxy_host, client_factory=factory, **COMFY)[0] == []


def test_a_retired_name_on_a_hand_made_host_is_left_alone_with_one_line(npm_factory, caplog) -> None:
    double, factory = npm_factory
    _ready(factory)
    factory().create_proxy_host({**COMFY, "forward_scheme": "http"})  # made in NPM's UI: no manager tag
    commands, noop = run_op(npm.proxy_host, client_factory=factory, **RETIRED)
    expected = (
        "proxy host comfy.example.com left alone: comfy.example.com held by proxy host #1, not managed by "
        "homelab-pyinfra: a proxy host this deploy did not make is never removed by it (delete it in NPM's "
        "admin UI if it should go)"
    )
    assert commands == [] and noop == expected  # no failure
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [expected]
    assert not double.proxy_hosts[1]["is_deleted"]
    # pyinfra runs the operation again when it executes: the line is not said a second time
    caplog.clear()
    state = FakeState()
    state.is_executing = True
    with ctx_state.use(state), ctx_host.use(create_host(state)):
        assert list(npm.proxy_host._inner(client_factory=factory, **RETIRED)) == []
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_half_done_default_admin_takeover_is_finished_by_the_next_run_then_nothing() -> None:
    double = NpmDouble("2.12.6")
    with serve_npm(double) as served:
        failing = FailingOnce("PUT", "/auth", 500)
        first = lambda: NpmClient(served.url, "owner@example.com", PASSWORD, timeout=5,  # noqa: E731
                                  session=failing)
        factory = lambda: NpmClient(served.url, "owner@example.com", PASSWORD, timeout=5)  # noqa: E731
        commands, _ = run_op(npm.admin, client_factory=first)
        output = Output()
        assert execute(commands, output) == [False]  # the password change failed: one line says so
        assert len(output.lines) == 1 and "run the deploy again to set HOMELAB_NPM_ADMIN_PASSWORD" in (
            output.lines[0])
        assert double.users[1]["email"] == "owner@example.com" and double.passwords[1] == "changeme"

        commands, _ = run_op(npm.admin, client_factory=factory)  # the second run finishes the takeover
        assert [c.function.__name__ for c in commands] == ["npm: replace the default admin credentials"]
        assert execute(commands) == [True] and double.passwords[1] == PASSWORD
        assert run_op(npm.admin, client_factory=factory) == ([], "NPM admin account is set up")


@pytest.mark.parametrize("op_and_kwargs", [
    (npm.admin, {}),
    (npm.proxy_host, {"domain_names": ["chat.example.com"], "forward_host": "open-webui",
                      "forward_port": 8080}),
    (npm.dns_certificate, {"domain_names": ["*.example.com", "example.com"], "dns_provider": "rfc2136"}),
], ids=["admin", "proxy_host", "dns_certificate"])
def test_an_npm_that_does_not_answer_when_the_run_gets_there_is_one_line_on_its_host(op_and_kwargs, caplog):
    """Planned blind (NPM may start earlier in the run); when the run gets there and the tunnel cannot be
    made (SSH failed, no container address), the operation fails on that host with the one line that
    says so, never pyinfra's "Unexpected error" with a traceback."""
    import logging

    from operations.clients import ServiceUnreachable
    from tests.failing_run import fails_on_its_host

    op, kwargs = op_and_kwargs
    error = ServiceUnreachable("no answer from NGINX Proxy Manager: SSH to lab-1 failed, so no tunnel")
    caplog.set_level(logging.DEBUG)

    def factory() -> NpmClient:
        raise error

    fails_on_its_host(caplog, op, str(error), client_factory=factory, **kwargs)
