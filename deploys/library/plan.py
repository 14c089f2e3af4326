"""The host plan: every decision about a host, made once per run, read by all three tiers.

From the settings, the inventory's groups and what the host reports (its Tailscale address, its GPU),
:func:`plan_host` decides which services run on the host, which ports each publishes and on which
address, the firewalld zone's sources, ports and services, the proxy hosts its NGINX Proxy Manager
holds, the DNS records its Pi-hole holds, and whether the GPU is used. Tier 1 (``deploys/validate.py``),
tier 2 (every deploy file, through ``context.current()``) and tier 3 (``tests/verify``) read the plan;
none of them re-derives a rule. ``python -m deploys.plan INVENTORY`` prints it.

The rules, in one place each:

- **placement** (:meth:`InventoryPlan.placed`): an enabled service goes to every host when the inventory
  has neither a ``core`` nor a ``gpu`` group; otherwise to the hosts of its catalog group. A host without
  a GPU leaves the GPU group's services out with ``HOMELAB_AI_WITHOUT_GPU=skip``.
- **the Tailscale address** (:func:`tailscale_address`): the setting ``tailscale_ip``, else what the host
  reports.
- **published ports** (:func:`published_ports`): a service's own host ports, plus its upstream port when
  a service on another host must reach it (the proxy forwarding to it, or another service's
  ``ServiceUrl``); always on the Tailscale address.
- **the zone**: the allowed Tailscale addresses as sources, exactly the published ports, SSH.
- **limits** (:meth:`HostPlan.limits_of`): each service's memory and CPU limits, ``HOMELAB_LIMITS`` over
  the catalog's defaults; a share (``40%``) is of the host's memory or CPUs, once the host is read.
- **proxy routes and DNS**: a subdomain is served from the service on the proxy's own host when it runs
  there, else from the first inventory host running it, at that host's Tailscale address; the DNS
  records point every subdomain at the proxy host's Tailscale address. A subdomain without a route (its
  service taken out, or placed on no host) is **retired** (:attr:`HostPlan.retired_routes`): its proxy
  host and DNS record are removed.

The plan holds no pyinfra object: the caller gives it the inventory's hosts (:class:`Member`) and a way
to learn another host's Tailscale address, so the verification tier builds the same plan without pyinfra
running a deploy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from deploys.library.catalog import (
    CATALOG,
    CORE_GROUP,
    EVERY_HOST,
    GPU_GROUP,
    MONITORING_GROUP,
    PLACEMENT_GROUPS,
    ZONE,
    Port,
    Service,
    referenced_services,
)
from deploys.library.errors import PlanError
from deploys.library.gpu import broken_gpu, working_gpu
from deploys.library.monitoring import ExpectedContainer, MonitoringPlan, Probe, ScrapeTarget, Thresholds
from deploys.library.resources import HostResources, Limit, limit_for
from deploys.library.settings import GpuDowngrade, HomelabSettings, NoGpuPolicy
from deploys.library.tls import CA_BUNDLE_IN_CONTAINER, TlsMode, TlsPlan, wildcard_names

# Tailscale peers may administer the host over SSH: the zone that admits them keeps SSH open
ZONE_SERVICES = ("ssh",)
PROXY = Service.NGINX_PROXY_MANAGER  # the service whose proxy hosts make the subdomains
DNS = Service.PIHOLE  # the service whose local records resolve them
WATCHER = Service.PROMETHEUS  # the service that scrapes every service declaring a metrics endpoint


@dataclass(frozen=True)
class Member:
    """One inventory host as the plan sees it: name, groups and settings (``None``: invalid)."""

    name: str
    groups: frozenset[str]
    settings: HomelabSettings | None


@dataclass(frozen=True)
class Published:
    """A port a service publishes on the host's Tailscale address."""

    service: str
    port: Port
    upstream: bool  # published because a service on another host reaches it (not one of its host ports)


@dataclass(frozen=True)
class Zone:
    name: str
    sources: tuple[str, ...]
    ports: tuple[str, ...]  # "80/tcp"
    services: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    """A proxy host: ``domain`` forwarded to ``forward_host:forward_port``."""

    service: str
    domain: str
    forward_host: str
    forward_port: int


def tailscale_address(settings: HomelabSettings | None, reported: str | None) -> str | None:
    """A host's Tailscale address: the configured one, else the one the host reports."""
    if settings is not None and settings.tailscale_ip is not None:
        return str(settings.tailscale_ip)
    return reported


class InventoryPlan:
    """Placement across the inventory: which host runs what (no host is contacted for it).

    ``address_of(name)`` gives another host's Tailscale address (configured, or read from that host);
    it is asked only when a route or a DNS record needs it. ``gpu_of(name)`` says whether a host has a
    working NVIDIA GPU (``None``: not known); it is asked only about services that need one (the DCGM
    exporter) and about a host's GPU services under HOMELAB_AI_WITHOUT_GPU=skip.
    """

    def __init__(self, members: Iterable[Member], address_of: Callable[[str], str | None],
                 gpu_of: Callable[[str], bool | None] | None = None):
        self.members = {member.name: member for member in members}
        self.address_of = address_of
        self._gpu_of = gpu_of
        self._gpus: dict[str, bool | None] = {}
        self.uses_groups = any(group in PLACEMENT_GROUPS for m in self.members.values() for group in m.groups)

    def know_gpu(self, name: str, gpu: dict[str, Any]) -> None:
        """Record what the host ``name`` reported of its GPU (``facts.gpu.NvidiaGpus``), read already."""
        self._gpus[name] = working_gpu(gpu)

    def gpu_of(self, name: str) -> bool | None:
        if name not in self._gpus:
            self._gpus[name] = self._gpu_of(name) if self._gpu_of is not None else None
        return self._gpus[name]

    @cached_property
    def monitoring_host(self) -> str | None:
        """The host of Prometheus, Alertmanager, Grafana and the blackbox exporter: the first host of the
        ``monitoring`` group, else of the ``core`` group, else the inventory's first, among the hosts with
        HOMELAB_MONITORING on; ``None`` when no host has it on."""
        def grouped(group: str) -> list[str]:
            return [name for name, member in self.members.items() if group in member.groups]

        candidates = grouped(MONITORING_GROUP) or grouped(CORE_GROUP) or list(self.members)
        on = [name for name in candidates
              if self.members[name].settings is not None and self.members[name].settings.monitoring]
        return on[0] if on else None

    def placed(self, name: str) -> tuple[str, ...]:
        """The enabled services that belong on the host ``name`` by the inventory's groups."""
        member = self.members[name]
        if member.settings is None:
            return ()
        return tuple(service for service in member.settings.enabled_services if self._belongs(service, name))

    def _belongs(self, service: str, name: str) -> bool:
        item = CATALOG[service]
        if item.needs_gpu and not self.gpu_of(name):
            return False
        if item.group == EVERY_HOST:
            return True
        if item.group == MONITORING_GROUP:
            return name == self.monitoring_host
        return not self.uses_groups or item.group in self.members[name].groups

    def runs(self, name: str) -> tuple[str, ...]:
        """What the host ``name`` runs as far as this inventory can tell without its plan: its placed
        services less the GPU group's where it is known to have no GPU and HOMELAB_AI_WITHOUT_GPU=skip."""
        settings = self.members[name].settings
        skips = settings is not None and settings.ai_without_gpu is NoGpuPolicy.SKIP
        if not skips or self.gpu_of(name) is not False:
            return self.placed(name)
        return tuple(service for service in self.placed(name) if CATALOG[service].group != GPU_GROUP)

    def hosts_running(self, service: str) -> list[str]:
        """Inventory hosts (in the inventory's order) on which ``service`` is placed."""
        return [name for name in self.members if service in self.placed(name)]

    def serving_host(self, service: str, seen_from: str) -> str | None:
        """Where ``seen_from`` reaches ``service``: itself when it runs it, else the first host that does."""
        running = self.hosts_running(service)
        if seen_from in running:
            return seen_from
        return running[0] if running else None

    def reached_from_elsewhere(self, service: str, name: str) -> bool:
        """Whether a service on host ``name`` must be reachable from another host: a proxy there
        forwards to it, a service there refers to it (``ServiceUrl``), or Prometheus there scrapes it."""
        if CATALOG[service].metrics is not None and self.monitoring_host not in (None, name):
            return True
        if CATALOG[service].subdomain is not None:
            for proxy in self.hosts_running(PROXY):
                if proxy != name and self.serving_host(service, proxy) == name:
                    return True
        for other in self.members:
            if other == name:
                continue
            for user in self.placed(other):
                refers = service in referenced_services(CATALOG[user])
                if refers and self.serving_host(service, other) == name:
                    return True
        return False

    def address(self, name: str, this: HostPlan | None = None) -> str:
        """The Tailscale address of the host ``name`` (this host's own from its plan)."""
        if this is not None and name == this.name:
            return this.require_tailscale_ip()
        found = tailscale_address(self.members[name].settings, None) or self.address_of(name)
        if not found:
            where = f"{this.name}: " if this is not None else ""
            raise PlanError(
                f"{where}the Tailscale IP of {name} is unknown: set `tailscale_ip` in its host data"
            )
        return found


@dataclass(frozen=True)
class HostPlan:
    """Every decision about one host for this run (see the module's docstring for the rules)."""

    name: str
    groups: frozenset[str]
    settings: HomelabSettings
    inventory: InventoryPlan = field(repr=False, compare=False)
    services: tuple[str, ...]  # placed here, in the catalog's order
    skipped: dict[str, str]  # placed by the groups but left out here, with the reason
    tailscale_ip: str | None
    gpu: bool  # the GPU services reserve the NVIDIA GPU here
    gpu_refusal: str | None = None  # the GPU's driver fails on a host set up for one: the deploy refuses
    warnings: tuple[str, ...] = ()
    gpu_known: bool = True  # the host's GPU was read (False: planned without contacting the host)
    resources: HostResources | None = None  # the host's memory and CPUs (None: not read)

    # -- what runs here -----------------------------------------------------------------------------
    @property
    def absent(self) -> tuple[str, ...]:
        """Catalog services not placed here: a deploy takes their containers down (data stays)."""
        return tuple(service for service in CATALOG if service not in self.services)

    def require_tailscale_ip(self) -> str:
        if not self.tailscale_ip:
            raise PlanError(
                f"{self.name}: no Tailscale IP: set HOMELAB_TAILSCALE_IP (or host data `tailscale_ip`), "
                "or join the tailnet first (HOMELAB_TAILSCALE_AUTHKEY)"
            )
        return self.tailscale_ip

    def gpu_for(self, service: str) -> bool:
        """Whether ``service`` gets the GPU here (a GPU service on a host with a working GPU)."""
        return CATALOG[service].gpu and self.gpu

    def limits_of(self, service: str) -> Limit:
        """The memory and CPU limits of ``service``'s container here."""
        return limit_for(service, self.settings.limits, self.resources)

    # -- ports and the zone -------------------------------------------------------------------------
    @cached_property
    def published(self) -> tuple[Published, ...]:
        """Every port published on this host's Tailscale address, by service."""
        found: list[Published] = []
        for service in self.services:
            found += published_ports(service, self.inventory.reached_from_elsewhere(service, self.name))
        return tuple(found)

    def ports_of(self, service: str) -> list[Port]:
        return [item.port for item in self.published if item.service == service]

    @property
    def bind_address(self) -> str | None:
        """The address every published port is bound to; ``None`` when nothing is published."""
        return self.require_tailscale_ip() if self.published else None

    @cached_property
    def zone(self) -> Zone:
        ports: list[str] = []
        for item in self.published:
            if str(item.port) not in ports:
                ports.append(str(item.port))
        return Zone(
            name=ZONE,
            sources=tuple(str(network) for network in self.settings.tailscale_allowed_ips),
            ports=tuple(ports),
            services=ZONE_SERVICES,
        )

    def zone_with_ssh_port(self, ssh_port: int | None) -> Zone:
        """The zone as deployed on a host whose sshd answers on ``ssh_port`` (read at run time): Tailscale
        peers reach sshd on a port other than 22 too (the ``ssh`` service is port 22 only), so that the
        tailnet can administer the host, and a deploy over the tailnet keeps its path when
        HOMELAB_SSH_TAILNET_ONLY is turned off again."""
        zone = self.zone
        wanted = f"{ssh_port}/tcp"
        if ssh_port in (None, 22) or wanted in zone.ports:
            return zone
        return replace(zone, ports=(*zone.ports, wanted))

    # -- proxy and DNS ------------------------------------------------------------------------------
    def service_url(self, service: str) -> str:
        """``http://host:port`` at which services here reach ``service``."""
        port = CATALOG[service].upstream_port
        where = self.inventory.serving_host(service, self.name)
        if where is None or where == self.name:
            return f"http://{CATALOG[service].name}:{port}"
        return f"http://{self.inventory.address(where, self)}:{port}"

    @cached_property
    def routes(self) -> tuple[Route, ...]:
        """The proxy hosts of this host's NGINX Proxy Manager (none where it does not run)."""
        if PROXY not in self.services:
            return ()
        return self._routes()

    def _route_target(self, service: str) -> str | None:
        """The host a subdomain of ``service`` is served from, or ``None``: it has no route (no
        subdomain, not enabled here, or no inventory host runs it)."""
        if CATALOG[service].subdomain is None or not self.settings.enabled(service):
            return None
        return self.inventory.serving_host(service, self.name)

    def _domain(self, service: str) -> str:
        return f"{CATALOG[service].subdomain}.{self.settings.domain}"

    def _routes(self) -> tuple[Route, ...]:
        found = []
        for service, item in CATALOG.items():
            target = self._route_target(service)
            if target is None:
                continue
            forward_host = item.name if target == self.name else self.inventory.address(target, self)
            found.append(Route(service, self._domain(service), forward_host, item.upstream_port))
        return tuple(found)

    @cached_property
    def retired_routes(self) -> tuple[str, ...]:
        """The subdomains this host's proxy and DNS no longer serve: those of the catalog services with
        a subdomain that have no route (taken out of the services, or placed on no inventory host).
        Their proxy host (one this deploy manages) and DNS record are removed where NGINX Proxy Manager
        and Pi-hole run here; none where neither does."""
        if PROXY not in self.services and DNS not in self.services:
            return ()
        return tuple(
            self._domain(service) for service, item in CATALOG.items()
            if item.subdomain is not None and self._route_target(service) is None
        )

    @cached_property
    def tls(self) -> TlsPlan | None:
        """HTTPS on this host's proxy (``HOMELAB_TLS=dns`` where NPM runs): one wildcard certificate for
        ``*.<domain>`` and ``<domain>``, used by every managed proxy host; None: plain HTTP."""
        settings = self.settings
        if settings.tls is not TlsMode.DNS or PROXY not in self.services:
            return None
        return TlsPlan(
            names=wildcard_names(settings.domain),
            force_ssl=settings.tls_force_ssl,
            http2=settings.tls_http2,
            hsts=settings.tls_hsts and settings.tls_force_ssl,  # NPM sends HSTS only with force-SSL
            hsts_subdomains=settings.tls_hsts_subdomains and settings.tls_hsts and settings.tls_force_ssl,
            acme_server=settings.tls_acme_server,
            ca_bundle=str(CA_BUNDLE_IN_CONTAINER) if settings.tls_ca_file is not None else None,
        )

    # -- monitoring ---------------------------------------------------------------------------------
    @cached_property
    def monitoring(self) -> MonitoringPlan | None:
        """What this host's Prometheus watches (``None`` where Prometheus does not run): the metrics
        endpoint of every service on every inventory host, the subdomains through the proxy and Pi-hole's
        DNS, the containers each host runs, and the alert thresholds of the settings."""
        if WATCHER not in self.services:
            return None
        inventory, settings = self.inventory, self.settings
        # the hosts with monitoring on (their exporters run and their metrics are written): the others
        # are not watched
        running = {name: (self.services if name == self.name else inventory.runs(name))
                   for name, member in inventory.members.items()
                   if member.settings is not None and member.settings.monitoring}
        targets = []
        for name, services in running.items():
            for service in services:
                item = CATALOG[service]
                if item.metrics is not None:
                    where = item.name if name == self.name else inventory.address(name, self)
                    targets.append(ScrapeTarget(service, name, f"{where}:{item.upstream_port}", item.metrics))
        probes = []
        routes = self._routes() if self.proxy_host is not None else ()
        for route in routes:
            url = f"{self.scheme}://{route.domain}/"
            probes.append(Probe(str(route.service), "http", url, self.proxy_host))
        dns_host = inventory.serving_host(DNS, self.name)
        if dns_host is not None and routes:
            probes.append(Probe(str(DNS), "dns", f"{inventory.address(dns_host, self)}:53", dns_host,
                                query_name=routes[0].domain))
        backups = [m.settings.backup_max_age_hours for m in inventory.members.values()
                   if m.settings is not None and m.settings.backups]
        thresholds = Thresholds(
            cold_storage_min_bytes=settings.min_free_disk_gb * 2**30,  # GiB, as preflight's disk row
            gpu_temperature_c=settings.alert_gpu_temperature_c,
            gpu_memory_percent=settings.alert_gpu_memory_percent,
            backup_max_age_seconds=min(backups) * 3600 if backups else None,
            restarts=settings.alert_restarts,
            alert_for=settings.monitoring_alert_for,
            scrape_interval=settings.monitoring_scrape_interval,
            group_wait=settings.monitoring_group_wait,
            group_interval=settings.monitoring_group_interval,
            repeat_interval=settings.monitoring_repeat_interval,
        )

        def reached(service: str) -> str:
            return f"{CATALOG[service].name}:{CATALOG[service].upstream_port}"

        return MonitoringPlan(
            host=self.name,
            targets=tuple(targets),
            probes=tuple(probes),
            containers=tuple(ExpectedContainer(name, CATALOG[service].name)
                             for name, services in running.items() for service in services),
            thresholds=thresholds,
            retention=settings.monitoring_retention,
            webhook=settings.monitoring_webhook_url is not None,
            grafana_url=self.subdomain_url(CATALOG[Service.GRAFANA].subdomain or ""),
            prometheus_url=f"http://{reached(Service.PROMETHEUS)}",
            alertmanager_address=reached(Service.ALERTMANAGER),
            blackbox_address=reached(Service.BLACKBOX_EXPORTER),
            ca_bundle=settings.tls is TlsMode.DNS and settings.tls_ca_file is not None,
        )

    @property
    def scheme(self) -> str:
        """How the subdomains are reached: https with HOMELAB_TLS=dns, else http."""
        return "https" if self.settings.tls is TlsMode.DNS else "http"

    def subdomain_url(self, subdomain: str) -> str:
        return f"{self.scheme}://{subdomain}.{self.settings.domain}/"

    @cached_property
    def proxy_host(self) -> str | None:
        """The inventory host whose proxy the subdomains point at (this one when it runs NPM)."""
        return self.inventory.serving_host(PROXY, self.name)

    @cached_property
    def dns_records(self) -> dict[str, str]:
        """The local DNS records of this host's Pi-hole: every subdomain -> the proxy's address."""
        if DNS not in self.services or self.proxy_host is None:
            return {}
        address = self.inventory.address(self.proxy_host, self)
        return {route.domain: address for route in self._routes()}

    # -- for people ---------------------------------------------------------------------------------
    def describe(self) -> str:
        """The plan as a person reads it (secrets are never part of a plan)."""
        address = self.tailscale_ip or "<tailscale ip>"
        lines = [f"{self.name}  (groups: {', '.join(sorted(self.groups)) or 'none'})"]
        lines.append(f"  tailscale ip  {self.tailscale_ip or 'unknown until the host is read'}")
        users = [service for service in self.services if self.gpu_for(service)]
        if not self.gpu_known:
            wanting = [service for service in self.services if CATALOG[service].gpu]
            who = ", ".join(wanting) or "no service"
            lines.append(f"  gpu           unknown until the host is read ({who} would use one)")
        else:
            lines.append(f"  gpu           {'for ' + ', '.join(users) if users else 'not used'}")
        if self.gpu_refusal:
            lines.append(f"  refused       {self.gpu_refusal}")
        lines.append(f"  services      {', '.join(self.services) or 'none'}")
        if self.resources is not None:
            lines.append(f"  resources     {self.resources.memory / 2**30:.1f} GiB of memory, "
                         f"{self.resources.cpus} CPUs (limits are of RAM and CPU time, not of GPU memory)")
        for service in self.services:
            ports = ", ".join(
                f"{address}:{item.port}" + (" (upstream)" if item.upstream else "")
                for item in self.published if item.service == service
            )
            image = self.settings.image_for(service)
            lines.append(f"    {service:<20} {image}  {ports or 'Docker network only'}")
            lines.append(f"    {'':<20} limits: {self.limits_of(service).describe()}")
        for service, why in self.skipped.items():
            lines.append(f"  left out      {service}: {why}")
        if self.absent:
            lines.append(f"  not here      {', '.join(self.absent)} (taken down where running; data kept)")
        zone = self.zone
        lines.append(f"  zone {zone.name}: sources {', '.join(zone.sources)}")
        lines.append(f"    ports {', '.join(zone.ports) or 'none'}; services {', '.join(zone.services)}")
        try:
            for route in self.routes:
                lines.append(f"  proxy         {route.domain} -> {route.forward_host}:{route.forward_port}")
            for domain, target in self.dns_records.items():
                lines.append(f"  dns           {domain} -> {target}")
        except PlanError as error:
            lines.append(f"  proxy / dns   not decided yet: {error}")
        removed = " and ".join(
            what for service, what in ((PROXY, "proxy host"), (DNS, "DNS record")) if service in self.services
        )
        for domain in self.retired_routes:
            lines.append(f"  removed       {domain} ({removed})")
        if self.tls is not None:
            provider = self.settings.tls_dns_provider
            lines.append(f"  https         {', '.join(self.tls.names)} by DNS-01 ({provider}, "
                         f"{self.tls.acme_server})")
        try:
            watched = self.monitoring
        except PlanError as error:
            lines.append(f"  monitoring    not decided yet: {error}")
            watched = None
        if watched is not None:
            hosts = sorted({target.host for target in watched.targets})
            lines.append(f"  monitoring    {len(watched.targets)} scrape targets on {', '.join(hosts)}; "
                         f"{len(watched.probes)} probes; alerts to "
                         + ("the webhook (HOMELAB_MONITORING_WEBHOOK_URL)" if watched.webhook else "nowhere"))
        for warning in self.warnings:
            lines.append(f"  warning       {warning}")
        return "\n".join(lines)


def published_ports(service: str, reached_from_elsewhere: bool) -> list[Published]:
    """A service's host ports, plus its upstream port when another host reaches it."""
    item = CATALOG[service]
    found = [Published(service, port, upstream=False) for port in item.host_ports]
    upstream = Port(item.upstream_port)
    if reached_from_elsewhere and upstream not in item.host_ports:
        found.append(Published(service, upstream, upstream=True))
    return found


def plan_host(
    inventory: InventoryPlan,
    name: str,
    *,
    tailscale_ip: str | None,
    gpu: dict[str, Any] | None,
    resources: HostResources | None = None,
) -> HostPlan:
    """The plan of the inventory host ``name`` (its settings must be valid).

    ``tailscale_ip``: what the host reports (the setting wins); ``gpu``: the host's
    ``facts.gpu.NvidiaGpus``, or ``None`` when not read (the verification tier: no GPU rule applies
    then but placement); ``resources``: the host's memory and CPUs (``facts.host.HostResources``), which
    a limit given as a share of the host needs.
    """
    member = inventory.members[name]
    settings = member.settings
    if settings is None:
        raise PlanError(f"{name}: its settings are not valid")
    if gpu is not None:
        inventory.know_gpu(name, gpu)
    services = list(inventory.placed(name))
    skipped: dict[str, str] = {}
    warnings: list[str] = []
    found = bool(gpu and gpu.get("gpus"))
    refusal = None
    if gpu is not None:
        broken = broken_gpu(gpu)
        if broken and settings.gpu_downgrade is GpuDowngrade.REFUSE:
            refusal = (
                f"{name}: {broken}. The deploy will not turn this GPU host into a CPU host (Docker without "
                "its nvidia runtime, ComfyUI with --cpu): fix the driver and run it again, or set "
                "HOMELAB_GPU_DOWNGRADE=allow to deploy without the GPU"
            )
        elif broken:
            warnings.append(f"{broken}; deploying without the GPU (HOMELAB_GPU_DOWNGRADE=allow)")
        # a GPU host whose driver fails keeps its AI services here: each GPU decision refuses it
        if not found and refusal is None:
            for service in [s for s in services if CATALOG[s].group == GPU_GROUP]:
                if settings.ai_without_gpu is NoGpuPolicy.SKIP:
                    services.remove(service)
                    skipped[service] = "no NVIDIA GPU on this host (HOMELAB_AI_WITHOUT_GPU=skip)"
                elif CATALOG[service].gpu:
                    warnings.append(f"no NVIDIA GPU found: {service} will run on the CPU")
    return HostPlan(
        name=name,
        groups=member.groups,
        settings=settings,
        inventory=inventory,
        services=tuple(services),
        skipped=skipped,
        tailscale_ip=tailscale_address(settings, tailscale_ip),
        gpu=found,
        gpu_refusal=refusal,
        warnings=tuple(warnings),
        gpu_known=gpu is not None,
        resources=resources,
    )
