"""Preflight's HTTPS row: WARN while TLS is off (plain HTTP), and with dns the wildcard's expiry when NPM
holds it (WARN under 21 days, FAIL expired), coping with an NPM that is not deployed yet."""

from datetime import UTC, datetime

from deploys.library.preflight import FAIL, PASS, WARN, Observed, check_tls
from tests.planning import settings

NOW = datetime(2030, 3, 17, 12, 0, 0, tzinfo=UTC)
NAMES = ("*.home.example.com", "home.example.com")
DNS = {"tls": "dns", "tls_dns_provider": "cloudflare", "tls_dns_credentials": "dns_cloudflare_api_token = x1"}


def observed(**fields) -> Observed:
    return Observed(host="server", settings=settings(**DNS), services=["nginx-proxy-manager"],
                    tls_names=NAMES, **fields)


def test_off_warns_that_the_subdomains_are_plain_http() -> None:
    row = check_tls(Observed(host="server", settings=settings(), services=["nginx-proxy-manager"]))
    assert row.result == WARN and "the subdomains are plain HTTP" in row.detail
    assert check_tls(Observed(host="server", settings=settings(), services=["pihole"])) is None


def test_expiry_of_the_certificate_npm_holds() -> None:
    def result(expires_on: str) -> str:
        return check_tls(observed(certificate={"id": 3, "expires_on": expires_on}), NOW).result

    assert result("2030-06-01 00:00:00") == PASS
    assert result("2030-04-01 00:00:00") == WARN
    assert result("2030-03-17 11:00:00") == FAIL


def test_no_certificate_yet_or_npm_not_deployed_is_a_warning_not_a_failure() -> None:
    assert check_tls(observed(), NOW).result == WARN
    row = check_tls(observed(certificate_unread="NGINX Proxy Manager not deployed or not answering"), NOW)
    assert row.result == WARN and "not checked" in row.detail


def test_a_subdomain_serving_another_certificate_fails_and_one_without_it_yet_warns() -> None:
    cert = {"id": 3, "expires_on": "2030-06-01 00:00:00"}
    row = check_tls(observed(certificate=cert, proxy_certificates={"chat.home.example.com": 3,
                                                                   "hole.home.example.com": 7}), NOW)
    assert row.result == FAIL and "hole.home.example.com serve(s) another certificate" in row.detail
    row = check_tls(observed(certificate=cert, proxy_certificates={"chat.home.example.com": 3,
                                                                   "hole.home.example.com": 0}), NOW)
    assert row.result == WARN and "not used yet by hole.home.example.com" in row.detail
    row = check_tls(observed(certificate=cert, proxy_certificates={"chat.home.example.com": 3}), NOW)
    assert row.result == PASS
