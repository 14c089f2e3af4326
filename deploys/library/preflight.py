"""Tier 1 preflight checks: pure functions from fact data to (check, result, detail) rows.

`deploys/validate.py` reads each fact once per host, puts the data in an :class:`Observed` and
prints :func:`checks` as a table. Nothing here talks to a host, so every rule is unit-tested with
the recorded fact fixtures (tests/unit/test_preflight.py).

Results: PASS (ready), WARN (fine for now, or the deploy will fix it, but read it), FAIL (the
deploy would fail or do harm: fix it first). Any FAIL makes the preflight exit non-zero.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from deploys.library.catalog import CATALOG, DOCKER_ZONE, EVERY_HOST, GPU_GROUP, NETWORK, ZONE, Port, Service
from deploys.library.context import match_os, supported_versions
from deploys.library.engine import choose_engine
from deploys.library.gpu import broken_gpu
from deploys.library.hardening import SshdPolicy
from deploys.library.monitoring import MonitoringPlan
from deploys.library.plan import tailscale_address
from deploys.library.resources import HostResources, Limit
from deploys.library.security_steps import (
    file_matches,
    hold_candidates,
    manager_for,
    updater_installed,
    wanted_files,
)
from deploys.library.settings import (
    TAILNET_RANGES,
    DockerSource,
    GpuDowngrade,
    HomelabSettings,
    NoGpuPolicy,
)
from deploys.library.tls import EXPIRY_WARNING_DAYS
from operations.clients.ollama import parse_model_name
from operations.firewalld import ssh_entries
from operations.images import short
from operations.npm import expires_at
from operations.sshd import expected_values

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
WILDCARDS = {"0.0.0.0", "::", "*"}  # noqa: S104 (addresses we look for, not bind to)


class Check(NamedTuple):
    check: str
    result: str  # PASS | WARN | FAIL
    detail: str


@dataclass
class Observed:
    """What the preflight knows about one host: settings and one read of each fact."""

    host: str
    settings: HomelabSettings | None = None
    settings_problems: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)  # placed on this host (the host plan)
    skipped: list[str] = field(default_factory=list)  # placed by the groups, left out here (no GPU)
    # (service, port) published on the Tailscale IP (the host plan)
    published: list[tuple[str, Port]] = field(default_factory=list)
    connection: str = ""  # how we reached it, e.g. "root@127.0.0.1:2222"
    distro: dict[str, Any] = field(default_factory=dict)  # server.LinuxDistribution
    python: str | None = None  # server.Which("python3")
    docker_binary: str | None = None  # server.Which("docker")
    firewalld_binary: str | None = None  # server.Which("firewall-cmd")
    units: dict[str, bool] = field(default_factory=dict)  # systemd.SystemdStatus (docker, firewalld)
    compose_version: str | None = None  # facts.system.ComposeVersion
    packages: dict[str, Any] = field(default_factory=dict)  # installed: deb.DebPackages / rpm.RpmPackages
    running_containers: list[str] | None = None  # facts.docker.RunningContainers (None: unknown)
    gpu: dict[str, Any] = field(default_factory=dict)  # facts.gpu.NvidiaGpus
    disk: dict[str, Any] | None = None  # facts.host.DiskFree(cold_storage_path)
    tailscale: dict[str, Any] = field(default_factory=dict)  # facts.tailscale.TailscaleStatus
    tailscale_ip_on_host: str | None = None  # facts.host.HostNetwork "tailscale_ip" (as TailscaleIP)
    addresses: dict[str, list[str]] | None = None  # facts.host.HostNetwork: interface -> ["a.b.c.d/nn"]
    routes: list[str] | None = None  # facts.host.HostNetwork: IPv4 route destinations (Ipv4Routes)
    docker_networks: dict[str, dict[str, Any]] = field(default_factory=dict)  # DockerNetworksInspect
    firewalld: dict[str, Any] = field(default_factory=dict)  # facts.firewalld.FirewalldZones
    sockets: list[dict[str, Any]] | None = None  # facts.host.ListeningSockets
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)  # facts.compose.ComposeProjects
    pins: dict[str, dict[str, str] | None] = field(default_factory=dict)  # service -> facts.compose.ImagePins
    backup_repository: dict[str, Any] | None = None  # facts.restic.ResticRepository (backups configured)
    backup_status: dict[str, Any] | None = None  # facts.restic.BackupStatus
    # the models (HOMELAB_OLLAMA_MODELS where Ollama runs here): what Ollama's store holds (full name ->
    # bytes, facts.ollama.OllamaManifests; None: nothing pulled yet), each model's download size from its
    # registry (None: not readable from the controller), the host's memory (pyinfra's Memory, MiB)
    ollama_store: dict[str, int] | None = None
    model_sizes: dict[str, int | None] = field(default_factory=dict)
    memory_mib: float | None = None
    sshd: dict[str, Any] | None = None  # facts.sshd.SshdSettings (None: no sshd)
    sshd_policy: SshdPolicy | None = None  # what the deploy sets in sshd (deploys/library/hardening.py)
    # SSH over the tailnet only: the deploy's own SSH session (facts.system.SshConnection; None: not over
    # SSH), what an earlier run took out of the zones (facts.firewalld.RemovedSshEntries), the tailnet
    # ranges (the zone's sources, from the host plan)
    ssh_session: dict[str, Any] | None = None
    ssh_removed: dict[str, Any] | None = None
    tailnet: list[str] = field(default_factory=list)
    # the host's memory and CPUs (facts.host.HostResources; None: not read) and each placed service's
    # limits there (the host plan)
    resources: HostResources | None = None
    limits: dict[str, Limit] = field(default_factory=dict)
    updates: dict[str, Any] | None = None  # facts.updates.AutomaticUpdates (None: not read, unsupported OS)
    # HTTPS (HOMELAB_TLS): the plan's decision where NPM runs here, the wildcard certificate as NPM lists
    # it (None: NPM has none), and why it could not be read (NPM not deployed or not answering)
    tls_names: tuple[str, ...] | None = None
    certificate: dict[str, Any] | None = None
    certificate_unread: str | None = None
    # the subdomains' proxy hosts as NPM holds them: domain -> certificate id (0: none)
    proxy_certificates: dict[str, int] = field(default_factory=dict)
    # monitoring (HOMELAB_MONITORING): what this host's Prometheus watches (the host plan; None where it
    # does not run here) and the host that scrapes this one (None: monitoring is off everywhere)
    monitoring: MonitoringPlan | None = None
    monitoring_host: str | None = None


# -- single checks -----------------------------------------------------------------------------
def host_name(obs: Observed) -> str:
    return obs.host.split("/", 1)[-1]


def check_reachable(obs: Observed) -> Check:
    return Check("reachable", PASS, f"connected over SSH ({obs.connection or host_name(obs)})")


def check_settings(obs: Observed) -> Check:
    if obs.settings is None:
        return Check("settings", FAIL, "; ".join(obs.settings_problems) or "invalid settings")
    names = ", ".join(service for service in obs.services) or "none"
    return Check("settings", PASS, f"valid; services on this host: {names}")


def check_os(obs: Observed) -> Check:
    """Supported by os-release ID / ID_LIKE and the VERSION_ID major: the table the deploy reads."""
    found = match_os(obs.distro)
    if not found.os_id and found.matched is None:
        return Check("os", FAIL, f"could not identify the distribution; supported: {supported_versions()}")
    known = found.distribution
    if known is None:
        return Check("os", FAIL, f"{found.shown} is not supported; supported: {supported_versions()}")
    if not found.supported:
        return Check("os", FAIL, f"{found.shown}: {known.label} {found.major} is not supported; "
                     f"supported: {supported_versions()}")
    like = "" if found.matched == found.os_id else f", as {known.label} (ID_LIKE)"
    return Check("os", PASS, f"{found.shown} (supported{like})")


def check_python(obs: Observed) -> Check:
    if obs.python:
        return Check("python3", PASS, f"{obs.python} (informative: the deploy needs no Python on the host)")
    return Check("python3", PASS, "not installed (fine: the deploy needs no Python on the host)")


def check_docker(obs: Observed) -> Check:
    """Names the installed engine and what the deploy does with it (library/engine.py: one rule)."""
    configured = obs.settings.docker_source if obs.settings else DockerSource.AUTO
    setting = f"HOMELAB_DOCKER_SOURCE={configured.value}"
    known = match_os(obs.distro).distribution
    distro_engine = known.distro_engine if known else None
    choice = choose_engine(configured, obs.packages, distro_engine, lambda: obs.running_containers)
    if choice.refusal:
        return Check("docker", FAIL, f"{choice.refusal}; until then the deploy refuses this host")
    target = "docker-ce" if choice.source is DockerSource.DOCKER_CE else (distro_engine or "distro")
    if not obs.docker_binary:
        return Check("docker", WARN, f"not installed yet: the deploy installs {target} ({setting})")
    if choice.installed is None:
        return Check("docker", WARN, f"a `docker` command ({obs.docker_binary}) from no package the deploy "
                     f"knows (docker-ce, {distro_engine or 'a distribution engine'}, podman-docker): "
                     f"the deploy installs {target} ({setting})")
    compose = (f"compose v{obs.compose_version}" if obs.compose_version
               else "no compose v2 yet (the deploy adds it)")
    if choice.replaces:
        return Check("docker", WARN, f"{choice.installed} installed, no container running: the deploy "
                     f"replaces it with {target} ({setting})")
    engine = f"{choice.installed} installed, kept ({setting})"
    if not obs.units.get("docker.service"):
        return Check("docker", WARN, f"{engine}; not running: the deploy starts it; {compose}")
    return Check("docker", PASS, f"{engine}; running; {compose}")


def _ai_services(obs: Observed) -> list[str]:
    return [service for service in obs.services if CATALOG[service].group == GPU_GROUP]


def check_gpu(obs: Observed) -> Check:
    gpus = obs.gpu.get("gpus") or []
    gpu_users = [service for service in obs.services + obs.skipped if CATALOG[service].gpu]
    broken = broken_gpu(obs.gpu)
    if broken:
        # the deploy refuses this host (context.HostContext.has_gpu), whatever runs on it
        if obs.settings is not None and obs.settings.gpu_downgrade is GpuDowngrade.ALLOW:
            names = ", ".join(service for service in gpu_users) or "no GPU service"
            return Check("gpu", WARN, f"{broken}; HOMELAB_GPU_DOWNGRADE=allow: the deploy goes on without "
                         f"the GPU ({names} on the CPU, Docker without its nvidia runtime)")
        return Check("gpu", FAIL, f"{broken}; until then the deploy refuses this host "
                     "(HOMELAB_GPU_DOWNGRADE=allow deploys it without the GPU)")
    if not gpus:
        error = obs.gpu.get("driver_error")
        why = f"nvidia-smi: {error}" if error else "no NVIDIA GPU found"
        if not gpu_users:
            return Check("gpu", PASS, f"{why} (no GPU service on this host)")
        names = ", ".join(service for service in gpu_users)
        policy = obs.settings.ai_without_gpu if obs.settings else NoGpuPolicy.CPU
        if policy is NoGpuPolicy.SKIP:
            return Check("gpu", WARN, f"{why}: {names} left out (HOMELAB_AI_WITHOUT_GPU=skip)")
        return Check("gpu", WARN, f"{why}: {names} will run on the CPU (slow)")
    described = "; ".join(
        f"{gpu.get('name')} {_gib(gpu.get('memory_total_mib'))}, driver {gpu.get('driver_version')}"
        for gpu in gpus
    )
    cuda = f", CUDA {obs.gpu['cuda_version']}" if obs.gpu.get("cuda_version") else ""
    return Check("gpu", PASS, f"{described}{cuda}")


def _version(text: str | None) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in str(text).split(".")[:2]) if text else None
    except ValueError:
        return None


def check_cuda(obs: Observed) -> list[Check]:
    """The driver's CUDA version against what each GPU service's pinned image needs (catalog)."""
    driver = _version(obs.gpu.get("cuda_version"))
    if not obs.gpu.get("gpus") or driver is None:
        return []
    rows = []
    for service in obs.services:
        need = CATALOG[service].cuda
        if need is None:
            continue
        label = f"cuda {service}"
        pinned = CATALOG[service].image
        image = obs.settings.image_for(service) if obs.settings else pinned
        have = obs.gpu["cuda_version"]
        if image != pinned:
            rows.append(Check(label, WARN, f"not checked: {image} is not the pinned {pinned}, whose "
                              f"need (CUDA {need.minimum}) is known"))
        elif driver >= (_version(need.minimum) or ()):
            rows.append(Check(label, PASS, f"{image} needs CUDA {need.minimum}; the driver supports {have}"))
        else:
            then = ("it runs on the CPU instead (slow)" if need.falls_back
                    else f"{service} does not start")
            rows.append(Check(
                label, WARN if need.falls_back else FAIL,
                f"{image} needs CUDA {need.minimum}, the driver supports {have}: {then}; upgrade the NVIDIA "
                f"driver, or pin an older image (HOMELAB_IMAGE_{service.replace('-', '_').upper()})",
            ))
    return rows


def _gib(mib: int | None) -> str:
    return "? GiB" if mib is None else f"{mib / 1024:.0f} GiB"


def check_vram(obs: Observed) -> Check | None:
    gpus = obs.gpu.get("gpus") or []
    if not gpus:
        return None
    largest = max((gpu.get("memory_total_mib") or 0) for gpu in gpus)
    short = [
        service for service in obs.services
        if CATALOG[service].gpu and CATALOG[service].min_vram_mib > largest
    ]
    if short:
        needs = ", ".join(f"{s} needs ~{_gib(CATALOG[s].min_vram_mib)}" for s in short)
        return Check("vram", WARN, f"{needs}; the largest GPU has {_gib(largest)}")
    needed = max((CATALOG[s].min_vram_mib for s in obs.services if CATALOG[s].gpu), default=0)
    return Check("vram", PASS, f"{_gib(largest)} on the largest GPU; the services need up to {_gib(needed)}")


def check_disk(obs: Observed) -> Check:
    if obs.settings is None:
        return Check("disk", WARN, "not checked: settings invalid")
    path = obs.settings.cold_storage_path
    minimum = obs.settings.min_free_disk_gb
    if not obs.disk:
        return Check("disk", WARN, f"could not read the free space at {path} (df failed)")
    free = obs.disk["free_gb"]
    where = str(path) if obs.disk.get("path_checked") == str(path) else (
        f"{path} (not created yet; its parent {obs.disk.get('path_checked')})"
    )
    detail = f"{free:.1f} GiB free at {where}, on {obs.disk.get('mount_point')}"
    if free < minimum:
        return Check("disk", WARN, f"{detail}: below HOMELAB_MIN_FREE_DISK_GB={minimum}")
    return Check("disk", PASS, f"{detail} (minimum {minimum})")


def reported_tailscale_ip(obs: Observed) -> str | None:
    """The Tailscale IPv4 the host reports: tailscaled's, else the address on tailscale0."""
    for address in obs.tailscale.get("ips") or []:
        if "." in address:
            return address
    return obs.tailscale_ip_on_host


def tailscale_ip(obs: Observed) -> str | None:
    """The address the host ports bind to (the plan's rule: the setting, else what the host reports)."""
    return tailscale_address(obs.settings, reported_tailscale_ip(obs))


def check_tailscale(obs: Observed) -> Check:
    status = obs.tailscale or {}
    state = status.get("backend_state")
    if obs.settings is not None and not obs.settings.tailscale_install:
        seen = f"tailscaled {state}" if status.get("installed") else "no tailscale CLI on the host"
        return Check("tailscale", PASS, f"managed elsewhere (HOMELAB_TAILSCALE_INSTALL=false; {seen})")
    if not status.get("installed"):
        return Check("tailscale", WARN, "not installed yet: the deploy installs it")
    if state != "Running":
        joins = obs.settings is not None and obs.settings.tailscale_authkey is not None
        then = ("the deploy joins with HOMELAB_TAILSCALE_AUTHKEY" if joins
                else "run `tailscale up` or set HOMELAB_TAILSCALE_AUTHKEY")
        shown = state or "unknown (tailscaled not answering)"
        return Check("tailscale", WARN, f"installed, state {shown}: {then}")
    name = status.get("dns_name") or status.get("hostname") or "?"
    return Check("tailscale", PASS, f"running as {name}")


def check_tailscale_ip(obs: Observed) -> Check:
    address = tailscale_ip(obs)
    from_setting = obs.settings is not None and obs.settings.tailscale_ip is not None
    if address is None:
        if obs.settings is not None and obs.settings.tailscale_authkey is not None:
            return Check("tailscale ip", WARN, "unknown until the deploy joins the tailnet")
        return Check(
            "tailscale ip", FAIL,
            "unknown: set HOMELAB_TAILSCALE_IP (host data `tailscale_ip`) or join the tailnet first",
        )
    if from_setting:
        problem = _configured_address_problem(obs, address)
        if problem is not None:
            return problem
        seen = obs.tailscale_ip_on_host
        if seen and seen != address:
            return Check("tailscale ip", WARN,
                         f"{address} from HOMELAB_TAILSCALE_IP, but the host reports {seen}")
        suffix = " (also on the host)" if seen == address else ""
        return Check("tailscale ip", PASS, f"{address} from HOMELAB_TAILSCALE_IP{suffix}")
    return Check("tailscale ip", PASS, f"{address} (read from the host)")


def _interfaces_with(obs: Observed, address: str) -> list[str]:
    return [name for name, found in (obs.addresses or {}).items()
            if any(each.split("/")[0] == address for each in found)]


def _configured_address_problem(obs: Observed, address: str) -> Check | None:
    """HOMELAB_TAILSCALE_IP must be on one of the host's interfaces, and should be in the tailnet."""
    label = "tailscale ip"
    if obs.addresses is None:
        return Check(label, WARN, f"{address} from HOMELAB_TAILSCALE_IP: not checked against the host's "
                     "interfaces (`ip -o addr show` is missing or failed)")
    interfaces = _interfaces_with(obs, address)
    if not interfaces:
        joining = (obs.settings is not None and obs.settings.tailscale_authkey is not None
                   and obs.tailscale.get("backend_state") != "Running")
        detail = (f"{address} from HOMELAB_TAILSCALE_IP is on none of the host's interfaces "
                  f"({', '.join(sorted(obs.addresses)) or 'none'})")
        if joining:
            return Check(label, WARN, f"{detail} yet: the deploy joins the tailnet with "
                         "HOMELAB_TAILSCALE_AUTHKEY, and it must then be the node's address")
        return Check(label, FAIL, f"{detail}: the ports cannot bind to it; set the address "
                     "`tailscale ip -4` prints on the host, or leave HOMELAB_TAILSCALE_IP unset")
    parsed = ipaddress.ip_address(address)
    if not any(parsed in network for network in TAILNET_RANGES):
        return Check(label, WARN, f"{address} from HOMELAB_TAILSCALE_IP is outside the tailnet ranges "
                     f"({', '.join(str(n) for n in TAILNET_RANGES)}): NGINX Proxy Manager and Pi-hole "
                     f"would publish on {', '.join(interfaces)}, not on Tailscale")
    return None


def check_docker_subnet(obs: Observed) -> Check | None:
    """A configured HOMELAB_DOCKER_SUBNET against the networks the host already routes."""
    if obs.settings is None or obs.settings.docker_subnet is None:
        return None  # the deploy picks a free one from the routes
    subnet = obs.settings.docker_subnet
    label = "docker subnet"
    if obs.routes is None:
        return Check(label, WARN, f"{subnet}: not checked against the host's routes "
                     "(`ip -4 route show` is missing or failed)")
    ours = set((obs.docker_networks.get(NETWORK) or {}).get("subnets") or [])
    clashes = [route for route in obs.routes if route not in ours
               and ipaddress.ip_network(route, strict=False).overlaps(subnet)]
    if clashes:
        return Check(label, FAIL, f"{subnet} from HOMELAB_DOCKER_SUBNET overlaps the host's route "
                     f"{', '.join(clashes)}: Docker refuses the network, or the host loses that network; "
                     "choose a free private subnet (or leave it unset: the deploy picks one)")
    mine = f" (the {NETWORK} network's own)" if str(subnet) in ours else ""
    return Check(label, PASS, f"{subnet} overlaps none of the host's routes{mine}")


def check_firewalld(obs: Observed) -> Check:
    if not obs.firewalld_binary:
        return Check("firewalld", WARN, "not installed yet: the deploy installs and starts it")
    if not obs.firewalld.get("running") and not obs.units.get("firewalld.service"):
        return Check("firewalld", WARN, "installed, not running: the deploy starts it")
    zone = (obs.firewalld.get("zones") or {}).get(ZONE)
    if zone is None:
        return Check("firewalld", PASS, f"running; zone {ZONE} not created yet (the deploy adds it)")
    return Check(
        "firewalld", PASS,
        f"running; zone {ZONE}: sources {' '.join(zone.get('sources') or []) or '-'}, "
        f"ports {' '.join(zone.get('ports') or []) or '-'}",
    )


def _conflicts(address: str, sockets: list[dict[str, Any]], port: Port) -> list[dict[str, Any]]:
    found = []
    for socket in sockets:
        if socket["port"] != port.number or socket["proto"] != port.protocol:
            continue
        if socket["address"] == address or socket["address"] in WILDCARDS:
            found.append(socket)
            continue
        try:  # an IPv4-mapped IPv6 listener on the same address
            listening = ipaddress.ip_address(socket["address"])
        except ValueError:
            continue
        if getattr(listening, "ipv4_mapped", None) == ipaddress.ip_address(address):
            found.append(socket)
    return found


def _container_running(obs: Observed, service: str) -> bool:
    project = obs.projects.get(service) or {}
    return any(
        c["name"] == CATALOG[service].name and c["state"] == "running" for c in project.get("containers", [])
    )


def check_ports(obs: Observed) -> list[Check]:
    wanted = obs.published
    if not wanted:
        return []
    address = tailscale_ip(obs)
    if address is None:
        return [Check("host ports", WARN, "not checked: the Tailscale IP is unknown")]
    if obs.sockets is None:
        return [Check("host ports", WARN, "not checked: `ss` is missing or failed on the host")]
    rows = []
    for service, port in wanted:
        label = f"port {port.number}/{port.protocol}"
        held = _conflicts(address, obs.sockets, port)
        if not held:
            rows.append(Check(label, PASS, f"free on {address} (for {service})"))
            continue
        who = ", ".join(f"{s['process'] or 'unknown process'} on {s['address']}" for s in held)
        ours = all(s["process"] == "docker-proxy" and s["address"] == address for s in held)
        if ours and _container_running(obs, service):
            rows.append(Check(label, PASS, f"held by our container {service} on {address}"))
        elif all(s["process"] is None for s in held):
            rows.append(Check(label, WARN, f"in use ({who}); cannot tell by whom (not root?)"))
        else:
            rows.append(Check(label, FAIL,
                              f"in use by {who}: {service} cannot bind {address}:{port.number}"))
    return rows


def check_images(obs: Observed) -> list[Check]:
    """Per service placed here and deployed: the image it runs, pinned by digest (compose.override.yaml),
    and whether the next deploy would change it (WARN: a changed image setting, a container that runs
    something else than its pin, or an install from before pins)."""
    if obs.settings is None:
        return []
    rows = []
    for service in obs.services:
        pin = obs.pins.get(service)
        containers = (obs.projects.get(service) or {}).get("containers", [])
        running = containers[0].get("image") if containers else None
        if pin is None and running is None:
            continue  # not deployed yet: the first deploy pulls and pins it
        wanted = obs.settings.image_for(service)
        if pin is None:
            rows.append(Check("image", WARN, f"{service}: runs {running}, not pinned (deployed before pins): "
                                             "the next deploy pins it to the image it runs"))
        elif running is not None and running != pin["pinned"]:
            rows.append(Check("image", WARN, f"{service}: runs {running}, not its pin {pin['pinned']}: the "
                                             "next deploy brings it back to the pin"))
        elif pin["image"] != wanted:
            rows.append(Check("image", WARN, f"{service}: {pin['image']} ({short(pin['pinned'])}); the "
                                             f"setting asks for {wanted}: the next deploy updates it"))
        else:
            state = "runs it" if running else "not running"
            rows.append(Check("image", PASS,
                              f"{service}: {pin['image']} pinned to {short(pin['pinned'])} ({state})"))
    return rows


def check_sshd(obs: Observed) -> list[Check]:
    """sshd: FAIL when it refuses its own configuration (no reload could work); PASS when its effective
    settings are those the deploy sets, WARN naming each one the next deploy changes; the policy's
    warnings (a part left alone so the deploy cannot lock itself out) as WARN rows."""
    policy = obs.sshd_policy
    if obs.settings is None or policy is None or obs.sshd is None:
        return []
    rows = [Check("sshd", WARN, warning) for warning in policy.warnings]
    if obs.sshd["error"]:
        return [*rows, Check("sshd", FAIL, f"sshd refuses its configuration ({obs.sshd['error']}): fix it "
                                           "first; the deploy's change is refused while it does")]
    wanted = expected_values(list(policy.lines))
    effective = obs.sshd["effective"]
    changes = [f"{key} {effective.get(key, 'unset')} -> {value}" for key, value in wanted.items()
               if effective.get(key) != value]
    if changes:
        rows.append(Check("sshd", WARN, f"the next deploy sets {', '.join(changes)} "
                                        "(confirmed by a second login, put back otherwise)"))
    elif wanted:
        rows.append(Check("sshd", PASS, ", ".join(f"{key} {value}" for key, value in wanted.items())))
    else:
        rows.append(Check("sshd", PASS, "left as the host has it (HOMELAB_SSH_PASSWORD_LOGINS, "
                                        "HOMELAB_SSH_ROOT_LOGIN)"))
    return rows


LABEL = "ssh tailnet"


def _in_tailnet(address: str, tailnet: list[str]) -> bool:
    try:
        found = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(found in ipaddress.ip_network(network, strict=False) for network in tailnet)


def check_ssh_tailnet_only(obs: Observed) -> Check | None:
    """Whether SSH answers the tailnet only (HOMELAB_SSH_TAILNET_ONLY), and, when it is to, whether tier 1
    can already see the deploy will not be able to prove it reaches the host over the tailnet: FAIL when
    a zone would keep admitting SSH anyway (target ACCEPT, a port range) or when the session comes from
    outside the tailnet and the host has no Tailscale IP; WARN when the proof is a second login still
    to be tried. Reads only."""
    if obs.settings is None:
        return None
    removed = obs.ssh_removed or {}
    recorded = sorted({entry[1] for entry in [*removed.get("removed", []), *removed.get("pending", [])]})
    if not obs.settings.ssh_tailnet_only:
        if recorded:
            return Check(LABEL, WARN, f"off; SSH was taken out of zone(s) {', '.join(recorded)} by an "
                                      "earlier deploy: the next deploy puts it back")
        return Check(LABEL, PASS, "off: SSH is admitted as the firewalld zones have it "
                                               "(HOMELAB_SSH_TAILNET_ONLY)")
    session = obs.ssh_session
    port = int(session["server_port"]) if session else 22
    zones = obs.firewalld or {}
    to_remove: list[str] = []
    if zones.get("running"):
        networks = [ipaddress.ip_network(network, strict=False) for network in obs.tailnet]
        for configuration in ("zones", "permanent"):
            entries, problems = ssh_entries(zones.get(configuration) or {}, zones.get("default_zone"),
                                            networks, port, {ZONE, DOCKER_ZONE})
            if problems:
                return Check(LABEL, FAIL, "on, but SSH cannot be limited to the tailnet: "
                                                       + "; ".join(problems))
            to_remove += [name for name, _, _ in entries if name not in to_remove]
    what = (f"the next deploy takes SSH out of zone(s) {', '.join(to_remove)}" if to_remove
            else "no zone but the tailnet's admits SSH" if zones.get("running")
            else "the zones are read when firewalld runs")
    if session is None:
        return Check(LABEL, PASS, f"on: {what} (not over SSH: no login of the deploy's to keep)")
    client = session["client_address"]
    address = tailscale_ip(obs)
    if _in_tailnet(client, obs.tailnet):
        return Check(LABEL, PASS, f"on: the deploy comes from {client}, in the tailnet; {what}")
    if address is None:
        return Check(LABEL, FAIL, f"on, but the deploy comes from {client}, outside the tailnet "
                                  f"({', '.join(obs.tailnet)}), and the host has no Tailscale IP to prove "
                                  "the tailnet path by: join it first, or leave HOMELAB_SSH_TAILNET_ONLY off")
    return Check(LABEL, WARN, f"on, but the deploy comes from {client}, outside the tailnet: it will try a "
                              f"second login to {address}:{port} as proof, and refuses if that fails; run "
                              f"the deploy over the tailnet (ssh_hostname {address}) to need none. "
                              f"{what[0].upper()}{what[1:]}")


def check_backup(obs: Observed) -> Check | None:
    """The restic repository opens with the configured password (FAIL otherwise) and the last good
    backup is younger than HOMELAB_BACKUP_MAX_AGE_HOURS (WARN otherwise, or when it never ran)."""
    if obs.settings is None or not obs.settings.backups:
        return None
    repository = obs.backup_repository or {}
    state = repository.get("state")
    if state == "wrong-password":
        return Check("backup", FAIL, "the repository refuses the password on the host "
                     "(HOMELAB_BACKUP_PASSWORD): set the password it was made with; no backup can run")
    if state == "error":
        return Check("backup", FAIL, f"cannot open the repository: {repository.get('error')}")
    if state in ("restic-missing", "no-config", None):
        return Check("backup", WARN, "not set up yet: deploys/backup.py (or server.py) sets it up")
    if state == "missing":
        return Check("backup", WARN, "no repository at HOMELAB_BACKUP_REPOSITORY yet: the deploy makes it")
    status = obs.backup_status or {}
    limit = obs.settings.backup_max_age_hours
    last, now = status.get("last_success"), status.get("now")
    if last is None or now is None:
        return Check("backup", WARN, f"the repository opens; no backup has completed yet (the timer runs "
                     f"{obs.settings.backup_schedule}; deploys/backup.py --data backup_now=true takes one)")
    hours = max(0, now - last) / 3600
    if hours > limit:
        return Check("backup", WARN, f"the last good backup is {hours:.0f} h old, over "
                     f"HOMELAB_BACKUP_MAX_AGE_HOURS={limit}: see `journalctl -u homelab-backup`")
    return Check("backup", PASS,
                 f"the repository opens; last good backup {hours:.1f} h ago (limit {limit} h)")


def _gib_bytes(size: int | float) -> str:
    return f"{size / 2**30:.1f} GiB"


def check_models(obs: Observed) -> Check | None:
    """HOMELAB_OLLAMA_MODELS against the host, where Ollama runs here: a model larger than the largest
    GPU's VRAM (without a GPU: the host's memory) and models still to pull that would not fit in the
    free space at the cold-storage path are WARNs. Sizes come from the models already in Ollama's
    store, else from the registry's manifest; a size that is unknown is said, not guessed."""
    settings = obs.settings
    if settings is None or Service.OLLAMA not in obs.services or not settings.ollama_models:
        return None
    stored = {parse_model_name(name).key: size for name, size in (obs.ollama_store or {}).items()}
    wanted = {model: parse_model_name(model).key for model in settings.ollama_models}
    missing = [model for model, key in wanted.items() if key not in stored]
    sizes = {model: stored.get(key, obs.model_sizes.get(model)) for model, key in wanted.items()}
    gpus = obs.gpu.get("gpus") or []
    if gpus:
        limit = max((gpu.get("memory_total_mib") or 0) for gpu in gpus) * 2**20
        room = f"the largest GPU's {_gib_bytes(limit)} of VRAM"
        then = "Ollama runs the rest on the CPU (slow)"
    else:
        limit = (obs.memory_mib or 0) * 2**20
        room, then = f"the host's {_gib_bytes(limit)} of memory (no GPU)", "it cannot be loaded"
    problems = []
    too_big = [f"{model} ({_gib_bytes(size)})" for model, size in sizes.items()
               if size and limit and size > limit]
    if too_big:
        problems.append(f"larger than {room}: {', '.join(too_big)}: {then}")
    to_pull = sum(sizes[model] or 0 for model in missing)
    free = obs.disk.get("free_gb") if obs.disk else None
    if to_pull and free is not None and to_pull > free * 2**30:
        problems.append(f"the models still to pull need {_gib_bytes(to_pull)}, {free:.1f} GiB is free at "
                        f"{settings.cold_storage_path}")
    shown = ", ".join(
        f"{model} ({_gib_bytes(sizes[model]) if sizes[model] is not None else 'size unknown'}, "
        f"{'to pull' if model in missing else 'pulled'})" for model in wanted
    )
    unknown = [model for model in missing if sizes[model] is None]
    note = (f"; size unknown for {', '.join(unknown)} (its registry's manifest could not be read from this "
            "machine): not checked" if unknown else "")
    if problems:
        return Check("models", WARN, f"{'; '.join(problems)} ({shown}){note}")
    checked = f"fit {room}" + (f" and the {free:.1f} GiB free" if free is not None and missing else "")
    return Check("models", PASS, f"{shown}: {checked}{note}")


def check_limits(obs: Observed) -> list[Check]:
    """Each placed service's memory and CPU limits against the host: a limit above the host's memory or
    CPU count is a FAIL (Docker refuses CPUs above the count; a memory limit above the host limits
    nothing); limits that add up to more than the host's memory a WARN (together they can still exhaust
    it). Docker limits RAM and CPU time, never GPU memory."""
    if not obs.limits:
        return []
    host = obs.resources
    if host is None:
        return [Check("limits", WARN, "not checked: the host's memory and CPUs could not be read "
                      "(/proc/meminfo, getconf)")]
    rows = []
    memory = f"the host's {_gib_bytes(host.memory)} of memory"
    for service, limit in obs.limits.items():
        fix = f"lower it with HOMELAB_LIMITS={service}=… (or none to lift it)"
        if limit.memory_bytes is not None and limit.memory_bytes > host.memory:
            rows.append(Check("limits", FAIL, f"{service}: memory limit {limit.memory} ({limit.memory_from}) "
                              f"is above {memory}; {fix}"))
        if limit.cpus_value is not None and limit.cpus_value > host.cpus:
            rows.append(Check("limits", FAIL, f"{service}: cpus limit {limit.cpus} ({limit.cpus_from}) is "
                              f"above the host's {host.cpus} CPUs (Docker refuses to start it); {fix}"))
    if rows:
        return rows
    total = sum(limit.memory_bytes or 0 for limit in obs.limits.values())
    unlimited = [service for service, limit in obs.limits.items() if limit.memory_bytes is None]
    shown = "; ".join(f"{service} {limit.describe()}" for service, limit in obs.limits.items())
    if total > host.memory:
        return [Check("limits", WARN, f"the memory limits add up to {_gib_bytes(total)}, more than {memory}: "
                      "together the services can still exhaust it; lower some in HOMELAB_LIMITS "
                      f"({shown})")]
    free = f"; no memory limit: {', '.join(unlimited)}" if unlimited else ""
    return [Check("limits", PASS, f"the memory limits add up to {_gib_bytes(total)} of the host's "
                  f"{_gib_bytes(host.memory)}, none above its {host.cpus} CPUs ({shown}){free}")]


def _names(names: list[str], most: int = 8) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def check_security_updates(obs: Observed) -> Check | None:
    """Automatic security updates as HOMELAB_SECURITY_UPDATES and HOMELAB_REBOOT ask (the files the
    deploy writes, the updater installed, its timers running), the security updates pending, and a
    pending reboot (WARN)."""
    found = match_os(obs.distro)
    manager = manager_for(found)
    if obs.settings is None or obs.updates is None or manager is None:
        return None
    settings, updates = obs.settings, obs.updates
    pending = updates.get("security")
    missing = "no package lists yet" if manager == "apt" else "no package metadata cached yet"
    said = (f"pending security updates unknown ({missing})" if pending is None else
            f"{len(pending)} security update(s) pending: {_names(pending)}" if pending else
            "no security update pending")
    reboot = ""
    if updates.get("reboot_required"):
        reboot = ("; a reboot is pending (HOMELAB_REBOOT=never: reboot by hand)" if settings.reboot == "never"
                  else f"; a reboot is pending (HOMELAB_REBOOT={settings.reboot}: then)")
    if not settings.security_updates:
        return Check("updates", WARN if reboot else PASS,
                     f"not managed (HOMELAB_SECURITY_UPDATES=false); {said}{reboot}")
    tool = "unattended-upgrades" if manager == "apt" else "dnf-automatic"
    wanted = wanted_files(settings, found)
    timers_off = [name for name, state in updates.get("timers", {}).items()
                  if (state.get("enabled"), state.get("active")) != ("enabled", "active")]
    if not updater_installed(obs.packages, manager):
        todo = f"{tool} not installed yet: the deploy installs it"
    elif not all(file_matches(content, (updates.get("files") or {}).get(path))
                 for path, content in wanted.items()):
        todo = f"{tool} installed, not configured as the settings ask yet: the deploy configures it"
    elif timers_off:
        todo = f"{', '.join(timers_off)} not enabled and running: the deploy starts it"
    else:
        policy = "never" if settings.reboot == "never" else f"at {settings.reboot} when needed"
        return Check("updates", WARN if reboot else PASS,
                     f"security updates only ({tool}), reboot {policy}; {said}{reboot}")
    return Check("updates", WARN, f"{todo} (security updates only); {said}{reboot}")


def check_holds(obs: Observed) -> Check | None:
    """The NVIDIA driver, its container toolkit and the Docker engine held at their installed versions
    (HOMELAB_HOLD_PACKAGES); every held package is listed."""
    manager = manager_for(match_os(obs.distro))
    if obs.settings is None or obs.updates is None or manager is None:
        return None
    held = list(obs.updates.get("held") or [])
    listed = f"held: {', '.join(held)}" if held else "nothing held"
    how = "apt-mark showhold" if manager == "apt" else "dnf versionlock list"
    if not obs.settings.hold_packages:
        return Check("holds", PASS, f"not managed (HOMELAB_HOLD_PACKAGES=false); {listed} ({how})")
    candidates = hold_candidates(obs.packages)
    missing = [name for name in candidates if name not in held]
    if not candidates:
        return Check("holds", PASS, f"no NVIDIA driver, container toolkit or Docker engine installed "
                     f"yet (the deploy holds them once installed); {listed}")
    if missing:
        return Check("holds", WARN, f"not held yet: {', '.join(missing)} (the deploy holds them); "
                     f"{listed}")
    return Check("holds", PASS, f"{listed} ({how})")


def check_tls(obs: Observed, now: datetime | None = None) -> Check | None:
    """HTTPS on the subdomains, where NPM runs here: WARN when off (plain HTTP); with dns the wildcard
    certificate's expiry when NPM already holds it (WARN under EXPIRY_WARNING_DAYS, FAIL expired), FAIL
    when a subdomain's proxy host serves another certificate, WARN when one has none yet."""
    if obs.settings is None or Service.NGINX_PROXY_MANAGER not in obs.services:
        return None
    if obs.tls_names is None:
        return Check("https", WARN, "HOMELAB_TLS=off: the subdomains are plain HTTP (HOMELAB_TLS=dns: one "
                     "wildcard certificate by the DNS challenge, README: HTTPS on the subdomains)")
    names = ", ".join(obs.tls_names)
    if obs.certificate_unread is not None:
        return Check("https", WARN, f"{names}: not checked ({obs.certificate_unread}); the deploy requests "
                     "the certificate when NPM has none")
    if obs.certificate is None:
        return Check("https", WARN, f"{names}: NPM holds no certificate yet: the deploy requests it "
                     f"(DNS challenge, {obs.settings.tls_dns_provider})")
    when = expires_at(obs.certificate)
    left = None if when is None else when - (now or datetime.now(UTC))
    shown = f"#{obs.certificate.get('id')} expires {obs.certificate.get('expires_on')}"
    if left is None or left.total_seconds() <= 0:
        return Check("https", FAIL, f"{names}: {shown}: expired (NPM's renewal failed: see its certbot log "
                     "logs/letsencrypt.log in NPM's data folder); the deploy requests a new one")
    wildcard = int(obs.certificate.get("id") or 0)
    others = sorted(d for d, cert in obs.proxy_certificates.items() if cert and cert != wildcard)
    if others:
        return Check("https", FAIL, f"{names}: {shown}, but {', '.join(others)} serve(s) another "
                     "certificate; the deploy attaches the wildcard to the hosts it manages")
    if left.days < EXPIRY_WARNING_DAYS:
        return Check("https", WARN, f"{names}: {shown}, in {left.days} days (NPM renews 30 days before; "
                     "its renewal may be failing: see logs/letsencrypt.log in NPM's data folder)")
    bare = sorted(d for d, cert in obs.proxy_certificates.items() if not cert)
    if bare:
        return Check("https", WARN, f"{names}: {shown} ({left.days} days); not used yet by "
                     f"{', '.join(bare)}: the deploy attaches it")
    return Check("https", PASS, f"{names}: {shown} ({left.days} days)")


def check_monitoring(obs: Observed) -> Check | None:
    """HOMELAB_MONITORING: what this host runs of it, and where alerts go (WARN: nowhere)."""
    if obs.settings is None or not obs.settings.monitoring:
        return None
    exporters = [service for service in obs.services if CATALOG[service].group == EVERY_HOST]
    if obs.monitoring is None:
        where = obs.monitoring_host or "no host"
        return Check("monitoring", PASS, f"{', '.join(exporters) or 'no exporter'} here, scraped by {where} "
                     "over the tailnet")
    watched = obs.monitoring
    hosts = sorted({target.host for target in watched.targets})
    detail = (f"Prometheus here: {len(watched.targets)} scrape targets on {', '.join(hosts)}, "
              f"{len(watched.probes)} probes")
    if not watched.webhook:
        return Check("monitoring", WARN, f"{detail}; alerts reach nobody: set HOMELAB_MONITORING_WEBHOOK_URL "
                     "(an ntfy, Discord, Slack or Gotify webhook URL; README: Monitoring)")
    return Check("monitoring", PASS, f"{detail}; alerts to the webhook (HOMELAB_MONITORING_WEBHOOK_URL)")


# -- all of them -------------------------------------------------------------------------------
def checks(obs: Observed) -> list[Check]:
    """Every check for one host, in reading order."""
    rows = [check_reachable(obs), check_settings(obs), check_os(obs), check_python(obs), check_docker(obs),
            check_gpu(obs)]
    vram = check_vram(obs)
    if vram is not None:
        rows.append(vram)
    rows += check_cuda(obs)
    if obs.settings is None:
        return rows
    rows += [check_disk(obs), check_tailscale(obs), check_tailscale_ip(obs), check_firewalld(obs)]
    subnet = check_docker_subnet(obs)
    if subnet is not None:
        rows.append(subnet)
    rows += check_ports(obs)
    rows += check_images(obs)
    rows += check_sshd(obs)
    tailnet_only = check_ssh_tailnet_only(obs)
    if tailnet_only is not None:
        rows.append(tailnet_only)
    rows += check_limits(obs)
    models = check_models(obs)
    if models is not None:
        rows.append(models)
    backup = check_backup(obs)
    if backup is not None:
        rows.append(backup)
    last = (check_security_updates(obs), check_holds(obs), check_tls(obs), check_monitoring(obs))
    rows += [row for row in last if row is not None]
    return rows


def failed(rows: list[Check]) -> bool:
    return any(row.result == FAIL for row in rows)


def table(host: str, rows: list[Check]) -> str:
    """One readable table: check | result | detail, and a summary line."""
    width = max([len("check"), *(len(row.check) for row in rows)])
    lines = [f"Preflight for {host}", f"  {'check':<{width}}  result  detail",
             f"  {'-' * width}  ------  ------"]
    lines += [f"  {row.check:<{width}}  {row.result:<6}  {row.detail}" for row in rows]
    counts = {result: sum(row.result == result for row in rows) for result in (PASS, WARN, FAIL)}
    verdict = "NOT READY: fix the FAIL rows first" if counts[FAIL] else "ready for the deploy"
    lines.append(f"  {counts[PASS]} PASS, {counts[WARN]} WARN, {counts[FAIL]} FAIL: {verdict}")
    return "\n".join(lines)


__all__ = ["Check", "Observed", "checks", "failed", "table", "PASS", "WARN", "FAIL", "NETWORK"]
