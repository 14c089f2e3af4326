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

from deploys.library.catalog import CATALOG
from deploys.library.settings import (
    GpuDowngrade,
    HomelabSettings,
    NoGpuPolicy,
    Service,
    SettingsError,
    settings_for_host,
)
from facts.gpu import NvidiaGpus
from facts.packages import ConfiguredRepositories
from facts.system import ServiceStates, SshConnection
from facts.tailscale import TailscaleIP

logger = logging.getLogger("homelab")

CORE_GROUP = "core"
GPU_GROUP = "gpu"
CORE_SERVICES = (Service.NGINX_PROXY_MANAGER, Service.PIHOLE)

@dataclass(frozen=True)
class Distribution:
    """A supported distribution, known by its os-release ``ID``: the one table that both the
    preflight (``check_os``) and the deploy (``family``, repository paths) read."""

    label: str  # as people name it (messages)
    family: str  # "rhel" (dnf) or "debian" (apt)
    majors: tuple[int, ...]  # supported VERSION_ID majors
    docker_ce: str  # Docker's repository: download.docker.com/linux/<docker_ce>
    tailscale: str  # Tailscale's repository: pkgs.tailscale.com/stable/<tailscale> ({major} filled in)
    distro_engine: str | None  # the distribution's own Docker engine (HOMELAB_DOCKER_SOURCE=distro)


# os-release ID -> what we support. pyinfra's LinuxDistribution `name` is no key for this: it
# reports "Rocky Linux", "AlmaLinux", "CentOS" (Stream too), "RedHat" (checked by running its
# processing on the os-release files in tests/facts/os-release), so a table keyed by it drifts.
DISTRIBUTIONS: dict[str, Distribution] = {
    "fedora": Distribution("Fedora", "rhel", (40, 41, 42, 43), "fedora", "fedora", "moby-engine"),
    # RHEL and its rebuilds package no Docker engine (moby-engine is Fedora's)
    "rhel": Distribution("RHEL", "rhel", (9, 10), "rhel", "rhel/{major}", None),
    # Docker's install guide sends CentOS Stream, Rocky and Alma to its centos repository
    "centos": Distribution("CentOS Stream", "rhel", (9, 10), "centos", "rhel/{major}", None),
    "rocky": Distribution("Rocky Linux", "rhel", (9, 10), "centos", "rhel/{major}", None),
    "almalinux": Distribution("AlmaLinux", "rhel", (9, 10), "centos", "rhel/{major}", None),
    "debian": Distribution("Debian", "debian", (12, 13), "debian", "debian", "docker.io"),
    "ubuntu": Distribution("Ubuntu", "debian", (22, 24), "ubuntu", "ubuntu", "docker.io"),
}


@dataclass(frozen=True)
class OsMatch:
    """How a host's os-release maps onto :data:`DISTRIBUTIONS`."""

    os_id: str  # the host's own ID ("rocky")
    matched: str | None  # the table key that decided: the ID, else the first known ID_LIKE entry
    major: int | None
    shown: str  # PRETTY_NAME, for messages

    @property
    def distribution(self) -> Distribution | None:
        return DISTRIBUTIONS.get(self.matched) if self.matched else None

    @property
    def supported(self) -> bool:
        known = self.distribution
        return known is not None and self.major in known.majors

    @property
    def family(self) -> str:
        known = self.distribution
        return known.family if known else "unknown"


def match_os(distro: dict[str, Any]) -> OsMatch:
    """Match pyinfra's LinuxDistribution fact by os-release ``ID``, then ``ID_LIKE`` in its order
    (a rebuild such as EuroLinux, ``ID_LIKE="rhel fedora centos"``, is taken as RHEL), and the
    major of ``VERSION_ID``."""
    meta = distro.get("release_meta") or {}
    os_id = str(meta.get("ID") or "").strip().lower()
    like = str(meta.get("ID_LIKE") or "").lower().split()
    matched = next((key for key in [os_id, *like] if key in DISTRIBUTIONS), None)
    version = str(meta.get("VERSION_ID") or "").split(".")[0]
    major = int(version) if version.isdigit() else distro.get("major")
    shown = meta.get("PRETTY_NAME") or " ".join(str(p) for p in (distro.get("name"), major) if p) or "unknown"
    return OsMatch(os_id=os_id, matched=matched, major=major, shown=shown)


def supported_versions() -> str:
    return "; ".join(f"{d.label} {', '.join(map(str, d.majors))}" for d in DISTRIBUTIONS.values())


class DeployError(PyinfraError):
    """A policy problem found while planning a host's deploy (nothing has changed yet)."""


# -- a GPU whose driver fails ------------------------------------------------------------------
def gpu_setup_evidence(gpu: dict[str, Any]) -> list[str]:
    """What on the host shows that it was set up for an NVIDIA GPU (facts.gpu.NvidiaGpus)."""
    found = []
    if gpu.get("docker_nvidia_runtime"):
        found.append("Docker has the nvidia runtime")
    elif gpu.get("daemon_json_nvidia"):
        found.append("/etc/docker/daemon.json has the nvidia runtime")
    if gpu.get("toolkit_version"):
        found.append(f"NVIDIA container toolkit {gpu['toolkit_version']}")
    found += [f"CDI spec {spec}" for spec in gpu.get("cdi_specs") or []]
    if gpu.get("module_kernels"):
        found.append(f"nvidia kernel module for {', '.join(gpu['module_kernels'])}")
    return found


def driver_diagnosis(gpu: dict[str, Any]) -> str:
    """Why nvidia-smi fails, as far as the fact can tell, and what to do about it."""
    kernel = gpu.get("kernel")
    running = f"the running kernel {kernel}" if kernel else "the running kernel"
    target = kernel or "$(uname -r)"
    built = gpu.get("module_kernels") or []
    if gpu.get("module_loaded"):
        return ("the nvidia kernel module is loaded but nvidia-smi cannot use it (driver and module "
                "versions differ after an update?): reboot, or reinstall the driver")
    if built and kernel in built:
        return (f"the nvidia kernel module is built for {running} but not loaded: run `modprobe nvidia` "
                "and read `dmesg` (Secure Boot rejects an unsigned module), or reboot")
    if built:
        return (f"the nvidia kernel module is built for {', '.join(built)} but not for {running}, the usual "
                "state after a kernel update that akmod/DKMS did not follow: rebuild it (`akmods --force "
                f"--kernels {target}` with RPM Fusion, `dkms autoinstall -k {target}` with DKMS) or boot a "
                "kernel it was built for, then `modprobe nvidia` or reboot")
    return (f"no nvidia kernel module found; usually the driver's module was not built for {running} "
            f"(akmod/DKMS after a kernel update): rebuild or reinstall it for {target} and reboot")


def broken_gpu(gpu: dict[str, Any]) -> str | None:
    """A sentence naming the nvidia-smi error, the evidence and the remedy, when nvidia-smi fails on
    a host that was set up for a GPU; ``None`` otherwise (a GPU that works, or none ever set up)."""
    error = gpu.get("driver_error")
    evidence = gpu_setup_evidence(gpu)
    if gpu.get("gpus") or not error or not evidence:
        return None
    setup = "; ".join(evidence)
    return f"nvidia-smi fails ({error}) on a host set up for a GPU ({setup}): {driver_diagnosis(gpu)}"


@dataclass(frozen=True)
class HostContext:
    settings: HomelabSettings
    distro: dict[str, Any]
    gpu: dict[str, Any]
    tailscale_ip: str | None
    ssh: dict[str, Any] | None
    services: tuple[Service, ...]
    skipped: dict[Service, str]

    @cached_property
    def os(self) -> OsMatch:
        """The host's distribution, matched once against :data:`DISTRIBUTIONS`."""
        return match_os(self.distro)

    @property
    def family(self) -> str:
        return self.os.family

    @cached_property
    def installed_packages(self) -> dict[str, Any]:
        """Installed packages (dpkg or rpm), read once per run, when the plan is made."""
        return host.get_fact(RpmPackages if self.family == "rhel" else DebPackages)

    @cached_property
    def repositories(self) -> dict[str, list[dict[str, Any]]]:
        """Every configured apt / dnf repository (any file name), read once per run."""
        return host.get_fact(ConfiguredRepositories)

    @cached_property
    def service_states(self) -> dict[str, dict[str, str]]:
        """firewalld, docker and tailscaled: active and enabled or not, read once per run."""
        return host.get_fact(ServiceStates, services=["firewalld", "docker", "tailscaled"])

    def service_running(self, service: str) -> bool:
        state = self.service_states.get(service, {})
        return state.get("active") == "active" and state.get("enabled") == "enabled"

    @property
    def has_gpu(self) -> bool:
        """Whether the deploy uses an NVIDIA GPU here. Asking it on a host whose driver fails but
        that was set up for a GPU refuses the deploy (DeployError), unless HOMELAB_GPU_DOWNGRADE=allow:
        every GPU decision (Docker's nvidia runtime, the toolkit, ComfyUI's --cpu) asks it."""
        if self.gpu.get("gpus"):
            return True
        broken = broken_gpu(self.gpu)
        if broken and self.settings.gpu_downgrade is GpuDowngrade.REFUSE:
            raise DeployError(
                f"{host.name}: {broken}. The deploy will not turn this GPU host into a CPU host (Docker "
                "without its nvidia runtime, ComfyUI with --cpu): fix the driver and run it again, or set "
                "HOMELAB_GPU_DOWNGRADE=allow to deploy without the GPU"
            )
        return False

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
    broken = broken_gpu(gpu)
    refused = broken is not None and settings.gpu_downgrade is GpuDowngrade.REFUSE
    if broken and not refused:
        logger.warning(f"{host.name}: {broken}; deploying without the GPU (HOMELAB_GPU_DOWNGRADE=allow)")
    # a GPU host whose driver fails keeps its AI services here: each GPU decision refuses it (has_gpu)
    if not gpu.get("gpus") and not refused:
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
