"""Tier 1, preflight: read every host once and say whether it is ready. Changes nothing.

    pyinfra inventories/home.py deploys/validate.py -y        # -y: no "press enter" (there is nothing to run)
    pyinfra inventories/lab.py deploys/validate.py -y --limit homelab-lab-1

Per host it prints one table (check | PASS/WARN/FAIL | detail): reachable, settings, OS and version,
python3, Docker, NVIDIA GPU and VRAM, free space at the cold-storage path, Tailscale and its IP,
firewalld, a configured Docker subnet against the host's routes, the host ports 80, 443, 81, 53
on the Tailscale IP, each service's memory and CPU limits against the host's, the image each
deployed service runs (pinned by digest), the models
(HOMELAB_OLLAMA_MODELS against the VRAM, the memory and the free space), and the backups (the
repository opens, the last good backup's age), the security updates (configured as the settings ask,
those pending, a pending reboot) and the held packages. WARN is fine before the first deploy (Docker not
installed yet, firewalld stopped, no GPU); any FAIL ends the run with an error and a non-zero exit.
The rules live in deploys/library/preflight.py; this file only reads the facts, one read per fact,
at prepare time, and adds no operation.

Invalid settings never get this far: the @homelab connector refuses to contact any host of a run
whose settings are invalid (one line per problem, non-zero exit).
"""

from __future__ import annotations

import click
from pyinfra import host, inventory, state
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.hardware import Memory
from pyinfra.facts.rpm import RpmPackages
from pyinfra.facts.server import LinuxDistribution, Which
from pyinfra.facts.systemd import SystemdStatus

from deploys.library import backup_steps, model_steps, preflight, security_steps, tunnel
from deploys.library.catalog import CATALOG, Service
from deploys.library.context import host_resources, inventory_plan, match_os
from deploys.library.errors import DeployError
from deploys.library.hardening import SSHD_DROP_IN, login_of, sshd_policy
from deploys.library.plan import plan_host
from deploys.library.run import current_run
from deploys.library.settings import HomelabSettings, SettingsError, settings_for_host
from facts.compose import ComposeProjects, ImagePins
from facts.docker import DockerNetworksInspect, RunningContainers
from facts.firewalld import FirewalldZones, RemovedSshEntries
from facts.gpu import NvidiaGpus
from facts.host import DiskFree, HostNetwork, ListeningSockets
from facts.ollama import OllamaManifests
from facts.reads import read_fact
from facts.restic import BackupStatus, ResticRepository
from facts.sshd import SshdSettings
from facts.system import ComposeVersion, SshConnection
from facts.tailscale import TailscaleStatus
from facts.updates import AutomaticUpdates
from operations.clients import ServiceUnreachable
from operations.clients.npm import NpmClient, NpmError
from operations.clients.ollama import parse_model_name
from operations.firewalld import TAILNET_REVERT_UNIT, TAILNET_STATE_FILE
from operations.sshd import drop_in_path

UNITS = ["docker.service", "firewalld.service"]


def _connection() -> str:
    data = host.data
    address = data.get("ssh_hostname") or host.name.split("/", 1)[-1]
    port = data.get("ssh_port")
    user = data.get("ssh_user")
    return f"{user + '@' if user else ''}{address}{':' + str(port) if port else ''}"


def observe() -> preflight.Observed:
    obs = preflight.Observed(host=host.name, connection=_connection())
    try:
        obs.settings = settings_for_host(host)
    except SettingsError as error:
        obs.settings_problems = error.problems

    obs.distro = read_fact(LinuxDistribution, host=host) or {}
    obs.python = read_fact(Which, command="python3", host=host)
    obs.docker_binary = read_fact(Which, command="docker", host=host)
    obs.firewalld_binary = read_fact(Which, command="firewall-cmd", host=host)
    obs.units = read_fact(SystemdStatus, services=UNITS, host=host)
    obs.gpu = read_fact(NvidiaGpus, host=host)
    family = match_os(obs.distro).family
    if family in ("rhel", "debian"):
        obs.packages = read_fact(RpmPackages if family == "rhel" else DebPackages, host=host) or {}
        # one read: holds, pending security updates, the updater's files and timers, a pending reboot
        manager = "dnf" if family == "rhel" else "apt"
        config_files, timers = security_steps.watched(manager)
        obs.updates = read_fact(AutomaticUpdates, manager=manager, files=config_files, timers=timers,
                                host=host)
    if obs.docker_binary:
        obs.compose_version = read_fact(ComposeVersion, host=host)
        obs.projects = read_fact(ComposeProjects, host=host)
        obs.running_containers = read_fact(RunningContainers, host=host)
    if obs.firewalld_binary and obs.units.get("firewalld.service"):
        obs.firewalld = read_fact(FirewalldZones, host=host)
    if obs.settings is not None:
        obs.disk = read_fact(DiskFree, path=str(obs.settings.cold_storage_path), host=host)
        obs.tailscale = read_fact(TailscaleStatus, host=host)
        # one read: the Tailscale IPv4 (as facts.tailscale.TailscaleIP), every address, the routes
        network = read_fact(HostNetwork, host=host)
        obs.tailscale_ip_on_host = network["tailscale_ip"]
        obs.addresses = network["addresses"]
        obs.routes = network["routes"]
        if obs.settings.docker_subnet is not None and obs.units.get("docker.service"):
            obs.docker_networks = read_fact(DockerNetworksInspect, host=host)
        # the host's plan: what runs here and what it publishes (deploys/library/plan.py)
        obs.resources = host_resources()
        plan = plan_host(inventory_plan(), host.name, tailscale_ip=preflight.reported_tailscale_ip(obs),
                         gpu=obs.gpu, resources=obs.resources)
        obs.services = list(plan.services)
        obs.limits = {service: plan.limits_of(service) for service in plan.services}
        obs.skipped = list(plan.skipped)
        obs.published = [(item.service, item.port) for item in plan.published]
        if obs.published:
            obs.sockets = read_fact(ListeningSockets, host=host)
        if obs.docker_binary and obs.projects:
            directories = {service: str(CATALOG[service].project_dir) for service in obs.services}
            pins = read_fact(ImagePins, directories=sorted(directories.values()), host=host)
            obs.pins = {service: pins.get(directory) for service, directory in directories.items()}
        if Service.OLLAMA in obs.services and obs.settings.ollama_models:
            observe_models(obs, obs.settings)
        obs.sshd_policy = sshd_policy(obs.settings, login_of(host))
        obs.sshd = read_fact(SshdSettings, drop_in=drop_in_path(SSHD_DROP_IN), host=host)
        obs.ssh_session = read_fact(SshConnection, host=host)
        obs.ssh_removed = read_fact(RemovedSshEntries, path=TAILNET_STATE_FILE,
                                        unit=f"{TAILNET_REVERT_UNIT}.timer", host=host)
        obs.tailnet = list(plan.zone.sources)
        obs.monitoring = plan.monitoring
        obs.monitoring_host = plan.inventory.monitoring_host
        if plan.tls is not None:
            observe_certificate(obs, obs.settings, plan.tls.names, plan.tailscale_ip,
                                [route.domain for route in plan.routes])
        if obs.settings.backups:
            obs.backup_repository = read_fact(ResticRepository, env_file=backup_steps.ENV_FILE, host=host)
            obs.backup_status = read_fact(BackupStatus, state_dir=backup_steps.STATE_DIR,
                                              timer=f"{backup_steps.UNIT}.timer",
                                              service=f"{backup_steps.UNIT}.service", host=host)
    return obs


def observe_certificate(obs: preflight.Observed, settings: HomelabSettings, names: tuple[str, ...],
                        address: str | None, domains: list[str]) -> None:
    """The wildcard certificate as NPM lists it, and the certificate of each subdomain's proxy host (read
    only; NPM may not be deployed yet)."""
    obs.tls_names = names
    if not address:
        obs.certificate_unread = "no Tailscale IP yet"
        return
    try:
        url = tunnel.local_url(host, address, CATALOG[Service.NGINX_PROXY_MANAGER].upstream_port)
        client = NpmClient(url, settings.npm_admin_email or "", settings.npm_admin_password, timeout=10)
        client.wait_ready(timeout=2)
        obs.certificate = client.find_certificate_by_names(names)
        wanted = {domain.lower() for domain in domains}
        obs.proxy_certificates = {
            name.lower(): int(proxy.get("certificate_id") or 0)
            for proxy in client.list_proxy_hosts() for name in proxy.get("domain_names", [])
            if name.lower() in wanted
        }
    except (ServiceUnreachable, NpmError, DeployError, OSError) as error:
        obs.certificate_unread = f"NGINX Proxy Manager not deployed or not answering: {error}"


def observe_models(obs: preflight.Observed, settings: HomelabSettings) -> None:
    """Ollama's store on the host, the host's memory, and the download size of each model not in the
    store, read from its registry's manifest by this machine (once per run)."""
    obs.ollama_store = read_fact(OllamaManifests, path=str(model_steps.ollama_models_folder(settings)),
                                 host=host)
    obs.memory_mib = read_fact(Memory, host=host)
    held = {parse_model_name(name).key for name in obs.ollama_store or {}}
    for model in settings.ollama_models:
        if parse_model_name(model).key not in held:
            obs.model_sizes[model] = model_steps.registry_size(settings, model)


def _unreachable_tables() -> list[str]:
    """Hosts of this run that pyinfra could not connect to (it has said why, above)."""
    tables = []
    for each in inventory:
        if state.is_host_in_limit(each) and each in state.failed_hosts:
            row = preflight.Check("reachable", preflight.FAIL, "could not connect (pyinfra's error above)")
            tables.append(preflight.table(each.name, [row]))
    return tables


def main() -> None:
    # pyinfra loads this file once per host, in parallel greenlets: the run's state counts the hosts
    # done and failed; the last host to finish ends the run
    run = current_run().preflight
    if not run:
        run.update(expected=len(list(inventory.get_active_hosts())), done=0, failed=[])
    rows = preflight.checks(observe())
    click.echo("\n" + preflight.table(host.name, rows) + "\n", err=True)
    if preflight.failed(rows):
        run["failed"].append(host.name)
    run["done"] += 1
    if run["done"] < run["expected"]:
        return
    # the last host of the run: report hosts that never connected, then fail the run if any FAILed
    unreachable = _unreachable_tables()
    for text in unreachable:
        click.echo(text + "\n", err=True)
    failed = sorted(run["failed"]) + sorted(
        each.name for each in inventory if state.is_host_in_limit(each) and each in state.failed_hosts
    )
    if failed:
        raise DeployError(
            f"preflight FAILED on {', '.join(failed)} (see the tables above); nothing was changed"
        )


main()
