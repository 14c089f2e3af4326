"""One Let's Encrypt certificate by the DNS challenge: the NPM double answers as 2.15.1 does (the
credentials kept but never shown, nice_name, expires_on from the issuer, a failed request removed with
a 500 and its debug block), the client finds a certificate by its names, the npm.dns_certificate
operation asks once and then never again, proxy hosts name the certificate by its domain names, and a
failed request is one line naming the cause read from certbot's log on the host."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from lab.doubles.npm_double import CertbotFailed, NpmDouble
from lab.doubles.npm_double import serve as serve_npm
from operations import npm
from operations.clients.npm import NpmClient
from tests.unit.test_npm_operations import PASSWORD, Output, execute, run_op

NAMES = ["*.home.example.com", "home.example.com"]
TOKEN = "dns_cloudflare_api_token = cf-token-never-shown-0123"  # noqa: S105 - test value
LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "certbot-logs"
NOW = 1_900_000_000.0  # 2030-03-17 17:46:40 UTC (a certificate of "now" must not have expired)
LOG_PATH = "/cold-storage/services/nginx-proxy/data/logs/letsencrypt.log"


class Issuer:
    """Records what NPM would hand certbot; issues for 90 days or fails as told."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict, str]] = []
        self.fail: dict | None = None

    def __call__(self, cert: dict, email: str) -> int:
        self.calls.append((cert, email))
        if self.fail is not None:
            raise CertbotFailed(self.fail)
        return int(NOW + 90 * 86400)


class Served:
    def __init__(self, double: NpmDouble, url: str, issuer: Issuer) -> None:
        self.double, self.url, self.issuer = double, url, issuer

    def client(self) -> NpmClient:
        return NpmClient(self.url, "owner@example.com", PASSWORD, timeout=5)


@pytest.fixture
def served() -> Iterator[Served]:
    issuer = Issuer()
    double = NpmDouble("2.15.1", clock=lambda: NOW, issuer=issuer)
    with serve_npm(double) as server:
        found = Served(double, server.url, issuer)
        found.client().ensure_admin()
        yield found


class Host(Output):
    """The host at execute time: records its lines and serves certbot's log to one `tail`."""

    def __init__(self, log: str | None = None) -> None:
        super().__init__()
        self.log = log
        self.commands: list[tuple[str, dict]] = []

    def run_shell_command(self, command: Any, **arguments: Any):
        self.commands.append((str(command), arguments))
        output = type("Out", (), {"stdout": self.log or ""})()
        return self.log is not None, output


def certificate_op(served: Served, **extra: Any):
    return run_op(npm.dns_certificate, client_factory=served.client, domain_names=NAMES,
                  dns_provider="cloudflare", dns_credentials=TOKEN, certbot_log_path=LOG_PATH, **extra)


# -- the double --------------------------------------------------------------------------------
def test_the_double_issues_keeps_the_credentials_and_never_shows_them(served) -> None:
    cert = served.client().create_dns_certificate(NAMES, "cloudflare", TOKEN, 30)
    assert cert["nice_name"] == "*.home.example.com, home.example.com"
    assert cert["expires_on"] == "2030-06-15 17:46:40"
    assert cert["meta"] == {"dns_challenge": True, "dns_provider": "cloudflare", "propagation_seconds": 30}
    (given, email), = served.issuer.calls
    assert given["meta"]["dns_provider_credentials"] == TOKEN and email == "owner@example.com"
    assert served.double.certificates[cert["id"]]["meta"]["dns_provider_credentials"] == TOKEN
    client = served.client()
    assert "cf-token" not in str(client.list_certificates())
    assert "cf-token" not in str(client._call("GET", f"/api/nginx/certificates/{cert['id']}"))


def test_a_failed_issue_is_a_500_with_its_debug_and_the_row_is_removed(served) -> None:
    served.issuer.fail = {"stack": ["Error: Command failed: certbot certonly"], "previous": {"code": 1}}
    token = served.client()._ensure_token()
    body = {"provider": "letsencrypt", "domain_names": NAMES,
            "meta": {"dns_challenge": True, "dns_provider": "cloudflare", "dns_provider_credentials": TOKEN}}
    answer = requests.post(served.url + "/api/nginx/certificates", json=body,
                           headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert answer.status_code == 500
    assert answer.json() == {"error": {"code": 500, "message": "Internal Error"}, "debug": served.issuer.fail}
    assert served.double.certificates == {}


def test_the_default_issuer_honours_letsencrypt_ok_and_quick_certificates_use_the_issuer() -> None:
    double = NpmDouble("2.15.1", clock=lambda: NOW, letsencrypt_ok=False)
    with serve_npm(double) as server:
        client = NpmClient(server.url, "owner@example.com", PASSWORD, timeout=5)
        client.ensure_admin()
        with pytest.raises(npm.NpmCertificateError) as failed:
            client.create_dns_certificate(NAMES, "cloudflare", TOKEN)
        assert "cf-token" not in str(failed.value)
        assert double.certificates == {}
        double.letsencrypt_ok = True
        issued = client.create_dns_certificate(NAMES, "cloudflare", TOKEN)
        assert issued["expires_on"] == "2030-06-15 17:46:40"
    issuer = Issuer()
    quick = NpmDouble("2.15.1", clock=lambda: NOW, issuer=issuer)
    with serve_npm(quick) as server:
        client = NpmClient(server.url, "owner@example.com", PASSWORD, timeout=5)
        client.ensure_admin()
        client.create_proxy_host({"domain_names": ["chat.example.com"], "forward_scheme": "http",
                                  "forward_host": "x", "forward_port": 80, "certificate_id": "new"})
    assert [cert["domain_names"] for cert, _ in issuer.calls] == [["chat.example.com"]]


# -- the client --------------------------------------------------------------------------------
def test_a_certificate_is_found_by_its_names_as_a_set_without_case(served) -> None:
    client = served.client()
    assert client.find_certificate_by_names(NAMES) is None
    cert = client.create_dns_certificate(NAMES, "cloudflare", TOKEN)
    assert client.find_certificate_by_names(["HOME.example.com", "*.home.EXAMPLE.com"])["id"] == cert["id"]
    assert client.find_certificate_by_names(["*.home.example.com"]) is None
    served.double.certificates[cert["id"]]["provider"] = "other"
    assert client.find_certificate_by_names(NAMES) is None


# -- the operation -----------------------------------------------------------------------------
def test_missing_then_requested_once_then_nothing_to_do(served) -> None:
    commands, _ = certificate_op(served)
    assert [c.function.__name__ for c in commands] == [
        "request the certificate *.home.example.com, home.example.com (DNS challenge, cloudflare)"]
    assert served.double.certificates == {} and served.issuer.calls == []  # --dry asks nothing
    assert "cf-token" not in repr(commands)
    assert execute(commands) == [True]
    assert len(served.issuer.calls) == 1
    commands, noop = certificate_op(served)
    assert commands == []
    assert noop.startswith("certificate *.home.example.com, home.example.com is in NPM (#1")
    assert len(served.issuer.calls) == 1


def test_an_expired_certificate_is_requested_again(served) -> None:
    served.client().create_dns_certificate(NAMES, "cloudflare", TOKEN)
    served.double.certificates[1]["expires_on"] = "2020-01-01 00:00:00"
    commands, _ = certificate_op(served)
    assert commands[0].function.__name__.startswith("request the certificate *.home.example.com, "
                                                     "home.example.com again: #1 expired 2020-01-01")
    assert execute(commands) == [True]
    assert served.client().find_certificate_by_names(NAMES)["id"] == 2


@pytest.mark.parametrize(("log", "said"), [
    ("rfc2136-badkey.log", "the DNS provider refused the credentials (certbot: Encountered error adding "
                           "TXT record: The peer didn't know the key we used); "
                           "check HOMELAB_TLS_DNS_CREDENTIALS"),
    ("propagation-nxdomain.log", "the ACME server did not find the challenge's TXT record"),
])
def test_a_failed_request_is_one_line_with_the_cause_from_certbots_log(served, log, said) -> None:
    served.issuer.fail = {"stack": ["Error: Command failed"]}
    commands, _ = certificate_op(served, remedies={"credentials": "check HOMELAB_TLS_DNS_CREDENTIALS"})
    host = Host((LOGS / log).read_text() + "\n" + TOKEN)
    assert [command.execute(None, host, {"_sudo": True}) for command in commands] == [False]
    (line,) = host.lines
    assert line.startswith("request the certificate *.home.example.com, home.example.com (DNS challenge, "
                           f"cloudflare) failed: {said}")
    assert line.endswith(f"certbot's log: {LOG_PATH} on the host")
    assert "\n" not in line and "cf-token" not in line
    assert host.commands == [(f"tail -c 262144 {LOG_PATH}", {"_sudo": True})]


def test_a_failed_request_without_a_readable_log_still_says_where_it_is(served) -> None:
    served.issuer.fail = {"stack": ["Error"]}
    host = Host(None)
    assert [c.execute(None, host, {}) for c in certificate_op(served)[0]] == [False]
    assert host.lines == ["request the certificate *.home.example.com, home.example.com (DNS challenge, "
                          "cloudflare) failed: certbot's log says nothing of this run; certbot's log: "
                          f"{LOG_PATH} on the host"]


# -- proxy hosts naming the certificate ----------------------------------------------------------
CHAT = {"domain_names": ["chat.home.example.com"], "forward_host": "open-webui", "forward_port": 8080}
SSL = {"certificate": NAMES, "force_ssl": True, "http2": True, "hsts": True, "hsts_subdomains": False}


def test_a_proxy_host_takes_the_certificate_requested_earlier_in_the_same_run(served) -> None:
    cert_commands, _ = certificate_op(served)
    host_commands, _ = run_op(npm.proxy_host, client_factory=served.client, ssl=SSL, **CHAT)
    assert len(host_commands) == 1  # planned before the certificate exists
    execute(cert_commands + host_commands)
    (stored,) = served.double.proxy_hosts.values()
    assert stored["certificate_id"] == 1
    assert (stored["ssl_forced"], stored["http2_support"], stored["hsts_enabled"]) == (True, True, True)
    assert run_op(npm.proxy_host, client_factory=served.client, ssl=SSL, **CHAT)[0] == []
    assert certificate_op(served)[0] == []


def test_an_existing_plain_host_is_moved_onto_the_certificate_then_left(served) -> None:
    execute(run_op(npm.proxy_host, client_factory=served.client, **CHAT)[0])
    served.client().create_dns_certificate(NAMES, "cloudflare", TOKEN)
    commands, _ = run_op(npm.proxy_host, client_factory=served.client, ssl=SSL, **CHAT)
    assert "certificate_id: 0 -> 1" in commands[0].function.__name__
    execute(commands)
    assert run_op(npm.proxy_host, client_factory=served.client, ssl=SSL, **CHAT)[0] == []


def test_a_proxy_host_whose_certificate_never_came_fails_in_one_line_and_stays(served) -> None:
    execute(run_op(npm.proxy_host, client_factory=served.client, **CHAT)[0])
    output = Output()
    commands, _ = run_op(npm.proxy_host, client_factory=served.client, ssl=SSL, **CHAT)
    assert execute(commands, output) == [False]
    (line,) = output.lines
    assert "NPM holds no valid Let's Encrypt certificate for *.home.example.com, home.example.com" in line
    assert served.double.proxy_hosts[1]["certificate_id"] == 0


def test_expiry_is_read_as_utc() -> None:
    when = npm.expires_at({"expires_on": "2030-06-15 17:46:40"})
    assert when == datetime(2030, 6, 15, 17, 46, 40, tzinfo=UTC)
    assert npm.expired({"expires_on": "garbage"})
