"""Infrastructure steps: Docker (+ NVIDIA), Tailscale, firewalld and the Docker network.

The tag files (``docker.py``, ``networking.py``) and the tier file (``infrastructure.py``) call
these in the original's order. Distribution differences live in the small tables below.

Order matters: firewalld runs before Docker starts (Docker builds its chains into a running
firewalld), and Docker is restarted whenever firewalld was (re)started or reloaded, since that
drops Docker's chains (the lab showed ``docker network create`` failing otherwise).
"""

from __future__ import annotations

import ipaddress
import json
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.util import get_file_sha1
from pyinfra.facts.server import Arch
from pyinfra.operations import apt, dnf, files, systemd
from pyinfra.operations.util import any_changed

from deploys.catalog import MANAGED_BY, NETWORK
from deploys.context import DeployError, Distribution, HostContext, supported_versions
from deploys.settings import DockerSource
from facts.docker import DockerNetworksInspect
from facts.system import ComposeVersion, FileDigest, Ipv4Routes
from operations import docker_network, firewalld, nvidia, tailscale

ZONE = "self-hosted"
ZONE_PORTS = ["80/tcp", "443/tcp", "81/tcp", "53/tcp", "53/udp"]
# Tailscale peers may administer the host over SSH: the zone that admits them keeps SSH open
ZONE_SERVICES = ["ssh"]
DAEMON_JSON = "/etc/docker/daemon.json"
KEYRINGS = "/etc/apt/keyrings"

# -- distribution tables ---------------------------------------------------------------------
# (which distributions, their repository paths and engine packages: context.DISTRIBUTIONS)
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
DOCKER_CE_PACKAGES = ["docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin",
                      "docker-compose-plugin"]
# packages that conflict with the chosen engine and are removed first
CONFLICTS = {
    ("debian", DockerSource.DOCKER_CE): ["docker.io", "docker-doc", "docker-compose", "podman-docker",
                                         "containerd", "runc"],
    ("debian", DockerSource.DISTRO): ["docker-ce", "docker-ce-cli", "podman-docker"],
    ("rhel", DockerSource.DOCKER_CE): ["podman-docker", "moby-engine", "docker", "docker-client",
                                       "docker-common", "docker-latest", "docker-engine"],
    ("rhel", DockerSource.DISTRO): ["podman-docker", "docker-ce", "docker-ce-cli"],
}
# the distribution's compose v2 package, where it has one: (os-release ID, major or None for all)
DISTRO_COMPOSE = {
    ("debian", 13): "docker-compose",
    ("ubuntu", 22): "docker-compose-v2",
    ("ubuntu", 24): "docker-compose-v2",
    ("fedora", None): "docker-compose",
}
NVIDIA_REPO = "https://nvidia.github.io/libnvidia-container"
TAILSCALE_REPO = "https://pkgs.tailscale.com/stable"
# candidate subnets for the Docker network when none is configured; the first free one wins
SUBNET_CANDIDATES = ["172.30.0.0/16", "172.31.0.0/16", "172.29.0.0/16", "172.28.0.0/16",
                     "10.213.0.0/16", "10.214.0.0/16"]


def _packages(ctx: HostContext, names: list[str], present: bool = True):
    """Install or remove ``names``; planned only when the host's package list (read once per run)
    says something is to do, so a re-run spends no command on it."""
    installed = ctx.installed_packages
    if all((name in installed) == present for name in names):
        return None
    what = ("Install " if present else "Remove ") + " ".join(names)
    if ctx.family == "rhel":
        return dnf.packages(name=what, packages=names, present=present)
    # refresh the package lists before installing (a fresh host may have none)
    return apt.packages(name=what, packages=names, present=present, update=present, cache_time=3600)


def _require_family(ctx: HostContext) -> Distribution:
    """The host's entry in the one distribution table, or a refusal (the preflight's `os` row)."""
    found = ctx.os
    if not found.supported or found.distribution is None:
        raise DeployError(
            f"{host.name}: unsupported distribution {found.shown!r}: supported: {supported_versions()}"
        )
    return found.distribution


def _apt_repo(name: str, key_url: str, line: str) -> None:
    """A third-party apt repository with its key in its own keyring (``signed-by``)."""
    # apt reads a keyring by its extension: .gpg binary, .asc ASCII-armoured
    keyring = f"{KEYRINGS}/{name}" + (".gpg" if key_url.endswith(".gpg") else ".asc")
    files.directory(name="apt keyrings folder", path=KEYRINGS, mode="755")
    files.download(name=f"{name} repository key", src=key_url, dest=keyring, mode="644")
    apt.repo(name=f"{name} repository", src=line.format(keyring=keyring), filename=name)


def _running(ctx: HostContext, service: str):
    """The service running and enabled; planned only when it is not (states read once per run)."""
    if ctx.service_running(service):
        return None
    return systemd.service(name=f"{service} running and enabled", service=service, running=True, enabled=True)


# -- firewalld --------------------------------------------------------------------------------
@deploy("firewalld")
def firewalld_running(ctx: HostContext):
    """firewalld installed, enabled and running: before Docker, which builds its chains into it."""
    _require_family(ctx)
    _packages(ctx, ["firewalld"])
    return _running(ctx, "firewalld")


# -- Docker -----------------------------------------------------------------------------------
def daemon_config(ctx: HostContext) -> str:
    config: dict = {
        "log-driver": "json-file",
        "log-opts": {"max-size": "10m", "max-file": "3"},
        # containers keep running while the engine restarts (after a firewalld reload, say)
        "live-restore": True,
    }
    if ctx.has_gpu:
        # the entry `nvidia-ctk runtime configure --runtime=docker` would add; written here so that
        # daemon.json has one owner and a re-run never flips it
        config["runtimes"] = {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


@deploy("Docker engine")
def docker_engine(ctx: HostContext, firewall_changed: tuple = ()):
    """The engine from the configured source, compose v2, daemon.json; restarted only on change."""
    known = _require_family(ctx)
    settings = ctx.settings
    major = ctx.os.major
    source = settings.docker_source

    _packages(ctx, CONFLICTS[(ctx.family, source)], present=False)
    if source is DockerSource.DOCKER_CE:
        path = known.docker_ce
        if ctx.family == "rhel":
            dnf.repo(
                name="docker-ce repository",
                src="docker-ce-stable",
                description="Docker CE Stable",
                baseurl=f"https://download.docker.com/linux/{path}/$releasever/$basearch/stable",
                gpgkey=f"https://download.docker.com/linux/{path}/gpg",
            )
        else:
            arch = DEB_ARCH.get(host.get_fact(Arch), "amd64")
            codename = (ctx.distro.get("release_meta") or {}).get("VERSION_CODENAME", "")
            _apt_repo(
                "docker",
                f"https://download.docker.com/linux/{path}/gpg",
                f"deb [arch={arch} signed-by={{keyring}}] https://download.docker.com/linux/{path} "
                f"{codename} stable",
            )
        _packages(ctx, DOCKER_CE_PACKAGES)
    else:
        if known.distro_engine is None:
            raise DeployError(
                f"{host.name}: {known.label} packages no Docker engine (HOMELAB_DOCKER_SOURCE=distro): "
                "set HOMELAB_DOCKER_SOURCE=docker-ce"
            )
        _packages(ctx, [known.distro_engine])
        if host.get_fact(ComposeVersion) is None:
            key = ctx.os.matched
            compose = DISTRO_COMPOSE.get((key, major)) or DISTRO_COMPOSE.get((key, None))
            if compose is None:
                raise DeployError(
                    f"{host.name}: {known.label} {major} packages no Docker Compose v2: "
                    "set HOMELAB_DOCKER_SOURCE=docker-ce (Docker's repository has the compose plugin)"
                )
            _packages(ctx, [compose])

    daemon = _daemon_json(ctx)
    _running(ctx, "docker")
    restart_docker_if_changed(daemon, *firewall_changed)
    return daemon


def _daemon_json(ctx: HostContext):
    """daemon.json, planned only when its contents or mode differ (one read: FileDigest)."""
    content = daemon_config(ctx)
    current = host.get_fact(FileDigest, path=DAEMON_JSON)
    if current and current["sha1"] == get_file_sha1(StringIO(content)) and current["mode"] == 644:
        return None
    return files.put(
        name="daemon.json (log rotation, live-restore, NVIDIA runtime when a GPU is present)",
        src=StringIO(content),
        dest=DAEMON_JSON,
        mode="644",
        create_remote_dir=True,
    )


def restart_docker_if_changed(*operations) -> None:
    """Restart Docker after any of ``operations`` changed something (daemon.json, firewalld started).

    The deploys plan those operations only when the host differs, so a host that matches plans
    neither them nor this restart (a conditional operation would always show in ``--dry``).
    A zone change that reloads firewalld restarts Docker itself (``after_reload``).
    """
    operations = tuple(op for op in operations if op is not None)
    if operations:
        systemd.service(
            name="Restart Docker (daemon.json changed or firewalld started: rebuild its chains)",
            service="docker",
            restarted=True,
            _if=any_changed(*operations),
        )


@deploy("NVIDIA container toolkit")
def nvidia_toolkit(ctx: HostContext):
    """Only where the GPU fact found a GPU: repository, package, CDI spec (toolkits < 1.18)."""
    if not ctx.has_gpu:
        host.noop("no NVIDIA GPU on this host: container toolkit not needed")
        return None
    _require_family(ctx)
    if ctx.family == "rhel":
        dnf.repo(
            name="nvidia-container-toolkit repository",
            src="nvidia-container-toolkit",
            description="NVIDIA container toolkit",
            baseurl=f"{NVIDIA_REPO}/stable/rpm/$basearch",
            gpgkey=f"{NVIDIA_REPO}/gpgkey",
        )
    else:
        _apt_repo(
            "nvidia-container-toolkit",
            f"{NVIDIA_REPO}/gpgkey",
            f"deb [signed-by={{keyring}}] {NVIDIA_REPO}/stable/deb/$(ARCH) /",
        )
    toolkit = _packages(ctx, ["nvidia-container-toolkit"])
    nvidia.cdi_spec(name="CDI specification for the GPUs (toolkits without nvidia-cdi-refresh)")
    return toolkit


# -- Tailscale --------------------------------------------------------------------------------
@deploy("Tailscale")
def tailscale_node(ctx: HostContext):
    settings = ctx.settings
    if not settings.tailscale_install:
        host.noop("Tailscale is managed elsewhere (HOMELAB_TAILSCALE_INSTALL=false)")
        return
    known = _require_family(ctx)
    if ctx.family == "rhel":
        path = known.tailscale.format(major=ctx.os.major)
        dnf.repo(
            name="Tailscale repository",
            src="tailscale-stable",
            description="Tailscale stable",
            baseurl=f"{TAILSCALE_REPO}/{path}/$basearch",
            gpgkey=f"{TAILSCALE_REPO}/{path}/repo.gpg",
        )
    else:
        codename = (ctx.distro.get("release_meta") or {}).get("VERSION_CODENAME", "")
        distro = known.tailscale
        _apt_repo(
            "tailscale",
            f"{TAILSCALE_REPO}/{distro}/{codename}.noarmor.gpg",
            f"deb [signed-by={{keyring}}] {TAILSCALE_REPO}/{distro} {codename} main",
        )
    _packages(ctx, ["tailscale"])
    _running(ctx, "tailscaled")
    if settings.tailscale_authkey is not None:
        tailscale.up(
            name="Join the tailnet",
            auth_key=settings.tailscale_authkey,
            hostname=settings.tailscale_hostname,
        )


# -- firewall zone and Docker network -----------------------------------------------------------
def docker_subnet(ctx: HostContext) -> str:
    """The network's subnet: configured, else the existing network's, else the first free candidate."""
    if ctx.settings.docker_subnet is not None:
        return str(ctx.settings.docker_subnet)
    networks = host.get_fact(DockerNetworksInspect)
    existing = networks.get(NETWORK, {}).get("subnets") or []
    if existing:
        return existing[0]
    taken = [ipaddress.ip_network(s, strict=False) for n in networks.values() for s in n.get("subnets", [])]
    taken += [ipaddress.ip_network(r, strict=False) for r in host.get_fact(Ipv4Routes)]
    taken += [n for n in ctx.settings.tailscale_allowed_ips if n.version == 4]
    for candidate in map(ipaddress.ip_network, SUBNET_CANDIDATES):
        if not any(candidate.overlaps(other) for other in taken if other.prefixlen > 0):
            return str(candidate)
    raise DeployError(f"{host.name}: no free subnet for the Docker network: set HOMELAB_DOCKER_SUBNET")


@deploy("Firewall zone self-hosted")
def firewall_zone(ctx: HostContext, subnet: str):
    sources = [str(network) for network in ctx.settings.tailscale_allowed_ips] + [subnet]
    ssh = ctx.ssh or {}
    return firewalld.zone(
        name=f"Zone {ZONE}: Tailscale peers and the Docker subnet only",
        zone=ZONE,
        sources=sources,
        ports=ZONE_PORTS,
        services=ZONE_SERVICES,
        # the Docker subnet is a source: without intra-zone forwarding, containers on the
        # network could not reach each other (firewalld puts their traffic in this zone)
        forward=True,
        # a reload drops Docker's chains: rebuild them right away (only when a reload happens)
        # (reset-failed first: a first deploy restarts Docker twice, and systemd refuses a service
        # restarted too often within a minute)
        after_reload=["systemctl reset-failed docker.service", "systemctl restart docker.service"],
        protect_ssh_from=ssh.get("client_address"),
        ssh_port=ssh.get("server_port", 22),
    )


@deploy("Docker network self-hosted")
def network(ctx: HostContext, subnet: str):
    return docker_network.network(
        name=f"Docker network {NETWORK}",
        network=NETWORK,
        driver="bridge",
        subnet=subnet,
        labels={"org.homelab.managed-by": MANAGED_BY},
    )


def infrastructure(ctx: HostContext) -> None:
    """The whole infrastructure tier, in order: firewalld before Docker; Docker restarted only after
    its configuration changed, firewalld was started, or the zone change reloaded firewalld."""
    firewall = firewalld_running(ctx)
    nvidia_toolkit(ctx)
    tailscale_node(ctx)
    docker_engine(ctx, firewall_changed=(firewall,))
    subnet = docker_subnet(ctx)
    firewall_zone(ctx, subnet)
    network(ctx, subnet)
