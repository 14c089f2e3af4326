"""The lab's DNS-01 world (LAB ONLY): an ACME server and the DNS server its challenges are checked at.

What a tailnet-only owner uses for HTTPS is a wildcard certificate by DNS-01: NPM's certbot writes a TXT
record at the owner's DNS provider and the ACME server (Let's Encrypt) looks it up there. The lab runs
that whole flow with real programs from Debian, in the world stand-in (lab/world.py), on the lab network:

- **bind9**, authoritative for the lab's domain (lab/data.py LAB_DOMAIN) on port ACME_DNS_PORT, taking
  RFC 2136 updates of TXT records signed with the lab's TSIG key (lab/data.py) — the "DNS provider"
  that NPM's certbot (with its rfc2136 plugin) writes the challenge into;
- **pebble**, an ACME server (RFC 8555) on ACME_PORT, which looks the challenges up at that bind9
  (`-dnsserver`), never elsewhere, and issues from a root it makes at every start.

Pebble's directory is served over HTTPS; `start` makes a small CA for it (openssl, in the container,
at every start) and a server certificate for the world's lab address. ``roots`` prints what a client
must trust: that CA (for the ACME directory) and Pebble's current root (for the certificates it
issues), the bundle the lab inventory hands to the deploy as HOMELAB_TLS_CA_FILE.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from lab.data import (
    ACME_DNS_PORT,
    ACME_MANAGEMENT_PORT,
    ACME_PORT,
    LAB_DOMAIN,
    TSIG_ALGORITHM,
    TSIG_KEY_NAME,
    TSIG_SECRET,
)

ACME_DIR = Path("/etc/lab-acme")
CA_PEM = ACME_DIR / "ca.pem"
ACME_NAME = "acme.world.lab.test"


def directory_url(address: str) -> str:
    """The ACME directory of the lab's pebble at the world's lab address."""
    return f"https://{address}:{ACME_PORT}/dir"


def named_config(zone_file: Path, address: str) -> str:
    return f"""\
// LAB STAND-IN: bind9 of the lab's world (lab.acme), authoritative for {LAB_DOMAIN} only
options {{
    directory "{ACME_DIR}";
    listen-on port {ACME_DNS_PORT} {{ {address}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ any; }};
    dnssec-validation no;
    pid-file "{ACME_DIR}/named.pid";
}};
controls {{ }};
key "{TSIG_KEY_NAME}" {{
    algorithm {TSIG_ALGORITHM};
    secret "{TSIG_SECRET}";
}};
zone "{LAB_DOMAIN}" {{
    type primary;
    file "{zone_file}";
    update-policy {{ grant {TSIG_KEY_NAME} zonesub TXT; }};
}};
"""


def zone(address: str) -> str:
    return (
        "$TTL 60\n"
        f"@ IN SOA ns.{LAB_DOMAIN}. hostmaster.{LAB_DOMAIN}. 1 60 60 600 60\n"
        f"@ IN NS ns.{LAB_DOMAIN}.\n"
        f"ns IN A {address}\n"
    )


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_tls(address: str) -> tuple[Path, Path]:
    """A CA (kept only in this container) and a certificate for pebble's listener at ``address``."""
    ACME_DIR.mkdir(parents=True, exist_ok=True)
    ca_key, key, csr, cert = (ACME_DIR / n for n in ("ca.key", "server.key", "server.csr", "server.pem"))
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(CA_PEM), "-days", "3650",
             "-subj", "/CN=homelab lab ACME directory CA (LAB ONLY)",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={ACME_NAME}")
    with tempfile.NamedTemporaryFile("w", suffix=".ext", delete=False) as ext:
        ext.write(f"subjectAltName=IP:{address},DNS:{ACME_NAME}\n"
                  "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                  "extendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(CA_PEM), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(cert), "-days", "3650", "-extfile", ext.name)
    os.unlink(ext.name)
    return cert, key


def start(address: str) -> dict[str, subprocess.Popen]:
    """bind9 and pebble, started; the caller watches them."""
    ACME_DIR.mkdir(parents=True, exist_ok=True)
    zone_file = ACME_DIR / f"{LAB_DOMAIN}.zone"
    zone_file.write_text(zone(address))
    for journal in ACME_DIR.glob("*.jnl"):
        journal.unlink()
    conf = ACME_DIR / "named.conf"
    conf.write_text(named_config(zone_file, address))
    cert, key = make_tls(address)
    config = ACME_DIR / "pebble.json"
    config.write_text(json.dumps({"pebble": {
        # the world's lab address only: where the lab's hosts and containers reach it
        "listenAddress": f"{address}:{ACME_PORT}",
        "managementListenAddress": f"{address}:{ACME_MANAGEMENT_PORT}",
        "certificate": str(cert), "privateKey": str(key),
        "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": False,
    }}))
    # no artificial sleeps, no rejected nonces: every challenge is still checked at bind9 for real
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    return {
        "named": subprocess.Popen(["named", "-g", "-c", str(conf)]),
        "pebble": subprocess.Popen(
            ["pebble", "-config", str(config), "-dnsserver", f"{address}:{ACME_DNS_PORT}"], env=env),
    }


def roots(timeout: float = 30.0) -> str:
    """The directory's CA and pebble's current root, PEM, once pebble answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            context = ssl.create_default_context(cafile=str(CA_PEM))  # made at the world's start
            # the management address pebble was started with (the world's lab address)
            where = json.loads((ACME_DIR / "pebble.json").read_text())["pebble"]["managementListenAddress"]
            with urllib.request.urlopen(f"https://{where}/roots/0", context=context, timeout=5) as answer:
                root = answer.read().decode()
            return CA_PEM.read_text() + root
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


if __name__ == "__main__":
    if sys.argv[1:] != ["roots"]:
        print("usage: python3 -m lab.acme roots", file=sys.stderr)
        sys.exit(2)
    sys.stdout.write(roots())
