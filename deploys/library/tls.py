"""HTTPS on the subdomains: one wildcard certificate ``*.<domain>`` + ``<domain>`` that NGINX Proxy
Manager requests by the ACME DNS-01 challenge (the hosts are reachable only over Tailscale, so an
HTTP-01 challenge could never reach them).

The names and constants of that decision, defined once: the DNS providers NPM's certbot knows, the
default ACME server, where a private ACME server's CA bundle lives on the host and in NPM's container,
and where certbot logs. The settings (``HOMELAB_TLS*``) are in ``settings.py``; the host plan decides
the certificate's names (``plan.py``); the steps are in ``proxy_steps.py``.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath


class TlsMode(StrEnum):
    OFF = "off"  # the subdomains are plain HTTP (the default: nothing changes for existing hosts)
    DNS = "dns"  # one wildcard certificate by the DNS-01 challenge, used by every managed proxy host


LETSENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
# NPM 2.15.1's certbot DNS plugins, by the key NPM's API takes as ``meta.dns_provider`` (NPM's
# backend/certbot/dns-plugins.json); route53 reads AWS's own configuration, the others a credentials file
DNS_PROVIDERS: tuple[str, ...] = (
    "acmedns", "active24", "aliyun", "arvan", "azure", "baidu", "beget", "bunny", "cdmon", "cloudflare",
    "cloudns", "cloudxns", "constellix", "corenetworks", "cpanel", "ddnss", "desec", "digitalocean",
    "directadmin", "dnsimple", "dnsmadeeasy", "dnsmulti", "dnspod", "domainoffensive", "domeneshop",
    "duckdns", "dynu", "easydns", "edgedns", "eurodns", "firstdomains", "freedns", "gandi", "gcore",
    "glesys", "godaddy", "google", "googledomains", "he", "he-ddns", "hetzner", "hetzner-cloud",
    "hostinger", "hostingnl", "hover", "hosterby", "infomaniak", "inwx", "ionos", "ispconfig", "isset",
    "joker", "kas", "leaseweb", "linode", "loopia", "luadns", "mchost24", "mijnhost", "namecheap",
    "namecom", "netcup", "nicru", "njalla", "nsone", "oci", "ovh", "plesk", "porkbun", "powerdns",
    "rcode0", "regru", "rfc2136", "rockenstein", "route53", "selectelv2", "simply", "spaceship", "strato",
    "tencentcloud", "timeweb", "transip", "vultr", "websupport", "wedos", "zoneedit",
)
NO_CREDENTIALS_FILE = frozenset({"route53"})  # certbot-dns-route53 reads AWS's environment or config

# a private ACME server's CA bundle: written into NPM's data folder on the host, which NPM's container
# sees as /data; certbot (run by NPM, inheriting its environment) trusts it through REQUESTS_CA_BUNDLE
CA_BUNDLE_NAME = "homelab-acme-ca.pem"
CA_BUNDLE_IN_CONTAINER = PurePosixPath("/data") / CA_BUNDLE_NAME
# certbot's log inside NPM's data folder (NPM runs certbot with --logs-dir /data/logs)
CERTBOT_LOG = PurePosixPath("logs/letsencrypt.log")
# preflight and verification warn when the certificate expires sooner than this (NPM renews at 30 days)
EXPIRY_WARNING_DAYS = 21

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


def wildcard_names(domain: str) -> tuple[str, str]:
    """The certificate's names: the wildcard first, then the domain itself."""
    return f"*.{domain}", domain


def ca_bundle_problem(text: str) -> str | None:
    """Why ``text`` is not a bundle of one or more PEM certificates to trust (``None``: it is one)."""
    blocks = _PEM_BLOCK.findall(text)
    kinds = {kind for kind, _ in blocks}
    if any("PRIVATE KEY" in kind for kind in kinds):
        return ("it holds a private key; expected only the CA's certificates (the file is written "
                "world-readable into NPM's data folder)")
    certificates = [body for kind, body in blocks if kind == "CERTIFICATE"]
    if not certificates:
        return "expected one or more PEM certificates (-----BEGIN CERTIFICATE-----), found none"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError) as error:
        reason = getattr(error, "reason", None) or type(error).__name__
        return f"a certificate in it cannot be read ({reason})"
    return None


@dataclass(frozen=True)
class TlsPlan:
    """What HTTPS means on a host running NPM (``HostPlan.tls``): the certificate's names, the flags every
    managed proxy host gets, and NPM's environment (``acme_server`` as ``LE_SERVER``; ``ca_bundle``, the
    bundle's path in the container, as ``REQUESTS_CA_BUNDLE`` when a private CA is trusted)."""

    names: tuple[str, str]
    force_ssl: bool
    http2: bool
    hsts: bool
    hsts_subdomains: bool
    acme_server: str
    ca_bundle: str | None

    def ssl(self) -> dict:
        """The ``ssl`` argument of ``npm.proxy_host``: the wildcard, named by its domain names."""
        return {"certificate": list(self.names), "force_ssl": self.force_ssl, "http2": self.http2,
                "hsts": self.hsts, "hsts_subdomains": self.hsts_subdomains}
