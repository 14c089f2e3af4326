"""deploys/proxy.py with HOMELAB_TLS=dns, planned against a `@fake` host whose NPM is the test double:
the wildcard certificate is requested before the proxy hosts, every managed proxy host is planned onto
it, and once NPM holds it and the hosts use it a second run has nothing to do; with TLS off the hosts
stay plain HTTP and no certificate is asked for. deploys/services.py uploads a private ACME CA bundle."""

from __future__ import annotations

from pathlib import Path

from harness import DEBIAN_12, plan
from test_proxy_plans import PROXY, debian
from test_proxy_plans import apis as apis  # noqa: F401 - the fixture

CA = Path(__file__).resolve().parents[1] / "fixtures" / "tls" / "private-acme-ca.pem"
TOKEN = "dns_cloudflare_api_token = cf-token-never-shown-0123"  # noqa: S105 - test value
DNS = {"tls": "dns", "tls_dns_provider": "cloudflare", "tls_dns_credentials": TOKEN}
CERT_OP = ("Proxy hosts | Wildcard certificate *.home.example.com, home.example.com "
           "(DNS challenge, cloudflare)")
NAMES = ["*.home.example.com", "home.example.com"]


def test_the_certificate_comes_first_then_every_host_uses_it_then_nothing(apis) -> None:
    ops = plan(PROXY, debian(), DNS)
    names = list(ops)
    assert ops[CERT_OP] == ["FunctionCommand"]
    hosts = [name for name in names if name.startswith("Proxy hosts | ") and " -> " in name]
    assert len(hosts) == 4 and all(ops[name] == ["FunctionCommand"] for name in hosts)
    assert all(names.index(CERT_OP) < names.index(name) for name in hosts)
    assert apis.npm.certificates == {}  # planning asked for nothing

    # what those commands do (the operation tests run them): NPM holds the certificate, the hosts use it
    cert = apis.npm_client.create_dns_certificate(NAMES, "cloudflare", TOKEN)
    ssl = {"certificate_id": cert["id"], "ssl_forced": True, "http2_support": True, "hsts_enabled": True}
    for route in ("chat", "ollama", "comfy", "hole"):
        target = {"chat": ("open-webui", 8080), "ollama": ("ollama", 11434), "comfy": ("comfyui", 8188),
                  "hole": ("pihole", 80)}[route]
        apis.npm_client.create_proxy_host({
            "domain_names": [f"{route}.home.example.com"], "forward_scheme": "http",
            "forward_host": target[0],
            "forward_port": target[1], "allow_websocket_upgrade": True, "block_exploits": True,
            "meta": {"managed_by": "homelab-pyinfra"}, **ssl})
    ops = plan(PROXY, debian(), DNS)
    assert {name: cmds for name, cmds in ops.items() if cmds and name.startswith("Proxy")} == {}


def test_off_asks_for_no_certificate_and_keeps_plain_http(apis) -> None:
    ops = plan(PROXY, debian())
    assert not [name for name in ops if "certificate" in name.lower()]
    assert apis.npm.certificates == {}


def test_a_private_ca_bundle_is_uploaded_into_npms_data_folder() -> None:
    data = {**DNS, "tls_acme_server": "https://pebble.lab:14000/dir", "tls_ca_file": str(CA),
            "services": "nginx-proxy-manager"}
    ops = plan("deploys/services.py", {"ls -pdL *-release": DEBIAN_12, "uname -m": "x86_64"}, data)
    (upload,) = [name for name in ops if "CA bundle" in name]
    assert ops[upload] == [
        f"upload /cold-storage/services/nginx-proxy/data/homelab-acme-ca.pem:\n{CA.read_text()}",
        "chown root:root /cold-storage/services/nginx-proxy/data/homelab-acme-ca.pem",
        "chmod 644 /cold-storage/services/nginx-proxy/data/homelab-acme-ca.pem",
    ]
