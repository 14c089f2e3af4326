"""HTTPS on every subdomain by DNS-01, for real: the deploy asks the NPM stand-in for one wildcard
certificate, the stand-in runs Debian's certbot as NPM does, certbot writes the challenge's TXT record
into the lab's bind9 with the lab's TSIG key, the lab's pebble looks it up there and issues, and the
stand-in's nginx serves it (lab/acme.py, lab/doubles/npm_certbot.py, inventories/lab.py LAB_TLS).

What the tests expect is stated here: the names, the wildcard, the issuer, the redirect and the header.
The chain is checked with curl against the roots `python -m lab up` saved (the ACME directory's CA and
pebble's root), never with -k.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest
from labkit import ROOT, assert_clean, npm_api, run_pyinfra_cli, ssh, verify

from lab.data import LAB_DATA, TSIG_SECRET

SERVER = "deploys/server.py"
DOMAIN = "lab.home.arpa"
NAMES = [f"{sub}.{DOMAIN}" for sub in ("chat", "ollama", "comfy", "hole")]
WILDCARD = {f"*.{DOMAIN}", DOMAIN}
NPM_DATA = f"{LAB_DATA['cold_storage_path']}/services/nginx-proxy"
ROOTS = "/root/lab-acme-roots.pem"  # this test's own copy of the roots on the lab host
TLS = {"LAB_TLS": "dns"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _reset_npm(host) -> None:
    """NPM from scratch (container, database, certificates): no certificate left from an earlier run."""
    ssh(host, f"docker rm -f nginx-proxy-manager >/dev/null 2>&1; rm -rf {NPM_DATA}")


def _certificates(host) -> list[dict]:
    return json.loads(npm_api(host, "certificates"))


def _curl(host, *args: str) -> str:
    quoted = " ".join(shlex.quote(a) for a in args)
    return ssh(host, f"curl -sS --max-time 20 {quoted}").stdout


@pytest.fixture(scope="module")
def tls_host(lab_hosts):
    host = lab_hosts[0]
    roots = (ROOT / ".lab" / "acme-roots.pem").read_text()
    ssh(host, f"printf '%s' {shlex.quote(roots)} > {ROOTS}")
    _reset_npm(host)
    yield host, host["name"]
    # the other modules expect the shared host's subdomains on plain HTTP, as TLS `off` leaves them
    _reset_npm(host)
    run_pyinfra_cli(SERVER, limit=host["name"], check=False)


def test_a_tsig_secret_the_dns_server_does_not_know_fails_in_one_line(tls_host):
    host, name = tls_host
    result = run_pyinfra_cli(SERVER, limit=name, check=False, env={"LAB_TLS": "dns-wrong-key"})
    output = ANSI.sub("", result.stdout + result.stderr)
    assert result.returncode != 0, result.explain()
    assert_clean(result)
    failed = [line for line in output.splitlines() if "letsencrypt.log" in line]
    assert failed, result.explain()
    assert re.search(r"credential|TSIG|signature|key", failed[0], re.IGNORECASE), failed[0]
    assert TSIG_SECRET not in output
    assert "bm90LXRoZS1sYWItdHNpZy1rZXktbm90LXRoZS1sYWI=" not in output
    assert _certificates(host) == []  # NPM removed the failed request's row


def test_the_wildcard_is_issued_by_dns01_and_served_on_every_subdomain(tls_host):
    host, name = tls_host
    run_pyinfra_cli(SERVER, limit=name, env=TLS)
    certificates = _certificates(host)
    assert len(certificates) == 1, certificates
    assert {n.lower() for n in certificates[0]["domain_names"]} == WILDCARD
    ip = host["tailscale_ip"]
    for server_name in NAMES:
        answer = _curl(host, "--cacert", ROOTS, "--resolve", f"{server_name}:443:{ip}", "-o", "/dev/null",
                       "-D", "-", "-w", "verify=%{ssl_verify_result} http=%{http_version}\n",
                       f"https://{server_name}/")
        assert "verify=0 http=2" in answer, (server_name, answer)
        assert re.search(r"(?im)^strict-transport-security: max-age=\d+", answer), (server_name, answer)
        plain = _curl(host, "--resolve", f"{server_name}:80:{ip}", "-o", "/dev/null", "-w",
                      "%{http_code} %{redirect_url}", f"http://{server_name}/some/path")
        assert plain == f"301 https://{server_name}/some/path", (server_name, plain)
    served = ssh(host, f"openssl s_client -connect {ip}:443 -servername {NAMES[0]} </dev/null 2>/dev/null"
                       " | openssl x509 -noout -subject -issuer -ext subjectAltName").stdout
    assert f"CN = *.{DOMAIN}" in served, served
    assert "Pebble Intermediate CA" in served, served
    assert f"DNS:*.{DOMAIN}" in served and f"DNS:{DOMAIN}" in served, served


def test_a_second_run_changes_nothing_and_requests_no_certificate(tls_host):
    host, name = tls_host
    before = _certificates(host)
    result = run_pyinfra_cli(SERVER, limit=name, env=TLS)
    assert result.changed == 0, result.changed_operations()
    assert _certificates(host) == before
    live = ssh(host, f"ls {NPM_DATA}/certificates/letsencrypt/live").stdout.split()
    assert [n for n in live if n.startswith("npm-")] == [f"npm-{before[0]['id']}"], live
    # tier 1 reads the same from NPM: the wildcard, its expiry, every subdomain's host using it
    checked = run_pyinfra_cli("deploys/validate.py", limit=name, check=False, env=TLS)
    rows = [line for line in checked.stderr.splitlines() if line.startswith("  https ")]
    assert len(rows) == 1 and rows[0].split()[1] == "PASS", checked.stderr[-3000:]
    assert f"#{before[0]['id']} expires" in rows[0], rows[0]


def test_tier3_checks_https_on_every_subdomain(tls_host, tmp_path):
    _, name = tls_host
    code, failed, passed, tail = verify(name, tmp_path, env=TLS)
    assert code == 0 and not failed, tail
    # the two HTTPS checks ran (not skipped) for each of the four subdomains
    code, failed, passed, tail = verify(name, tmp_path, env=TLS, keyword="https")
    assert (code, failed, passed) == (0, set(), 2 * len(NAMES)), tail
    # trusting only the ACME directory's CA (not pebble's root), the chain check fails on every subdomain
    directory_ca = (ROOT / ".lab" / "acme-roots.pem").read_text().split("-----END CERTIFICATE-----")[0]
    other_roots = tmp_path / "directory-ca-only.pem"
    other_roots.write_text(directory_ca + "-----END CERTIFICATE-----\n")
    code, failed, passed, tail = verify(name, tmp_path, env={**TLS, "LAB_TLS_ROOTS": str(other_roots)},
                                        keyword="valid_chain")
    assert code != 0 and len(failed) == len(NAMES) and passed == 0, tail
    assert "does not verify" in tail, tail
