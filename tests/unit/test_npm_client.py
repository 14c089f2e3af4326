"""NpmClient and the proxy-host plan against the NPM double (both version families)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from lab.doubles.npm_double import NpmDouble, serve
from operations.clients.npm import (
    NpmAuthError,
    NpmClient,
    NpmConflictError,
    NpmError,
    NpmNginxError,
    NpmTimeout,
)
from operations.npm import MANAGER_TAG, apply_proxy_host, plan_proxy_host
from tests.failing_session import FailingOnce

EMAIL = "owner@example.com"
PASSWORD = "Very-secret-pass-42"  # noqa: S105 - test value
VERSIONS = ["2.12.6", "2.15.1"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=VERSIONS)
def npm(request: pytest.FixtureRequest) -> Iterator[tuple[NpmDouble, str]]:
    double = NpmDouble(request.param, clock=Clock())
    with serve(double) as served:
        yield double, served.url


def _client(url: str, password: str = PASSWORD) -> NpmClient:
    return NpmClient(url, EMAIL, password, timeout=5)


def _ready(url: str) -> NpmClient:
    client = _client(url)
    client.ensure_admin()
    return client


def _apply(client: NpmClient, **kwargs) -> str:
    plan = plan_proxy_host(client.list_proxy_hosts(), **kwargs)
    apply_proxy_host(client, plan)
    return plan.action


CHAT = {"domain_names": ["chat.example.com"], "forward_host": "open-webui", "forward_port": 8080}


def test_first_admin_then_ready(npm: tuple[NpmDouble, str]) -> None:
    double, url = npm
    client = _client(url)
    expected = "setup" if double.modern else "default"
    assert client.admin_state() == expected
    assert client.ensure_admin() == expected
    assert _client(url).admin_state() == "ready"
    assert [u["email"] for u in double.users.values()] == [EMAIL]


def test_capitalised_email_is_lowered_so_login_keeps_working(npm: tuple[NpmDouble, str]) -> None:
    _, url = npm
    NpmClient(url, "  Owner@Example.COM ", PASSWORD).ensure_admin()
    assert _client(url).admin_state() == "ready"


def test_wrong_password_is_an_auth_error_without_the_secret(npm: tuple[NpmDouble, str]) -> None:
    _, url = npm
    _ready(url)
    with pytest.raises(NpmAuthError) as caught:
        _client(url, "Wrong-pass-123456").login()
    assert "Wrong-pass-123456" not in str(caught.value) and "Wrong-pass-123456" not in repr(caught.value)


def test_wait_ready_times_out_clearly() -> None:
    client = NpmClient("http://127.0.0.1:9", EMAIL, PASSWORD, timeout=0.2)
    with pytest.raises(NpmTimeout, match="not ready after"):
        client.wait_ready(timeout=0.3, interval=0.1)


def test_wait_ready_returns_health(npm: tuple[NpmDouble, str]) -> None:
    double, url = npm
    assert _client(url).wait_ready(timeout=2)["version"]["minor"] == double.version[1]


def test_first_run_rerun_and_drift(npm: tuple[NpmDouble, str]) -> None:
    double, url = npm
    client = _ready(url)
    assert _apply(client, **CHAT) == "create"
    stored = client.list_proxy_hosts()[0]
    assert stored["meta"]["managed_by"] == MANAGER_TAG and stored["meta"]["nginx_online"] is True
    assert stored["allow_websocket_upgrade"] and stored["block_exploits"]
    assert _apply(client, **CHAT) == "noop"

    double.proxy_hosts[stored["id"]]["forward_port"] = 9999  # someone edits the port in the UI
    assert client.list_proxy_hosts()[0]["forward_port"] == 8080  # a run reads each list once
    client = _ready(url)  # the next run
    double.requests.clear()
    plan = plan_proxy_host(client.list_proxy_hosts(), **CHAT)
    assert plan.action == "update" and plan.fields == {"forward_port": 8080}
    assert "forward_port: 9999 -> 8080" in plan.describe()
    apply_proxy_host(client, plan)
    writes = [r for r in double.requests if r[0] in ("POST", "PUT", "DELETE")]
    assert writes == [("PUT", f"/api/nginx/proxy-hosts/{stored['id']}")]
    assert _apply(client, **CHAT) == "noop"


def test_domain_match_is_case_insensitive(npm: tuple[NpmDouble, str]) -> None:
    _, url = npm
    client = _ready(url)
    _apply(client, **CHAT)
    assert _apply(client, **{**CHAT, "domain_names": ["Chat.Example.COM"]}) == "noop"


def test_foreign_host_on_our_domain_is_reported_not_overwritten(npm: tuple[NpmDouble, str]) -> None:
    _, url = npm
    client = _ready(url)
    client.create_proxy_host(
        {
            "domain_names": ["CHAT.example.com"],
            "forward_scheme": "http",
            "forward_host": "x",
            "forward_port": 1,
        }
    )
    plan = plan_proxy_host(client.list_proxy_hosts(), **CHAT)
    assert plan.action == "conflict" and "not managed by" in plan.describe()
    with pytest.raises(NpmConflictError):
        apply_proxy_host(client, plan)
    assert client.list_proxy_hosts()[0]["forward_host"] == "x"


def test_absent_deletes_only_managed(npm: tuple[NpmDouble, str]) -> None:
    _, url = npm
    client = _ready(url)
    _apply(client, **CHAT)
    assert _apply(client, **CHAT, present=False) == "delete"
    assert client.list_proxy_hosts() == []
    assert _apply(client, **CHAT, present=False) == "noop"


def test_expired_token_mid_run_logs_in_again(npm: tuple[NpmDouble, str]) -> None:
    double, url = npm
    client = _ready(url)
    _apply(client, **CHAT)
    double.clock.now += 2 * 86400  # the one-day token expires
    assert _apply(client, **{**CHAT, "forward_port": 8081}) == "update"
    assert client.list_proxy_hosts()[0]["forward_port"] == 8081


def test_nginx_rejecting_the_config_fails_clearly(npm: tuple[NpmDouble, str]) -> None:
    double, url = npm
    client = _ready(url)
    double.nginx_broken = True
    with pytest.raises(NpmNginxError, match="nginx rejected the config") as caught:
        _apply(client, **CHAT)
    assert str(caught.value) == (
        'nginx rejected the config of proxy host #1 (chat.example.com): "nginx: [emerg] could not build '
        "server_names_hash, you should increase server_names_hash_bucket_size: 1024; nginx: configuration "
        'file /etc/nginx/nginx.conf test failed"'
    )


def test_other_kinds_of_hosts_are_listed_with_their_kind(npm: tuple[NpmDouble, str]) -> None:
    _, url = npm
    client = _ready(url)
    client._call("POST", "/api/nginx/redirection-hosts", {"domain_names": ["r.example.com"]})
    client._call("POST", "/api/nginx/dead-hosts", {"domain_names": ["d.example.com"]})
    client._call(
        "POST", "/api/nginx/streams", {"incoming_port": 9000, "forwarding_host": "x", "forwarding_port": 1}
    )
    found = [(kind, host["id"], host.get("domain_names")) for kind, host in client.list_other_hosts()]
    assert found == [
        ("redirection host", 1, ["r.example.com"]),
        ("404 host", 1, ["d.example.com"]),
        ("stream", 1, None),
    ]


def test_lets_encrypt_then_followup_restores_flags(npm: tuple[NpmDouble, str]) -> None:
    double, url = npm
    client = _ready(url)
    ssl = {"certificate": "new", "force_ssl": True, "http2": True, "hsts": True}
    assert _apply(client, **CHAT, ssl=ssl) == "create"
    stored = client.list_proxy_hosts()[0]
    assert stored["certificate_id"] > 0
    assert (stored["ssl_forced"], stored["http2_support"], stored["hsts_enabled"]) == (True, True, True)
    assert _apply(client, **CHAT, ssl=ssl) == "noop"


def test_writable_drops_what_the_server_rejects(npm: tuple[NpmDouble, str]) -> None:
    double, url = npm
    client = _ready(url)
    _apply(client, **CHAT)
    echoed = client.get_proxy_host(1)
    body = client.writable({**echoed, "letsencrypt_email": "x@example.com", "trust_forwarded_proto": True})
    assert not {
        "id",
        "created_on",
        "owner_user_id",
        "letsencrypt_email",
        "locations",
        "certificate_id",
    } & set(body)
    assert ("trust_forwarded_proto" in body) == (double.version >= (2, 14, 0))
    client.update_proxy_host(1, body)  # the double's strict schema accepts it
    with pytest.raises(ValueError, match="not a proxy-host field"):
        client.writable({"bogus": 1})


def test_already_in_use_is_a_conflict_error(npm: tuple[NpmDouble, str]) -> None:
    _, url = npm
    client = _ready(url)
    fields = {
        "domain_names": ["a.example.com"],
        "forward_scheme": "http",
        "forward_host": "h",
        "forward_port": 1,
    }
    client.create_proxy_host(fields)
    with pytest.raises(NpmConflictError, match="already in use"):
        client.create_proxy_host({**fields, "domain_names": ["A.example.com"]})


def test_secrets_absent_from_errors_reprs_and_logs(npm: tuple[NpmDouble, str], caplog) -> None:
    double, url = npm
    caplog.set_level(logging.DEBUG)
    client = _ready(url)
    token = client._token
    assert token and PASSWORD not in repr(client) and token not in repr(client)
    double.nginx_broken = True
    messages = []
    for call in (lambda: _apply(client, **CHAT), lambda: _client(url, "Bad-pass-0000000").login()):
        with pytest.raises(Exception) as caught:
            call()
        messages.append(str(caught.value) + repr(caught.value))
    for text in [*messages, caplog.text]:
        assert PASSWORD not in text and token not in text and "Bad-pass-0000000" not in text


NEW_PASSWORD = "Rotated-secret-pass-77"  # noqa: S105 - test value


def test_refused_credentials_say_how_to_rotate(npm: tuple[NpmDouble, str]) -> None:
    _, url = npm
    _ready(url)
    with pytest.raises(NpmAuthError) as caught:
        _client(url, NEW_PASSWORD).admin_state()
    message = str(caught.value)
    assert message == (
        f"NPM refuses HOMELAB_NPM_ADMIN_EMAIL / HOMELAB_NPM_ADMIN_PASSWORD for {EMAIL}: to change NPM's "
        "admin password, give the one NPM has now once as HOMELAB_NPM_ADMIN_PREVIOUS_PASSWORD (and the email "
        "it has now as HOMELAB_NPM_ADMIN_PREVIOUS_EMAIL when the email changes too)"
    )
    assert NEW_PASSWORD not in message and PASSWORD not in message


def test_password_rotation_with_the_previous_password(npm: tuple[NpmDouble, str]) -> None:
    _, url = npm
    _ready(url)
    rotating = NpmClient(url, EMAIL, NEW_PASSWORD, previous_password=PASSWORD, timeout=5)
    assert rotating.admin_state() == "rotate"
    assert rotating.ensure_admin() == "rotate"
    # the new password works, the old one no longer does; a later run finds it ready
    assert NpmClient(url, EMAIL, NEW_PASSWORD, previous_password=PASSWORD, timeout=5).admin_state() == "ready"
    with pytest.raises(NpmAuthError):
        _client(url).login()


def test_email_and_password_rotation_and_a_half_done_one(npm: tuple[NpmDouble, str]) -> None:
    _, url = npm
    _ready(url)
    new_email = "admin@example.org"
    # a run that changed the email but not the password (the second request failed)
    half = NpmClient(url, new_email, PASSWORD, previous_email=EMAIL, timeout=5)
    assert half.ensure_admin() == "rotate"
    # the next run, given the old email and password, finishes from the mix it finds
    rotating = NpmClient(url, new_email, NEW_PASSWORD, previous_email=EMAIL, previous_password=PASSWORD,
                         timeout=5)
    assert rotating.admin_state() == "rotate"
    rotating.ensure_admin()
    assert NpmClient(url, new_email, NEW_PASSWORD, timeout=5).admin_state() == "ready"


@pytest.mark.parametrize("status", [None, 500])
def test_a_default_admin_takeover_whose_password_change_failed_is_finished_by_the_next_run(status) -> None:
    double = NpmDouble("2.12.6", clock=Clock())
    with serve(double) as served:
        failing = FailingOnce("PUT", "/auth", status)
        with pytest.raises(NpmError) as caught:
            NpmClient(served.url, EMAIL, PASSWORD, timeout=5, session=failing).ensure_admin()
        assert failing.failed
        assert str(caught.value).endswith(
            f"NPM's admin is now {EMAIL} with NPM's default password still; run the deploy again to set "
            "HOMELAB_NPM_ADMIN_PASSWORD"
        )
        assert PASSWORD not in str(caught.value) and "changeme" not in str(caught.value)
        # half done: the configured email, the default password
        assert [u["email"] for u in double.users.values()] == [EMAIL]
        assert list(double.passwords.values()) == ["changeme"]
        # the next run finds the account under the configured email and finishes the takeover
        assert _client(served.url).admin_state() == "default"
        assert _client(served.url).ensure_admin() == "default"
        assert list(double.passwords.values()) == [PASSWORD]
        assert _client(served.url).admin_state() == "ready"
