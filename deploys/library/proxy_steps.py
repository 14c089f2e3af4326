"""Proxy hosts and DNS records for the services, wherever in the inventory they run."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import deploy

from deploys.library import tunnel
from deploys.library.catalog import CATALOG, MANAGED_BY, Service
from deploys.library.compose_files import npm_data_dir
from deploys.library.context import HostContext
from deploys.library.tls import CERTBOT_LOG
from operations import npm, pihole
from operations.clients.npm import NpmClient
from operations.clients.pihole import PiholeClient

# how long the run waits for an API to answer (while planning: tunnel.PLANNING_WAIT)
NPM_READY_TIMEOUT = 120
PIHOLE_READY_TIMEOUT = 120


def _npm_factory(ctx: HostContext):
    client: dict[str, NpmClient] = {}

    def make() -> NpmClient:
        if "npm" not in client:
            url = tunnel.local_url(
                host, ctx.require_tailscale_ip(), CATALOG[Service.NGINX_PROXY_MANAGER].upstream_port
            )
            made = NpmClient(
                url, ctx.settings.npm_admin_email or "", ctx.settings.npm_admin_password,
                previous_email=ctx.settings.npm_admin_previous_email,
                previous_password=ctx.settings.npm_admin_previous_password,
            )
            made.wait_ready(timeout=tunnel.ready_wait(NPM_READY_TIMEOUT))
            client["npm"] = made
        return client["npm"]

    return tunnel.answering_once(make, "NGINX Proxy Manager")


def _pihole_factory(ctx: HostContext):
    """Pi-hole's client, asked once whether its API answers when it is made (a bounded wait at execute
    time, a short one while planning); each use logs in and out (``PiholeClient``)."""
    client: dict[str, PiholeClient] = {}

    def make() -> PiholeClient:
        # one client while planning, another when the run applies: this run may have made the container
        # again, and with it its address on the Docker network
        phase = "run" if host.state.is_executing else "plan"
        if phase not in client:
            pihole = CATALOG[Service.PIHOLE]
            url = tunnel.container_url(host, pihole.name, "Pi-hole", pihole.upstream_port)
            made = PiholeClient(url, ctx.settings.pihole_password, setting_name="HOMELAB_PIHOLE_PASSWORD")
            made.wait_ready(timeout=tunnel.ready_wait(PIHOLE_READY_TIMEOUT))
            client[phase] = made
        return client[phase]

    return tunnel.answering_once(make, "Pi-hole")


# what to do when the certificate request fails, by the cause certbot's log names (certbot_log.CAUSES)
REMEDIES = {
    "credentials": "check HOMELAB_TLS_DNS_CREDENTIALS (a token allowed to edit the zone's DNS records) and "
                   "HOMELAB_TLS_DNS_PROVIDER",
    "dns-unreachable": "check the server named in HOMELAB_TLS_DNS_CREDENTIALS and that the host reaches it",
    "propagation": "the TXT record goes into the public zone of HOMELAB_DOMAIN: check that the provider "
                   "serves that zone, or raise HOMELAB_TLS_PROPAGATION_SECONDS",
    "acme-unreachable": "check HOMELAB_TLS_ACME_SERVER and that the host reaches it",
    "acme-untrusted": "a private ACME server needs HOMELAB_TLS_CA_FILE (its root certificate)",
}


def wildcard_certificate(ctx: HostContext, factory) -> None:
    """The one certificate of HOMELAB_TLS=dns, before the proxy hosts that use it."""
    tls, settings = ctx.plan.tls, ctx.settings
    assert tls is not None and settings.tls_dns_provider is not None
    npm.dns_certificate(
        name=f"Wildcard certificate {', '.join(tls.names)} (DNS challenge, {settings.tls_dns_provider})",
        client_factory=factory,
        domain_names=list(tls.names),
        dns_provider=settings.tls_dns_provider,
        dns_credentials=settings.tls_dns_credentials,
        propagation_seconds=settings.tls_propagation_seconds,
        certbot_log_path=str(npm_data_dir(settings) / CERTBOT_LOG),
        remedies=REMEDIES,
    )


@deploy("Proxy hosts")
def proxy_hosts(ctx: HostContext):
    factory = _npm_factory(ctx)
    npm.admin(name="NGINX Proxy Manager admin account", client_factory=factory)
    tls = ctx.plan.tls
    if tls is not None:
        wildcard_certificate(ctx, factory)
    for route in ctx.plan.routes:
        npm.proxy_host(
            name=f"{route.domain} -> {route.forward_host}:{route.forward_port}",
            client_factory=factory,
            domain_names=[route.domain],
            forward_scheme="http",
            forward_host=route.forward_host,
            forward_port=route.forward_port,
            websocket=True,
            block_exploits=True,
            ssl=tls.ssl() if tls is not None else None,
            manager_tag=MANAGED_BY,
        )
    for domain in ctx.plan.retired_routes:  # a proxy host made by hand is left alone, with a line saying so
        npm.proxy_host(
            name=f"{domain}: retired: proxy host removed",
            client_factory=factory,
            domain_names=[domain],
            present=False,
            manager_tag=MANAGED_BY,
        )


@deploy("Local DNS")
def dns_records(ctx: HostContext):
    factory = _pihole_factory(ctx)
    if ctx.plan.proxy_host is None:
        host.noop("no NGINX Proxy Manager in the inventory: no local DNS records to point at it")
    else:
        pihole.dns_records(
            name="Pi-hole local DNS for the subdomains",
            client_factory=factory,
            records=ctx.plan.dns_records,
        )
    retired = ctx.plan.retired_routes
    if retired:  # only these names: every other entry stays as it is
        pihole.dns_records(
            name=f"{', '.join(retired)}: retired: DNS record{'s' if len(retired) > 1 else ''} removed",
            client_factory=factory,
            records=list(retired),
            present=False,
        )


def proxy_and_dns(ctx: HostContext) -> None:
    if Service.NGINX_PROXY_MANAGER in ctx.services:
        proxy_hosts(ctx)
    if Service.PIHOLE in ctx.services:
        dns_records(ctx)
