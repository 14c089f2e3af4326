"""Proxy hosts and DNS records for the services, wherever in the inventory they run."""

from __future__ import annotations

from typing import Any

from pyinfra import host
from pyinfra.api import deploy

from deploys.library import tunnel
from deploys.library.catalog import CATALOG, MANAGED_BY
from deploys.library.context import DeployError, HostContext, hosts_running
from deploys.library.settings import Service, settings_for_host
from facts.docker import DockerContainerAddresses
from facts.tailscale import TailscaleIP
from operations import npm, pihole
from operations.clients.npm import NpmClient
from operations.clients.pihole import PiholeClient

NPM_READY_TIMEOUT = 120


def tailscale_ip_of(other: Any, ctx: HostContext) -> str:
    if other.name == host.name:
        return ctx.require_tailscale_ip()
    settings = settings_for_host(other)
    if settings.tailscale_ip:
        return str(settings.tailscale_ip)
    address = other.get_fact(TailscaleIP) if other.connected else None
    if not address:
        raise DeployError(
            f"{host.name}: the Tailscale IP of {other.name} is unknown: set `tailscale_ip` in its host data"
        )
    return address


def routes(ctx: HostContext) -> list[tuple[Service, str, str, int]]:
    """(service, domain name, forward host, forward port) for every proxied service in the inventory."""
    found = []
    for service, spec in CATALOG.items():
        if spec.subdomain is None or service not in ctx.settings.services:
            continue
        running = hosts_running(service)
        if not running:
            continue
        # a service placed on this host is served from here; otherwise from the first host running it
        target = next((each for each in running if each.name == host.name), running[0])
        if target.name == host.name:
            forward_host = spec.name  # the container, by name, on the shared Docker network
        else:
            forward_host = tailscale_ip_of(target, ctx)
        found.append((service, f"{spec.subdomain}.{ctx.settings.domain}", forward_host, spec.upstream_port))
    return found


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
            made.wait_ready(timeout=NPM_READY_TIMEOUT if host.state.is_executing else 5)
            client["npm"] = made
        return client["npm"]

    return make


def _pihole_factory(ctx: HostContext):
    def make() -> PiholeClient:
        address = (
            host.get_fact(DockerContainerAddresses).get(CATALOG[Service.PIHOLE].name, {}).get("self-hosted")
        )
        if not address:
            raise OSError("no answer from Pi-hole: its container is not running on the self-hosted network")
        url = tunnel.local_url(host, address, CATALOG[Service.PIHOLE].upstream_port)
        return PiholeClient(url, ctx.settings.pihole_password, setting_name="HOMELAB_PIHOLE_PASSWORD")

    return make


@deploy("Proxy hosts")
def proxy_hosts(ctx: HostContext):
    factory = _npm_factory(ctx)
    npm.admin(name="NGINX Proxy Manager admin account", client_factory=factory)
    for _service, domain, forward_host, forward_port in routes(ctx):
        npm.proxy_host(
            name=f"{domain} -> {forward_host}:{forward_port}",
            client_factory=factory,
            domain_names=[domain],
            forward_scheme="http",
            forward_host=forward_host,
            forward_port=forward_port,
            websocket=True,
            block_exploits=True,
            manager_tag=MANAGED_BY,
        )


@deploy("Local DNS")
def dns_records(ctx: HostContext):
    npm_hosts = hosts_running(Service.NGINX_PROXY_MANAGER)
    if not npm_hosts:
        host.noop("no NGINX Proxy Manager in the inventory: no local DNS records to point at it")
        return
    proxy = next((each for each in npm_hosts if each.name == host.name), npm_hosts[0])
    address = tailscale_ip_of(proxy, ctx)
    records = {domain: address for _, domain, _, _ in routes(ctx)}
    pihole.dns_records(
        name="Pi-hole local DNS for the subdomains", client_factory=_pihole_factory(ctx), records=records
    )


def proxy_and_dns(ctx: HostContext) -> None:
    if Service.NGINX_PROXY_MANAGER in ctx.services:
        proxy_hosts(ctx)
    if Service.PIHOLE in ctx.services:
        dns_records(ctx)
