"""Reading why certbot failed from its log. The logs are CONSTRUCTED from certbot's message formats
(tests/fixtures/certbot-logs/README.md), not recorded."""

from pathlib import Path

import pytest

from operations.certbot_log import credential_values, explain, last_run

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "certbot-logs"


@pytest.mark.parametrize(
    ("log", "cause", "detail"),
    [
        ("rfc2136-badkey.log", "credentials", "The peer didn't know the key we used"),
        ("rfc2136-notauth.log", "credentials", "Received response from server: NOTAUTH"),
        ("cloudflare-bad-token.log", "credentials", "6003 Invalid request headers"),
        ("propagation-incorrect-txt.log", "propagation", 'Incorrect TXT record "Zt4m0-example-token-2"'),
        ("propagation-nxdomain.log", "propagation", "NXDOMAIN looking up TXT for _acme-challenge"),
        ("rate-limited.log", "rate-limit", "rateLimited"),
        ("acme-untrusted.log", "acme-untrusted", "CERTIFICATE_VERIFY_FAILED"),
        ("acme-unreachable.log", "acme-unreachable", "Connection refused"),
        ("other.log", "other", "Unable to find a Route53 hosted zone"),
    ],
)
def test_each_cause_is_named_with_certbots_words(log, cause, detail) -> None:
    failure = explain((LOGS / log).read_text())
    assert failure.cause == cause
    assert detail in failure.detail
    assert "\n" not in failure.line() and len(failure.line()) < 500


def test_only_the_last_run_is_read() -> None:
    text = (LOGS / "rfc2136-badkey.log").read_text()
    assert "An older run's error" in text and "An older run's error" not in last_run(text)
    older_only = text.split("2025-06-01 10:00:00,101")[0]
    assert explain(older_only).detail == "An older run's error: Some other failure"


def test_an_empty_log_says_so() -> None:
    assert explain("").cause == "unknown"


def test_credentials_never_shown() -> None:
    ini = "dns_rfc2136_server = 10.0.0.53\ndns_rfc2136_secret = c2VjcmV0LWtleQ==\n# comment = x\n"
    values = credential_values(ini)
    assert "c2VjcmV0LWtleQ==" in values and "x" not in values
    log = (LOGS / "other.log").read_text().replace("Route53 hosted zone", "zone c2VjcmV0LWtleQ==")
    assert "c2VjcmV0LWtleQ==" not in explain(log, values).line()


RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "certbot"


@pytest.mark.parametrize(
    ("case", "cause", "detail"),
    [
        ("bad-tsig", "credentials", "The peer didn't like the signature we sent"),
        ("dns-unreachable", "dns-unreachable", "The DNS operation timed out"),
        ("not-propagated", "propagation", "Error retrieving TXT records for DNS challenge"),
        ("unreachable", "acme-unreachable", "Connection refused"),
        ("untrusted", "acme-untrusted", "CERTIFICATE_VERIFY_FAILED"),
    ],
)
def test_recorded_certbot_failures_are_named(case, cause, detail) -> None:
    """Real logs of Debian's certbot 2.1.0 against the lab's pebble and bind9 (tests/fixtures/certbot)."""
    failure = explain((RECORDED / f"{case}.letsencrypt.log").read_text())
    assert (failure.cause, detail in failure.detail) == (cause, True), failure
