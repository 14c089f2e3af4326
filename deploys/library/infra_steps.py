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
from urllib.parse import urlsplit

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.connectors.ssh import SSHConnector
from pyinfra.facts.server import Arch
from pyinfra.operations import apt, dnf, files, systemd
from pyinfra.operations.util import any_changed

from deploys.library import placed, security_steps
from deploys.library.catalog import DOCKER_ZONE, MANAGED_BY, MANAGED_LABEL, NETWORK, Port
from deploys.library.context import Distribution, HostContext, logger, supported_versions
from deploys.library.engine import EngineChoice, choose_engine
from deploys.library.errors import DeployError
from deploys.library.hardening import SSHD_DROP_IN, SSHD_REVERT_AFTER, login_of, sshd_policy
from deploys.library.settings import DockerSource
from facts.docker import DockerNetworksInspect, RunningContainers
from facts.reads import read_fact
from facts.system import ComposeVersion, EnvironmentFileFlags, Ipv4Routes
from facts.tailscale import TailscalePrefs, TailscaleStatus
from operations import docker_network, firewalld, nftables, nvidia, packages, sshd, tailscale

TAILSCALE_INTERFACE = "tailscale0"
SSH_TAILNET_REVERT_AFTER = 120  # seconds before an unconfirmed SSH tailnet-only change puts itself back
# the nftables table that keeps the published ports to the tailnet (published_ports_guard)
GUARD_TABLE = "homelab_published_ports"
DAEMON_JSON = "/etc/docker/daemon.json"
KEYRINGS = "/etc/apt/keyrings"

# -- distribution tables ---------------------------------------------------------------------
# (which distributions, their repository paths and engine packages: context.DISTRIBUTIONS)
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
DOCKER_CE_PACKAGES = ["docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin",
                      "docker-compose-plugin"]
# packages that conflict with the chosen engine and are removed first (an installed engine of the other
# source only when the settings ask for that source explicitly: deploys/library/engine.py)
CONFLICTS = {
    ("debian", DockerSource.DOCKER_CE): ["docker.io", "docker-doc", "docker-compose", "podman-docker",
                                         "containerd", "runc"],
    ("debian", DockerSource.DISTRO): ["docker-ce", "docker-ce-cli", "containerd.io", "podman-docker"],
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
    if not present:  # only what is there: the holds released are exactly the packages removed
        names = [name for name in names if name in installed]
    what = ("Install " if present else "Remove ") + " ".join(names)
    (ctx.installing if present else ctx.removing).update(names)
    if ctx.family == "rhel":
        return packages.packages(name=what, packages=names, manager="dnf", present=present,
                                 release_holds=not present)
    # refresh the package lists before installing (a fresh host may have none)
    return packages.packages(name=what, packages=names, manager="apt", present=present, update=present,
                             cache_time=3600, release_holds=not present)


def _require_family(ctx: HostContext) -> Distribution:
    """The host's entry in the one distribution table, or a refusal (the preflight's `os` row)."""
    found = ctx.os
    if not found.supported or found.distribution is None:
        raise DeployError(
            f"{host.name}: unsupported distribution {found.shown!r}: supported: {supported_versions()}"
        )
    return found.distribution


def _uri(url: str) -> tuple[str, str, str]:
    """A repository URI for comparison: scheme and host in any case, path without a trailing slash."""
    parts = urlsplit(url.strip())
    return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/")


def _apt_repo(ctx: HostContext, name: str, key_url: str, uri: str, suite: str,
              components: tuple[str, ...] = (), arch: str | None = None) -> None:
    """A third-party apt repository with its key in its own keyring (``signed-by``), unless the
    host already has one for the same URI and suite (any file, any keyring, one-line or deb822):
    that one is reused and nothing is planned. apt refuses a second entry for one source with
    another ``Signed-By`` ("Conflicting values set for option Signed-By", every apt run fails),
    which is what writing our own next to an install guide's would do.
    """
    # apt reads a keyring by its extension: .gpg binary, .asc ASCII-armoured
    keyring = f"{KEYRINGS}/{name}" + (".gpg" if key_url.endswith(".gpg") else ".asc")
    options = (f"arch={arch} " if arch else "") + f"signed-by={keyring}"
    line = " ".join(["deb", f"[{options}]", uri, suite, *components])
    ours_file = f"/etc/apt/sources.list.d/{name}.list"
    entries = [
        entry for entry in ctx.repositories["apt"]
        if entry["type"] == "deb" and _uri(entry["uri"]) == _uri(uri) and entry["suite"] == suite
    ]
    ours = [e for e in entries if e["file"] == ours_file and e["signed_by"] == keyring]
    theirs = [e for e in entries if e not in ours]
    if theirs:
        where = ", ".join(sorted({f"{e['file']} (keyring {e['signed_by'] or 'none'})" for e in theirs}))
        if len({e["signed_by"] for e in theirs}) > 1:
            raise DeployError(
                f"{host.name}: apt has {uri} {suite} more than once with different keyrings: {where}; "
                "apt refuses every run like this: keep one of them"
            )
        missing = [c for c in components if not any(c in e["components"] for e in theirs)]
        if missing:
            raise DeployError(
                f"{host.name}: {where} configures {uri} {suite} without component(s) {', '.join(missing)}: "
                "add them there (a second entry with another keyring would break apt)"
            )
        if ours:
            # an earlier deploy added its own line beside the guide's: take it out, apt works again
            apt.repo(name=f"{name} repository: remove the second entry (conflicting Signed-By)",
                     src=line, filename=name, present=False)
            return
        host.noop(f"{name} repository: {uri} {suite} is configured already in {where}: reused")
        return
    files.directory(name="apt keyrings folder", path=KEYRINGS, mode="755")
    files.download(name=f"{name} repository key", src=key_url, dest=keyring, mode="644")
    apt.repo(name=f"{name} repository", src=line, filename=name)


def _dnf_repo(ctx: HostContext, label: str, src: str, description: str, baseurl: str, gpgkey: str) -> None:
    """A dnf repository in ``/etc/yum.repos.d/<src>.repo``, unless one with the same baseurl or
    the same id is configured already (any file, as the vendors' own ``.repo`` files install
    them): that one is reused. dnf must never see one repository twice under two file names.
    """
    ours_file = f"/etc/yum.repos.d/{src}.repo"
    same = [
        repo for repo in ctx.repositories["dnf"]
        if repo["id"] == src or any(_uri(url) == _uri(baseurl) for url in repo["baseurls"])
    ]
    enabled = [repo for repo in same if repo["enabled"]]
    if enabled:
        where = ", ".join(f"{repo['id']} in {repo['file']}" for repo in enabled)
        host.noop(f"{label}: {baseurl} is configured already ({where}): reused")
        return
    disabled = [repo for repo in same if repo["file"] != ours_file]
    if disabled:
        where = ", ".join(f"{repo['id']} in {repo['file']}" for repo in disabled)
        raise DeployError(
            f"{host.name}: the repository for {baseurl} is configured but disabled ({where}): "
            "set enabled=1 there (a second copy under another file name would confuse dnf)"
        )
    dnf.repo(name=label, src=src, description=description, baseurl=baseurl, gpgkey=gpgkey)


def epel(ctx: HostContext, needed_for: list[str]):
    """EPEL, on the distributions that take ``needed_for`` from it (RHEL and its rebuilds: the table's
    ``epel``), unless those packages are installed or an ``epel`` repository is configured and enabled
    already (any file). RHEL's CodeReady Builder, which some EPEL packages need, is left alone: the
    packages this deploy takes from EPEL (restic) need nothing from it."""
    source = ctx.os.distribution.epel if ctx.os.distribution else None
    if source is None or all(name in ctx.installed_packages for name in needed_for):
        return None
    configured = [repo for repo in ctx.repositories["dnf"] if repo["id"] == "epel"]
    if any(repo["enabled"] for repo in configured):
        return None
    if configured:
        where = ", ".join(repo["file"] for repo in configured)
        raise DeployError(f"{host.name}: EPEL, where {' '.join(needed_for)} comes from on {ctx.os.shown}, is "
                          f"configured but disabled ({where}): enable it "
                          "(`dnf config-manager --set-enabled epel`)")
    what = f"EPEL (for {' '.join(needed_for)})"
    if source.startswith("https://"):
        return dnf.rpm(name=what, src=source.format(major=ctx.os.major))
    return packages.packages(name=what, packages=[source], manager="dnf")


def _running(ctx: HostContext, service: str):
    """The service running and enabled; planned only when it is not (states read once per run)."""
    if ctx.service_running(service):
        return None
    return systemd.service(name=f"{service} running and enabled", service=service, running=True, enabled=True)


# -- firewalld --------------------------------------------------------------------------------
def ssh_path(ctx: HostContext) -> tuple[str, int] | None:
    """The SSH path this deploy runs over (client address, sshd port), which no firewall change may
    cut; ``None`` when the deploy does not run over SSH (nothing to cut). Over SSH but unknown: the
    firewall steps refuse to run rather than proceed unguarded."""
    if ctx.ssh:
        return ctx.ssh["client_address"], ctx.ssh["server_port"]
    if isinstance(host.connector, SSHConnector):
        raise DeployError(
            f"{host.name}: cannot tell which address and port this SSH connection uses (no SSH_CONNECTION "
            "in the environment of the deploy's commands or of the processes that started them): refusing "
            "to change the firewall without knowing the path it must keep open"
        )
    return None


@deploy("firewalld")
def firewalld_running(ctx: HostContext):
    """firewalld installed, enabled and running: before Docker, which builds its chains into it.

    Its first start enforces its permanent configuration, which usually admits SSH on port 22 only:
    the SSH port this deploy uses is opened there first when it is not admitted.
    """
    _require_family(ctx)
    path = ssh_path(ctx)
    # nftables: the `nft` command for the published-ports table (firewalld needs only its library)
    _packages(ctx, ["firewalld", "nftables"])
    if path is not None and not ctx.service_running("firewalld"):
        firewalld.ssh_open_before_start(
            name=f"Admit SSH from {path[0]} to port {path[1]} before firewalld starts",
            client_address=path[0],
            ssh_port=path[1],
        )
    return _running(ctx, "firewalld")


# -- Docker -----------------------------------------------------------------------------------
# Fedora's moby-engine starts dockerd with the flags in /etc/sysconfig/docker: its spec installs
# Source4 docker.sysconfig there (`install -p -m 644 %{SOURCE4} .../sysconfig/docker`, moby-engine.spec
# in a 2021 snapshot of Fedora's rpm specs, hrnciar/add-setuptools-buildrequire) and its docker.service
# passes $OPTIONS from that EnvironmentFile. The shipped OPTIONS, as quoted from the package's file in
# user reports (Fedora 34 on; fedora-coreos-tracker#573 "This is the default from Fedora RPM";
# NVIDIA/nvidia-docker#712 for Fedora 27's shorter form):
#   --selinux-enabled --log-driver=journald --live-restore --default-ulimit nofile=1024:1024
#   --init-path /usr/libexec/docker/docker-init --userland-proxy-path /usr/libexec/docker/docker-proxy
# (src.fedoraproject.org's current dist-git could not be read from here: the fact reads the host's
# real file, so a changed default is still handled). dockerd refuses to start when daemon.json repeats
# a flag ("the following directives are specified both as a flag and in the configuration file").
# Choice: leave out of daemon.json what the flags already set, rather than rewrite the package's
# %config(noreplace) file: the admin's and the distribution's choices stay (journald rotates its own
# logs), and nothing fights rpm on upgrades.
ENGINE_FLAGS_FILE = {"moby-engine": ("/etc/sysconfig/docker", "OPTIONS")}
# what the package's file passes, for the plan made before the package (and its file) is installed
PACKAGED_FLAGS = {
    "moby-engine": ["--selinux-enabled", "--log-driver=journald", "--live-restore", "--default-ulimit",
                    "nofile=1024:1024", "--init-path", "/usr/libexec/docker/docker-init",
                    "--userland-proxy-path", "/usr/libexec/docker/docker-proxy"],
}
# json-file's rotation options are valid for these drivers only (journald rejects max-size)
ROTATING_DRIVERS = {"json-file", "local"}


def _flag_values(flags: list[str]) -> dict[str, str]:
    """``--name=value`` / ``--name value`` / ``--name`` (true) -> {name: value}; the last one wins."""
    found: dict[str, str] = {}
    for index, word in enumerate(flags):
        if not word.startswith("--"):
            continue
        name, equals, value = word[2:].partition("=")
        if not equals:
            following = flags[index + 1] if index + 1 < len(flags) else ""
            value = following if following and not following.startswith("-") else "true"
        found[name] = value
    return found


def engine_choice(ctx: HostContext) -> EngineChoice:
    """The engine this host gets (deploys/library/engine.py): the installed one unless the settings explicitly
    ask for the other source; running containers are read only when an engine would be replaced."""
    known = ctx.os.distribution
    return choose_engine(
        ctx.settings.docker_source,
        ctx.installed_packages,
        known.distro_engine if known else None,
        lambda: read_fact(RunningContainers, host=host),
    )


def engine_flags(ctx: HostContext, source: DockerSource) -> dict[str, str]:
    """The flags dockerd gets from the distribution engine's environment file (none for docker-ce)."""
    if source is not DockerSource.DISTRO:
        return {}
    engine = ctx.os.distribution.distro_engine if ctx.os.distribution else None
    if engine not in ENGINE_FLAGS_FILE:
        return {}
    path, variable = ENGINE_FLAGS_FILE[engine]
    flags = read_fact(EnvironmentFileFlags, path=path, variable=variable, host=host)
    if flags is None and engine not in ctx.installed_packages:
        flags = PACKAGED_FLAGS[engine]  # the install about to happen brings the file
    return _flag_values(flags or [])


def daemon_config(ctx: HostContext, flags: dict[str, str] | None = None) -> str:
    """daemon.json: log rotation, live-restore, the NVIDIA runtime on a GPU host; without the keys
    that dockerd already gets as ``flags`` (it refuses to start when both set one)."""
    flags = flags or {}
    config: dict = {}
    if "log-driver" not in flags:
        config["log-driver"] = "json-file"
    if "log-opt" not in flags and flags.get("log-driver", "json-file") in ROTATING_DRIVERS:
        config["log-opts"] = {"max-size": "10m", "max-file": "3"}
    if "live-restore" not in flags:
        # containers keep running while the engine restarts (after a firewalld reload, say)
        config["live-restore"] = True
    if ctx.has_gpu:
        # the entry `nvidia-ctk runtime configure --runtime=docker` would add; written here so that
        # daemon.json has one owner and a re-run never flips it
        config["runtimes"] = {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


@deploy("Docker engine")
def docker_engine(ctx: HostContext, firewall_changed: tuple = ()):
    """The installed engine, or the one the settings ask for explicitly; compose v2, daemon.json;
    restarted only on change. An engine that runs containers is never replaced (deploys/library/engine.py)."""
    known = _require_family(ctx)
    major = ctx.os.major
    choice = engine_choice(ctx)
    if choice.refusal or choice.source is None:
        raise DeployError(f"{host.name}: {choice.refusal}")
    source = choice.source
    if choice.replaces:
        logger.warning(f"{host.name}: {choice.replaces} is replaced by the "
                       f"{'docker-ce' if source is DockerSource.DOCKER_CE else known.distro_engine} engine "
                       f"(HOMELAB_DOCKER_SOURCE={ctx.settings.docker_source.value}); no container is running")
    elif choice.keeps and ctx.settings.docker_source is DockerSource.AUTO:
        host.noop(f"Docker engine: {choice.installed} is installed and kept (HOMELAB_DOCKER_SOURCE=auto)")

    _packages(ctx, CONFLICTS[(ctx.family, source)], present=False)
    if source is DockerSource.DOCKER_CE:
        path = known.docker_ce
        if ctx.family == "rhel":
            _dnf_repo(
                ctx,
                "docker-ce repository",
                "docker-ce-stable",
                "Docker CE Stable",
                f"https://download.docker.com/linux/{path}/$releasever/$basearch/stable",
                f"https://download.docker.com/linux/{path}/gpg",
            )
        else:
            arch = DEB_ARCH.get(read_fact(Arch, host=host), "amd64")
            codename = (ctx.distro.get("release_meta") or {}).get("VERSION_CODENAME", "")
            _apt_repo(
                ctx,
                "docker",
                f"https://download.docker.com/linux/{path}/gpg",
                f"https://download.docker.com/linux/{path}",
                codename,
                ("stable",),
                arch=arch,
            )
        _packages(ctx, DOCKER_CE_PACKAGES)
    else:
        if known.distro_engine is None:
            raise DeployError(
                f"{host.name}: {known.label} packages no Docker engine (HOMELAB_DOCKER_SOURCE=distro): "
                "set HOMELAB_DOCKER_SOURCE=docker-ce"
            )
        _packages(ctx, [known.distro_engine])
        if read_fact(ComposeVersion, host=host) is None:
            key = ctx.os.matched
            compose = DISTRO_COMPOSE.get((key, major)) or DISTRO_COMPOSE.get((key, None))
            if compose is None:
                raise DeployError(
                    f"{host.name}: {known.label} {major} packages no Docker Compose v2: "
                    "set HOMELAB_DOCKER_SOURCE=docker-ce (Docker's repository has the compose plugin)"
                )
            _packages(ctx, [compose])

    daemon = _daemon_json(ctx, source)
    _running(ctx, "docker")
    restart_docker_if_changed(daemon, *firewall_changed)
    return daemon


def _daemon_json(ctx: HostContext, source: DockerSource):
    """daemon.json, planned only where it differs (placed.put_file: one shared read)."""
    return placed.put_file(DAEMON_JSON, daemon_config(ctx, engine_flags(ctx, source)), "644",
                           "daemon.json (log rotation, live-restore, NVIDIA runtime when a GPU is present)",
                           user=None, group=None, create_remote_dir=True)


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
        _dnf_repo(
            ctx,
            "nvidia-container-toolkit repository",
            "nvidia-container-toolkit",
            "NVIDIA container toolkit",
            f"{NVIDIA_REPO}/stable/rpm/$basearch",
            f"{NVIDIA_REPO}/gpgkey",
        )
    else:
        _apt_repo(ctx, "nvidia-container-toolkit", f"{NVIDIA_REPO}/gpgkey",
                  f"{NVIDIA_REPO}/stable/deb/$(ARCH)", "/")
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
        _dnf_repo(
            ctx,
            "Tailscale repository",
            "tailscale-stable",
            "Tailscale stable",
            f"{TAILSCALE_REPO}/{path}/$basearch",
            f"{TAILSCALE_REPO}/{path}/repo.gpg",
        )
    else:
        codename = (ctx.distro.get("release_meta") or {}).get("VERSION_CODENAME", "")
        distro = known.tailscale
        _apt_repo(
            ctx,
            "tailscale",
            f"{TAILSCALE_REPO}/{distro}/{codename}.noarmor.gpg",
            f"{TAILSCALE_REPO}/{distro}",
            codename,
            ("main",),
        )
    _packages(ctx, ["tailscale"])
    _running(ctx, "tailscaled")
    if settings.tailscale_authkey is not None:
        _refuse_silent_tailscale_reset(ctx)
        tailscale.up(
            name="Join the tailnet",
            auth_key=settings.tailscale_authkey,
            hostname=settings.tailscale_hostname,
            reset=settings.tailscale_reset,
        )


def _refuse_silent_tailscale_reset(ctx: HostContext) -> None:
    """A node whose own flags `tailscale up` would have to drop (`--reset`) is refused before anything
    runs, naming them, unless HOMELAB_TAILSCALE_RESET=true. A joined node never gets that far: the
    operation changes its flags with `tailscale set`, which keeps the others."""
    plan = tailscale.plan_flags(
        read_fact(TailscaleStatus, host=host),
        read_fact(TailscalePrefs, host=host),
        tailscale.up_arguments(hostname=ctx.settings.tailscale_hostname),
    )
    if plan.needs_reset and not ctx.settings.tailscale_reset:
        what = f"changing {plan.describe_changes()}" if plan.joined else "logging in again"
        raise DeployError(
            f"{host.name}: tailscaled has flags the deploy does not set: {plan.describe_kept()}; {what} "
            "with `tailscale up` would need --reset, which turns them off. Log in yourself with them "
            "(`tailscale up` with those flags) to keep them, or set HOMELAB_TAILSCALE_RESET=true to drop them"
        )


# -- firewall zone and Docker network -----------------------------------------------------------
def docker_subnet(ctx: HostContext) -> str:
    """The network's subnet: configured, else the existing network's, else the first free candidate."""
    if ctx.settings.docker_subnet is not None:
        return str(ctx.settings.docker_subnet)
    networks = read_fact(DockerNetworksInspect, host=host)
    existing = networks.get(NETWORK, {}).get("subnets") or []
    if existing:
        return existing[0]
    taken = [ipaddress.ip_network(s, strict=False) for n in networks.values() for s in n.get("subnets", [])]
    taken += [ipaddress.ip_network(r, strict=False) for r in read_fact(Ipv4Routes, host=host)]
    taken += [n for n in ctx.settings.tailscale_allowed_ips if n.version == 4]
    for candidate in map(ipaddress.ip_network, SUBNET_CANDIDATES):
        if not any(candidate.overlaps(other) for other in taken if other.prefixlen > 0):
            return str(candidate)
    raise DeployError(f"{host.name}: no free subnet for the Docker network: set HOMELAB_DOCKER_SUBNET")


@deploy("Firewall zone self-hosted")
def firewall_zone(ctx: HostContext):
    """The zone for Tailscale peers: SSH and the published ports, nothing else.

    The Docker subnet is deliberately **not** a source of this zone. firewalld dispatches by source
    before it dispatches by interface, so a zone listing the subnet takes the containers' traffic
    out of Docker's own ``docker`` zone (target ACCEPT, holding the network's bridge): forwarded
    traffic from the containers then meets this zone's default target and is rejected -- no
    upstream DNS for Pi-hole, no model pulls, no certificates (seen on the lab: ``No route to
    host`` from every container to any other machine). Left to the ``docker`` zone, the containers
    reach each other, this host and the world through the host's own routing. Who may reach the
    *published* ports is decided by :func:`published_ports_guard`, since firewalld accepts every
    DNAT'd packet before any zone is consulted.
    """
    client, port = ssh_path(ctx) or (None, 22)
    zone = ctx.plan.zone_with_ssh_port(port)
    return firewalld.zone(
        name=f"Zone {zone.name}: Tailscale peers only",
        zone=zone.name,
        sources=list(zone.sources),
        ports=list(zone.ports),
        services=list(zone.services),
        # the zone holds no container traffic (see above), and the host routes nothing between peers
        forward=False,
        # a reload drops Docker's chains: rebuild them right away (only when a reload happens)
        # (reset-failed first: a first deploy restarts Docker twice, and systemd refuses a service
        # restarted too often within a minute)
        after_reload=["systemctl reset-failed docker.service", "systemctl restart docker.service"],
        protect_ssh_from=client,
        ssh_port=port,
    )


def published_ports_ruleset(address: str | None, ports: list[Port], tailnet_sources: list[str],
                            docker_subnet: str) -> str:
    """The guard table's definition: packets to ``address`` on ``ports`` pass only from the tailnet.

    Admitted: arriving on the Tailscale interface from one of ``tailnet_sources`` (the allowed
    Tailscale addresses), from the Docker subnet (containers reaching a published port), or on
    loopback. Everything else addressed to those ports is dropped before Docker's DNAT sees it.
    """
    v4_sources = sorted({s for s in tailnet_sources if ipaddress.ip_network(s, strict=False).version == 4},
                        key=lambda s: ipaddress.ip_network(s, strict=False))
    elements = f"\telements = {{ {', '.join(v4_sources)} }}\n" if v4_sources else ""
    lines = [
        "set tailnet_sources {",
        "\ttype ipv4_addr",
        "\tflags interval",
        *([elements.rstrip("\n")] if elements else []),
        "}",
        "",
        "chain published_ports {",
        # after conntrack (-200), before Docker's DNAT (dstnat, -100): the packet still carries
        # the host port and its real destination
        "\ttype filter hook prerouting priority dstnat - 10; policy accept;",
    ]
    for protocol in ("tcp", "udp"):
        numbers = sorted({port.number for port in ports if port.protocol == protocol})
        if address and numbers:
            lines.append(f"\tip daddr {address} {protocol} dport {{ {', '.join(map(str, numbers))} }} "
                         "jump tailnet_only")
    lines += [
        "}",
        "",
        "chain tailnet_only {",
        '\tiifname "lo" accept',
        f'\tiifname "{TAILSCALE_INTERFACE}" ip saddr @tailnet_sources accept',
        f"\tip saddr {docker_subnet} accept",
        "\tcounter drop",
        "}",
    ]
    return "\n".join(lines) + "\n"


@deploy("Published ports: tailnet only")
def published_ports_guard(ctx: HostContext, subnet: str):
    """Published ports answer only the tailnet, whatever route a packet took to the Tailscale IP.

    Docker publishes a port with a DNAT rule, and firewalld accepts every DNAT'd packet before its
    zones are consulted (``ct status dnat accept`` heads its forward chain; only firewalld >= 2.3
    can turn that off, with StrictForwardPorts). So the zone's port list restricts nothing: a LAN
    machine with a route to the Tailscale IP through this host reached NPM's admin port. Of the
    places to filter, the one that holds on every supported Docker and firewalld is a small
    nftables table of our own that drops such packets *before* the DNAT: Docker's ``DOCKER-USER``
    chain exists only with its iptables backend and is rebuilt by Docker and firewalld reloads,
    while firewalld policies and zones run after the DNAT accept. firewalld leaves foreign tables
    alone on reload, and a unit loads the table at boot before Docker publishes anything.
    """
    ports = [item.port for item in ctx.plan.published]
    address = ctx.plan.bind_address
    sources = list(ctx.plan.zone.sources)
    return nftables.table(
        name="nftables table: published ports answer the tailnet and the Docker network only",
        table=GUARD_TABLE,
        family="inet",
        definition=published_ports_ruleset(address, ports, sources, subnet),
        path=f"/etc/homelab/nftables/{GUARD_TABLE}.nft",
        unit=f"{GUARD_TABLE.replace('_', '-')}.service",
        before=["docker.service"],
        description="homelab: ports published on the Tailscale IP answer the tailnet only",
    )


@deploy("Docker network self-hosted")
def network(ctx: HostContext, subnet: str):
    return docker_network.network(
        name=f"Docker network {NETWORK}",
        network=NETWORK,
        driver="bridge",
        subnet=subnet,
        labels={MANAGED_LABEL: MANAGED_BY},
    )


@deploy("SSH")
def ssh_hardening(ctx: HostContext):
    """sshd as deploys/library/hardening.py decides, through one drop-in that a second login confirms
    (put back by itself otherwise: the operation never locks the deploy out)."""
    policy = sshd_policy(ctx.settings, login_of(host))
    for warning in policy.warnings:
        if not host.state.is_executing:
            logger.warning(f"{host.name}: {warning}")
    described = "; ".join(policy.lines) or "left as the host has it"
    sshd.drop_in(
        name=f"sshd: {described} (confirmed by a second login, put back otherwise)",
        file=SSHD_DROP_IN,
        lines=list(policy.lines),
        revert_after=SSHD_REVERT_AFTER,
    )


@deploy("SSH over the tailnet only")
def ssh_tailnet_only(ctx: HostContext):
    """HOMELAB_SSH_TAILNET_ONLY: SSH taken out of every zone but the tailnet's (and Docker's), proven and
    confirmed by logins over the tailnet; off, what it took out is put back (nothing to do: a no-op).
    After the zone step, which opens sshd's port to the tailnet first."""
    zone = ctx.plan.zone
    if not ctx.settings.ssh_tailnet_only:
        firewalld.ssh_tailnet_only(
            name="SSH: nothing taken out of the firewalld zones (HOMELAB_SSH_TAILNET_ONLY=false)",
            zone=zone.name, tailnet=list(zone.sources), present=False,
        )
        return
    client, port = ssh_path(ctx) or (None, 22)
    firewalld.ssh_tailnet_only(
        name=f"SSH over the tailnet only: zones other than {zone.name} and docker stop admitting it "
             "(proven and confirmed by logins over the tailnet, put back otherwise)",
        zone=zone.name,
        tailnet=list(zone.sources),
        ssh_port=port,
        client_address=client,
        tailscale_ip=ctx.tailscale_ip,
        keep=[DOCKER_ZONE],
        revert_after=SSH_TAILNET_REVERT_AFTER,
        remedy="leave HOMELAB_SSH_TAILNET_ONLY off",
    )


def infrastructure(ctx: HostContext) -> None:
    """The whole infrastructure tier, in order: firewalld before Docker; Docker restarted only after
    its configuration changed, firewalld was started, or the zone change reloaded firewalld; last the
    security updates, with the engine, the toolkit and the driver held."""
    firewall = firewalld_running(ctx)
    nvidia_toolkit(ctx)
    tailscale_node(ctx)
    docker_engine(ctx, firewall_changed=(firewall,))
    subnet = docker_subnet(ctx)
    if not ctx.settings.ssh_tailnet_only:
        # off: what an earlier run took out is back before the zone drops sshd's port for the tailnet
        ssh_tailnet_only(ctx)
    firewall_zone(ctx)
    published_ports_guard(ctx, subnet)
    network(ctx, subnet)
    ssh_hardening(ctx)
    if ctx.settings.ssh_tailnet_only:
        # after the zone, which opens sshd's port to the tailnet first
        ssh_tailnet_only(ctx)
    # last: the holds cover what the steps above installed (deploys/library/security_steps.py)
    security_steps.security_updates(ctx)
