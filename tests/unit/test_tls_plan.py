"""HOMELAB_TLS in the host plan and NPM's compose file: off changes nothing of today's file; dns puts
the ACME server (and a private CA bundle's path) into NPM's environment, so a changed setting changes
the file and compose re-creates the container."""

from pathlib import Path

import yaml

from deploys.library.catalog import Service
from deploys.library.compose_files import compose_document, npm_data_dir, render_compose
from tests.planning import one_host

NPM = Service.NGINX_PROXY_MANAGER
CA = Path(__file__).resolve().parents[1] / "fixtures" / "tls" / "private-acme-ca.pem"
DNS = {"tls": "dns", "tls_dns_provider": "cloudflare",
       "tls_dns_credentials": "dns_cloudflare_api_token = abc1"}


def npm_environment(plan) -> dict:
    return compose_document(plan, NPM)["services"][NPM]["environment"]


def test_off_leaves_npms_compose_file_as_it_was() -> None:
    plan = one_host()
    assert plan.tls is None
    assert npm_environment(plan) == {"TZ": "UTC"}
    # settings of the dns mode given while TLS is off change nothing either
    unused = one_host(tls_acme_server="https://acme.example.net/dir")
    assert render_compose(unused, NPM) == render_compose(plan, NPM)


def test_dns_decides_the_wildcard_and_the_flags() -> None:
    tls = one_host(**DNS).tls
    assert tls.names == ("*.home.example.com", "home.example.com")
    assert tls.ssl() == {"certificate": ["*.home.example.com", "home.example.com"], "force_ssl": True,
                         "http2": True, "hsts": True, "hsts_subdomains": False}
    # NPM sends HSTS only with force-SSL: the plan says what NPM will store
    assert one_host(**DNS, tls_force_ssl="false", tls_hsts_subdomains="true").tls.ssl()["hsts"] is False
    described = one_host(**DNS).describe()
    assert "https         *.home.example.com, home.example.com by DNS-01 (cloudflare" in described


def test_dns_sets_le_server_and_a_changed_server_changes_the_file() -> None:
    assert npm_environment(one_host(**DNS)) == {
        "TZ": "UTC", "LE_SERVER": "https://acme-v02.api.letsencrypt.org/directory"}
    other = one_host(**DNS, tls_acme_server="https://acme-staging-v02.api.letsencrypt.org/directory")
    assert render_compose(other, NPM) != render_compose(one_host(**DNS), NPM)
    assert "abc1" not in render_compose(other, NPM)


def test_a_private_ca_is_trusted_through_requests_ca_bundle() -> None:
    plan = one_host(**DNS, tls_acme_server="https://pebble.lab:14000/dir", tls_ca_file=str(CA))
    assert npm_environment(plan)["REQUESTS_CA_BUNDLE"] == "/data/homelab-acme-ca.pem"
    # the container's /data is this folder on the host
    volumes = yaml.safe_load(render_compose(plan, NPM))["services"][NPM]["volumes"]
    assert f"{npm_data_dir(plan.settings)}:/data" in volumes


def test_no_tls_plan_where_npm_does_not_run() -> None:
    assert one_host(**DNS, services="pihole,ollama").tls is None
