"""What every deploy file needs to know about the host it runs for, made once per host and run.

The host's plan (``plan.py``: every decision) is made from its settings, the inventory's groups and
the facts that shape policy (GPU, Tailscale address); the facts the steps read (distribution, the SSH
path in use, packages, repositories, service states) are read once and shared by every deploy file of
the same pyinfra run (kept in ``run.py``), since pyinfra itself caches no fact. Also here: the one table
of supported distributions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pyinfra import host, inventory
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.rpm import RpmPackages
from pyinfra.facts.server import LinuxDistribution

from deploys.library.errors import DeployError
from deploys.library.gpu import working_gpu
from deploys.library.plan import HostPlan, InventoryPlan, Member, plan_host
from deploys.library.resources import HostResources as Resources
from deploys.library.run import current_run
from deploys.library.settings import HomelabSettings, SettingsError, settings_for_host
from facts.gpu import NvidiaGpus
from facts.host import HostResources
from facts.packages import ConfiguredRepositories
from facts.reads import read_fact
from facts.system import ServiceStates, SshConnection
from facts.tailscale import TailscaleIP

logger = logging.getLogger("homelab")


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
    # where EPEL comes from (restic is packaged there for RHEL and its rebuilds): a package of the
    # distribution's own extras repository, or the release RPM's URL ({major} filled in); None: not needed
    epel: str | None = None


# EPEL's release package: in the extras repository of CentOS Stream, Rocky and Alma; RHEL has it from
# the Fedora project (docs.fedoraproject.org/en-US/epel/getting-started)
EPEL_PACKAGE = "epel-release"
EPEL_RELEASE_RPM = "https://dl.fedoraproject.org/pub/epel/epel-release-latest-{major}.noarch.rpm"


# os-release ID -> what we support. pyinfra's LinuxDistribution `name` is no key for this: it
# reports "Rocky Linux", "AlmaLinux", "CentOS" (Stream too), "RedHat" (checked by running its
# processing on the os-release files in tests/facts/os-release), so a table keyed by it drifts.
DISTRIBUTIONS: dict[str, Distribution] = {
    "fedora": Distribution("Fedora", "rhel", (40, 41, 42, 43), "fedora", "fedora", "moby-engine"),
    # RHEL and its rebuilds package no Docker engine (moby-engine is Fedora's)
    "rhel": Distribution("RHEL", "rhel", (9, 10), "rhel", "rhel/{major}", None, EPEL_RELEASE_RPM),
    # Docker's install guide sends CentOS Stream, Rocky and Alma to its centos repository
    "centos": Distribution("CentOS Stream", "rhel", (9, 10), "centos", "rhel/{major}", None, EPEL_PACKAGE),
    "rocky": Distribution("Rocky Linux", "rhel", (9, 10), "centos", "rhel/{major}", None, EPEL_PACKAGE),
    "almalinux": Distribution("AlmaLinux", "rhel", (9, 10), "centos", "rhel/{major}", None, EPEL_PACKAGE),
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


@dataclass(frozen=True)
class HostContext:
    """The host this deploy file runs for: its plan (every decision), and the facts the steps read."""

    plan: HostPlan
    distro: dict[str, Any]
    gpu: dict[str, Any]
    ssh: dict[str, Any] | None
    # packages this run installs and removes (infra_steps._packages): the holds of security_steps follow
    installing: set[str] = field(default_factory=set, compare=False)
    removing: set[str] = field(default_factory=set, compare=False)

    @property
    def settings(self) -> HomelabSettings:
        return self.plan.settings

    @property
    def services(self) -> tuple[str, ...]:
        return self.plan.services

    @property
    def tailscale_ip(self) -> str | None:
        return self.plan.tailscale_ip

    def require_tailscale_ip(self) -> str:
        return self.plan.require_tailscale_ip()

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
        return read_fact(RpmPackages if self.family == "rhel" else DebPackages, host=host)

    @cached_property
    def repositories(self) -> dict[str, list[dict[str, Any]]]:
        """Every configured apt / dnf repository (any file name), read once per run."""
        return read_fact(ConfiguredRepositories, host=host)

    @cached_property
    def service_states(self) -> dict[str, dict[str, str]]:
        """firewalld, docker and tailscaled: active and enabled or not, read once per run."""
        return read_fact(ServiceStates, services=["firewalld", "docker", "tailscaled"], host=host)

    def service_running(self, service: str) -> bool:
        state = self.service_states.get(service, {})
        return state.get("active") == "active" and state.get("enabled") == "enabled"

    @property
    def has_gpu(self) -> bool:
        """Whether the deploy uses an NVIDIA GPU here. Asking it on a host whose driver fails but
        that was set up for a GPU refuses the deploy (DeployError), unless HOMELAB_GPU_DOWNGRADE=allow:
        every GPU decision (Docker's nvidia runtime, the toolkit, ComfyUI's --cpu) asks it."""
        if self.plan.gpu_refusal:
            raise DeployError(self.plan.gpu_refusal)
        return self.plan.gpu


def listed(value: Any) -> list[str]:
    """A ``--data`` value given as ``a,b`` or as a list: its non-empty items."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(item).strip() for item in value if str(item).strip()]
    return [item.strip() for item in str(value).split(",") if item.strip()]


def member(each: Any) -> Member:
    """An inventory host as the plan sees it (settings ``None`` when they are not valid)."""
    try:
        settings = settings_for_host(each)
    except SettingsError:
        settings = None
    return Member(name=each.name, groups=frozenset(each.groups), settings=settings)


def inventory_plan() -> InventoryPlan:
    """Placement across this run's inventory (made once per run)."""
    run = current_run()
    if run.inventory_plan is None:
        def address_of(name: str) -> str | None:
            other = inventory.get_host(name)
            return read_fact(TailscaleIP, host=other) if other is not None and other.connected else None

        def gpu_of(name: str) -> bool | None:
            other = inventory.get_host(name)
            if other is None or not other.connected:
                return None
            return working_gpu(read_fact(NvidiaGpus, host=other))

        run.inventory_plan = InventoryPlan([member(each) for each in inventory], address_of, gpu_of)
    return run.inventory_plan


def current() -> HostContext:
    """The context of the host the deploy file is running for (made once per host and run)."""
    run = current_run()
    if host.name not in run.contexts:
        run.contexts[host.name] = _build()
    return run.contexts[host.name]


def host_resources() -> Resources | None:
    """The host's memory and CPUs (a limit given as a share of the host needs them), ``None``: unread."""
    found = read_fact(HostResources, host=host)
    return Resources(**found) if found else None


def _build() -> HostContext:
    try:
        settings_for_host(host)
    except SettingsError as error:
        raise DeployError(f"{host.name}: {error}") from None
    gpu = read_fact(NvidiaGpus, host=host)
    plans = inventory_plan()
    settings = plans.members[host.name].settings
    reported = None if settings is not None and settings.tailscale_ip else read_fact(TailscaleIP, host=host)
    plan = plan_host(plans, host.name, tailscale_ip=reported, gpu=gpu, resources=host_resources())
    for warning in plan.warnings:
        logger.warning(f"{host.name}: {warning}")
    return HostContext(
        plan=plan,
        distro=read_fact(LinuxDistribution, host=host) or {},
        gpu=gpu,
        ssh=read_fact(SshConnection, host=host),
    )
