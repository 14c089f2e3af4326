"""The NPM stand-in's certificate requests (LAB ONLY): Debian's real certbot, run as NPM 2.15.1 runs it.

NPM answers a Let's Encrypt certificate request by running certbot in its container; for the DNS
challenge it writes the provider's credentials to /etc/letsencrypt/credentials/credentials-<id> (0600)
and runs ``certbot certonly -n --config /etc/letsencrypt.ini --work-dir /tmp/letsencrypt-lib
--logs-dir /data/logs --cert-name npm-<id> --agree-tos -m <owner's email> --preferred-challenges dns
--domains <names> --authenticator dns-<provider> --dns-<provider>-credentials <file>
[--dns-<provider>-propagation-seconds N]``, plus ``--server $LE_SERVER`` when the container has that
variable. certbot keeps the certificate in /etc/letsencrypt/live/npm-<id>/ and logs to
/data/logs/letsencrypt.log; a failed run leaves the log and removes the credentials file.

This issuer does the same with Debian's certbot and its rfc2136 plugin (the only DNS plugin the stand-in
image carries: another provider fails as a plugin NPM could not install), so in the lab a certificate
is issued for real: certbot writes the TXT record into the lab's bind9 and the lab's pebble checks it
there (lab.acme). ``issue`` is the API double's issuer (lab.doubles.npm_double): the certificate's
expiry (Unix seconds), or ``CertbotFailed`` with the ``debug`` block NPM's 500 answer carries.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LETSENCRYPT = Path("/etc/letsencrypt")
CONFIG = Path("/etc/letsencrypt.ini")
LOGS_DIR = "/data/logs"
WORK_DIR = "/tmp/letsencrypt-lib"
# NPM's own /etc/letsencrypt.ini (its image's), less the webroot the DNS challenge does not use
CONFIG_TEXT = "text = True\nnon-interactive = True\nkey-type = ecdsa\nelliptic-curve = secp384r1\n"
PLUGINS = {"rfc2136": "dns-rfc2136"}  # provider key -> certbot authenticator, as NPM's plugin list has it
TIMEOUT = 900  # NPM's request may take up to 15 min


def live_dir(cert_id: int, root: Path = LETSENCRYPT) -> Path:
    return root / "live" / f"npm-{cert_id}"


def command(cert: dict[str, Any], email: str, credentials: Path, server: str | None) -> list[str]:
    """certbot's command line for ``cert`` (an NPM certificate row), in NPM 2.15.1's order."""
    meta = cert.get("meta") or {}
    args = ["certbot", "certonly", "-n", "--config", str(CONFIG), "--work-dir", WORK_DIR,
            "--logs-dir", LOGS_DIR, "--cert-name", f"npm-{cert['id']}", "--agree-tos", "-m", email]
    if meta.get("dns_challenge"):
        plugin = PLUGINS.get(str(meta.get("dns_provider")), f"dns-{meta.get('dns_provider')}")
        args += ["--preferred-challenges", "dns", "--domains", ",".join(cert["domain_names"]),
                 "--authenticator", plugin, f"--{plugin}-credentials", str(credentials)]
        if meta.get("propagation_seconds") is not None:
            args += [f"--{plugin}-propagation-seconds", str(meta["propagation_seconds"])]
    else:  # the HTTP challenge: NPM's webroot, which no ACME server can reach in the lab
        args += ["--authenticator", "webroot", "--webroot-path", "/data/letsencrypt-acme-challenge",
                 "--preferred-challenges", "http", "--domains", ",".join(cert["domain_names"])]
    if server:
        args += ["--server", server]
    return args


def expiry(fullchain: Path) -> int:
    """notAfter of the first certificate in ``fullchain`` (Unix seconds), as NPM reads it with openssl."""
    out = subprocess.run(["openssl", "x509", "-in", str(fullchain), "-enddate", "-noout"],
                         capture_output=True, text=True, check=True).stdout
    when = datetime.strptime(out.strip().partition("=")[2], "%b %d %H:%M:%S %Y %Z")
    return int(when.replace(tzinfo=UTC).timestamp())


def issue(cert: dict[str, Any], email: str) -> int:
    from lab.doubles.npm_double import CertbotFailed

    meta = cert.get("meta") or {}
    credentials = LETSENCRYPT / "credentials" / f"credentials-{cert['id']}"
    if not CONFIG.exists():
        CONFIG.write_text(CONFIG_TEXT)
    Path(LOGS_DIR).mkdir(parents=True, exist_ok=True)
    if meta.get("dns_challenge"):
        credentials.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(str(meta.get("dns_provider_credentials", "")))
    args = command(cert, email, credentials, os.environ.get("LE_SERVER") or None)
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc = subprocess.CompletedProcess(args, -9, "", "certbot ran past NPM's 15 minutes")
    if proc.returncode != 0:
        credentials.unlink(missing_ok=True)
        said = (proc.stderr + proc.stdout).strip()
        raise CertbotFailed({
            "stack": [f"CommandError: {said}"],
            "previous": {"code": proc.returncode, "killed": False, "signal": None, "cmd": " ".join(args)},
        })
    return expiry(live_dir(cert["id"]) / "fullchain.pem")
