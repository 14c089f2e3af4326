"""The NPM stand-in runs certbot as NPM 2.15.1 runs it (lab.doubles.npm_certbot); the lab test
tests/lab/test_tls.py runs it for real against the lab's pebble and bind9."""

from __future__ import annotations

from pathlib import Path

from lab.doubles.npm_certbot import command

CERT = {"id": 4, "domain_names": ["*.example.test", "example.test"],
        "meta": {"dns_challenge": True, "dns_provider": "rfc2136", "propagation_seconds": 5}}


def test_the_dns_challenge_command_line_is_npms() -> None:
    args = command(CERT, "owner@example.test", Path("/etc/letsencrypt/credentials/credentials-4"),
                   "https://acme.example.test/dir")
    assert args == [
        "certbot", "certonly", "-n", "--config", "/etc/letsencrypt.ini", "--work-dir", "/tmp/letsencrypt-lib",
        "--logs-dir", "/data/logs", "--cert-name", "npm-4", "--agree-tos", "-m", "owner@example.test",
        "--preferred-challenges", "dns", "--domains", "*.example.test,example.test",
        "--authenticator", "dns-rfc2136",
        "--dns-rfc2136-credentials", "/etc/letsencrypt/credentials/credentials-4",
        "--dns-rfc2136-propagation-seconds", "5", "--server", "https://acme.example.test/dir",
    ]


def test_without_le_server_certbot_asks_its_default_and_the_credentials_stay_in_their_file() -> None:
    meta = {**CERT["meta"], "dns_provider_credentials": "dns_rfc2136_secret = c2VjcmV0"}
    args = command({**CERT, "meta": meta}, "owner@example.test", Path("/creds"), None)
    assert "--server" not in args
    assert not any("c2VjcmV0" in a for a in args)
