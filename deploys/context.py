"""What every deploy file needs to know about the host it runs for, read once per host and run.

Settings are validated for the host (its data over the environment); the few facts that shape
policy (distribution, GPU, Tailscale address, the SSH path in use) are read once and shared by
every deploy file in the same pyinfra run, since pyinfra itself caches no fact.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pyinfra import host, inventory
from pyinfra.api.exceptions import PyinfraError
from pyinfra.context import ctx_state
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.rpm import RpmPackages
from pyinfra.facts.server import LinuxDistribution

from deploys.catalog import CATALOG
from deploys.settings import HomelabSettings, NoGpuPolicy, Service, SettingsError, settings_for_host
from facts.gpu import NvidiaGpus
from facts.system import ServiceStates, SshConnection
from facts.tailscale import TailscaleIP

logger = logging.getLogger("homelab")

CORE_GROUP = "core"
GPU_GROUP = "gpu"
CORE_SERVICES = (Service.NGINX_PROXY_MANAGER, Service.PIHOLE)

SUPPORTED = {
    # distribution name as pyinfra reports it -> supported major versions
    "Fedora": {40, 41, 42, 43},
    "Debian": {12, 13},
    "Ubuntu": {22, 24},
    "RedHat": {9, 10},
    "Rocky": {9, 10},
    "AlmaLinux": {9, 10},
    "CentOS": {9, 10},
}
RHEL_LIKE = {"Fedora", "RedHat", "Rocky", "AlmaLinux", "CentOS"}
DEBIAN_LIKE = {"Debian", "Ubuntu"}


class DeployError(PyinfraError):
    """A policy problem found while planning a host's deploy (nothing has changed yet)."""


@dataclass(frozen=True)
class HostContext:
    settings: HomelabSettings
    distro: dict[str, Any]
    gpu: dict[str, Any]
    tailscale_ip: str | None
    ssh: dict[str, Any] | None
    services: tuple[Service, ...]
    skipped: dict[Service, str]

    @property
    def family(self) -> str:
        name = self.distro.get("name") or ""
        if name in RHEL_LIKE:
            return "rhel"
        if name in DEBIAN_LIKE:
            return "debian"
        like = str((self.distro.get("release_meta") or {}).get("ID_LIKE", ""))
        if "rhel" in like or "fedora" in like:
            return "rhel"
        if "debian" in like or "ubuntu" in like:
            return "debian"
        return "unknown"

    @cached_property
    def installed_packages(self) -> dict[str, Any]:
        """Installed packages (dpkg or rpm), read once per run, when the plan is made."""
        return host.get_fact(RpmPackages if self.family == "rhel" else DebPackages)

    @cached_property
    def service_states(self) -> dict[str, dict[str, str]]:
        """firewalld, docker and tailscaled: active and enabled or not, read once per run."""
        return host.get_fact(ServiceStates, services=["firewalld", "docker", "tailscaled"])

    def service_running(self, service: str) -> bool:
        state = self.service_states.get(service, {})
        return state.get("active") == "active" and state.get("enabled") == "enabled"

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpu.get("gpus"))

    def require_tailscale_ip(self) -> str:
        if not self.tailscale_ip:
            raise DeployError(
                f"{host.name}: no Tailscale IP: set HOMELAB_TAILSCALE_IP (or host data `tailscale_ip`), "
                "or join the tailnet first (HOMELAB_TAILSCALE_AUTHKEY)"
            )
        return self.tailscale_ip


def inventory_uses_groups() -> bool:
    names = {group for each in inventory for group in each.groups}
    return CORE_GROUP in names or GPU_GROUP in names


def placed_services(settings: HomelabSettings, groups: Any, uses_groups: bool) -> list[Service]:
    """Enabled services that belong on a host with these inventory groups."""
    services = list(settings.services)
    if not uses_groups:
        return services
    return [
        service
        for service in services
        if (CORE_GROUP in groups if service in CORE_SERVICES else GPU_GROUP in groups)
    ]


def hosts_running(service: Service) -> list[Any]:
    """Inventory hosts (active in this run or not) on which ``service`` is placed."""
    uses_groups = inventory_uses_groups()
    found = []
    for each in inventory:
        try:
            settings = settings_for_host(each)
        except SettingsError:
            continue
        if service in placed_services(settings, each.groups, uses_groups):
            found.append(each)
    return found


def current() -> HostContext:
    """The context of the host the deploy file is running for (computed once per run).

    Kept on the run's own state, so a new run (or a test building several) starts afresh.
    """
    run = ctx_state.get()  # the run's State itself (``pyinfra.state`` is a proxy object)
    contexts = run.__dict__.setdefault("homelab_contexts", {})
    if host.name not in contexts:
        contexts[host.name] = _build()
    return contexts[host.name]


def _build() -> HostContext:
    try:
        settings = settings_for_host(host)
    except SettingsError as error:
        raise DeployError(f"{host.name}: {error}") from None

    distro = host.get_fact(LinuxDistribution) or {}
    gpu = host.get_fact(NvidiaGpus)
    tailscale_ip = str(settings.tailscale_ip) if settings.tailscale_ip else host.get_fact(TailscaleIP)
    ssh = host.get_fact(SshConnection)

    services = placed_services(settings, host.groups, inventory_uses_groups())
    skipped: dict[Service, str] = {}
    if not gpu.get("gpus"):
        for service in [s for s in services if CATALOG[s].is_ai]:
            if settings.ai_without_gpu is NoGpuPolicy.SKIP:
                services.remove(service)
                skipped[service] = "no NVIDIA GPU on this host (HOMELAB_AI_WITHOUT_GPU=skip)"
            elif CATALOG[service].gpu:
                logger.warning(f"{host.name}: no NVIDIA GPU found: {service.value} will run on the CPU")

    return HostContext(
        settings=settings,
        distro=distro,
        gpu=gpu,
        tailscale_ip=tailscale_ip,
        ssh=ssh,
        services=tuple(services),
        skipped=skipped,
    )
