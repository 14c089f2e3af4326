"""HOMELAB_TLS and its companions: dns needs a provider NPM knows and its credentials, the ACME account's
email is NPM's admin's, a private ACME server's CA bundle is read and checked on the controller, and
none of it is required (or read) while TLS is off."""

from pathlib import Path

import pytest

from deploys.library.settings import SettingsError, load_settings, overrides_from_data
from deploys.library.tls import LETSENCRYPT_PRODUCTION, TlsMode
from tests.unit.test_settings import clean_env  # noqa: F401 - the same environment, autouse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tls"
CA = FIXTURES / "private-acme-ca.pem"
TOKEN = "dns_cloudflare_api_token = cf-token-never-shown-0123"  # noqa: S105 - test value
DNS = {"tls": "dns", "tls_dns_provider": "cloudflare", "tls_dns_credentials": TOKEN}


def load(**overrides):
    return load_settings(overrides, env_file=None)


def problems(**overrides) -> list[str]:
    with pytest.raises(SettingsError) as info:
        load(**overrides)
    assert "cf-token-never-shown" not in str(info.value)
    return info.value.problems


def test_defaults_are_off_and_lets_encrypt_production() -> None:
    settings = load()
    assert settings.tls is TlsMode.OFF
    assert settings.tls_acme_server == LETSENCRYPT_PRODUCTION
    assert (settings.tls_force_ssl, settings.tls_http2, settings.tls_hsts, settings.tls_hsts_subdomains) == (
        True, True, True, False)
    assert settings.tls_ca_bundle is None


def test_dns_with_provider_and_credentials_from_host_data() -> None:
    settings = load(**overrides_from_data({**DNS, "tls_propagation_seconds": 120}))
    assert settings.tls is TlsMode.DNS and settings.tls_dns_provider == "cloudflare"
    assert settings.tls_dns_credentials.get_secret_value() == TOKEN
    assert settings.tls_propagation_seconds == 120
    assert "cf-token-never-shown" not in repr(settings)


def test_dns_without_provider_or_credentials_is_refused_in_one_line_each() -> None:
    (line,) = problems(tls="dns")
    assert line.startswith("HOMELAB_TLS_DNS_PROVIDER: required while HOMELAB_TLS is dns")
    (line,) = problems(tls="dns", tls_dns_provider="cloudflare")
    assert line.startswith("HOMELAB_TLS_DNS_CREDENTIALS: required while HOMELAB_TLS is dns with the "
                           "cloudflare")


def test_route53_needs_no_credentials_file() -> None:
    assert load(tls="dns", tls_dns_provider="route53").tls_dns_credentials is None


def test_an_unknown_provider_names_the_close_ones() -> None:
    (line,) = problems(tls="dns", tls_dns_provider="cloudfare", tls_dns_credentials=TOKEN)
    assert line.startswith("HOMELAB_TLS_DNS_PROVIDER (from host data `tls_dns_provider`): 'cloudfare' is not "
                           "valid: not a DNS provider NGINX Proxy Manager knows; did you mean cloudflare")


def test_unknown_mode_and_empty_credentials_are_refused() -> None:
    found = problems(tls="https", tls_dns_credentials="  ")
    assert any(line.startswith("HOMELAB_TLS (from host data `tls`): 'https' is not valid") for line in found)
    assert any(line.startswith("HOMELAB_TLS_DNS_CREDENTIALS") and "(secret, not shown)" in line
               for line in found)


def test_the_acme_email_is_the_npm_admins() -> None:
    assert load(**DNS, tls_email="Admin@home.example.com").tls_email == "admin@home.example.com"
    (line,) = problems(**DNS, tls_email="certs@home.example.com")
    assert line.startswith("HOMELAB_TLS_EMAIL: 'certs@home.example.com' differs from HOMELAB_NPM_ADMIN_EMAIL "
                           "'admin@home.example.com'")
    assert "set HOMELAB_NPM_ADMIN_EMAIL" in line


@pytest.mark.parametrize("seconds", [0, 3601, "soon"])
def test_propagation_seconds_are_bounded(seconds) -> None:
    (line,) = problems(**DNS, tls_propagation_seconds=seconds)
    assert line.startswith("HOMELAB_TLS_PROPAGATION_SECONDS")


@pytest.mark.parametrize("url", ["http://acme.example.com/dir", "acme.example.com", "https://"])
def test_the_acme_server_is_an_https_url(url) -> None:
    (line,) = problems(**DNS, tls_acme_server=url)
    assert line.startswith("HOMELAB_TLS_ACME_SERVER")
    assert "expected the HTTPS URL of an ACME directory" in line


def test_a_ca_file_is_read_and_checked_on_the_controller(tmp_path) -> None:
    settings = load(**DNS, tls_acme_server="https://pebble.lab:14000/dir", tls_ca_file=str(CA))
    assert settings.tls_ca_bundle == CA.read_text()
    (line,) = problems(**DNS, tls_ca_file=str(tmp_path / "missing.pem"))
    assert line.startswith("HOMELAB_TLS_CA_FILE") and "there is no file there" in line
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    (line,) = problems(**DNS, tls_ca_file=str(empty))
    assert "expected one or more PEM certificates" in line
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    (line,) = problems(**DNS, tls_ca_file=str(broken))
    assert "cannot be read" in line
    with_key = tmp_path / "with-key.pem"
    with_key.write_text(CA.read_text() + "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    (line,) = problems(**DNS, tls_ca_file=str(with_key))
    assert "private key" in line
