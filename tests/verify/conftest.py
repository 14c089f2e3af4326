"""Tier 3, verification: a testinfra suite run against the hosts of a pyinfra inventory.

    pytest tests/verify --inventory inventories/home.py
    pytest tests/verify --inventory inventories/lab.py --limit homelab-lab-2

The inventory file is the one the deploys use (hosts are never listed twice). Each host becomes a
testinfra `paramiko://` backend built from its pyinfra data (`ssh_hostname`, `ssh_port`, `ssh_user`,
`ssh_key`, `_sudo`), and its settings are the deploys' own: `deploys.library.settings.settings_for_host`
(inventory host and group data over the environment and `.env`). Every test runs once per host.

`--limit` takes host names (with or without the `@homelab/` prefix), inventory group names or
globs, comma-separated, as pyinfra's `--limit` does. The project's own `pytest` run does not
collect this folder (pyproject's norecursedirs); it runs only when asked for.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
import pytest
import testinfra.host
from testinfra.backend.paramiko import IgnorePolicy, ParamikoBackend

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# the host plan (the settings, which services are placed on which host) is the deploy's own; what a
# deployed host must look like is stated in host_rules.py, never imported from the deploy code
from deploys.library.plan import InventoryPlan, Member, PlanError, plan_host  # noqa: E402
from deploys.library.resources import HostResources  # noqa: E402
from deploys.library.settings import HomelabSettings, SettingsError, settings_for_host  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from host_rules import SERVICES  # noqa: E402

NPM = "nginx-proxy-manager"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("homelab verification")
    group.addoption("--inventory", metavar="FILE", help="pyinfra inventory whose hosts are verified")
    group.addoption(
        "--limit", metavar="HOSTS", help="only these hosts or groups (comma-separated names or globs)"
    )
    group.addoption(
        "--egress-target", metavar="ADDRESS:PORT",
        help="what each container must reach outside its host (default: Pi-hole's first upstream, port 53)",
    )


@dataclass
class Target:
    """One inventory host under verification: its testinfra host, settings and placed services."""

    name: str
    host: Any  # testinfra.host.Host
    settings: HomelabSettings
    services: tuple[str, ...]  # the services placed on this host (HOMELAB_SERVICES names)
    proxy_elsewhere: bool  # NGINX Proxy Manager runs on other hosts only
    # where the subdomains point when NPM runs on another host: that host's configured Tailscale IP
    proxy_ip_elsewhere: str | None
    # how the deploy logs in: its user (root when none is named), and whether with a password
    login_user: str = "root"
    login_password: bool = False
    plans: InventoryPlan | None = None  # the inventory's placement, for what the plan decides per host
    # the hosts' metrics are scraped by Prometheus on another host (it publishes its exporters)
    watched_from_elsewhere: bool = False
    proxies_elsewhere: bool = False  # another host runs NGINX Proxy Manager (this one may too)
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def short_name(self) -> str:
        return self.name.split("/", 1)[-1]

    def run(self, command: str, *args: str):
        return self.host.run(command, *args)

    def read(self, command: str, *args: str):
        """``run`` for a command that only reads the host: run once per host and session, its result
        shared by every test that asks (as the deploy reads each subject once per run)."""
        key = ("read", command, args)
        if key not in self._cache:
            self._cache[key] = self.host.run(command, *args)
        return self._cache[key]

    @property
    def proxy_ip(self) -> str | None:
        """Where the subdomains point: this host's own Tailscale address when it runs NGINX Proxy
        Manager (read from the host, when a test first asks), else the proxy host's."""
        if NPM in self.services:
            return self.tailscale_ip
        return self.proxy_ip_elsewhere

    @property
    def tailscale_ip(self) -> str | None:
        """The host's Tailscale IPv4 as the host reports it (``tailscale ip -4``, else the address on
        ``tailscale0``): never the configured HOMELAB_TAILSCALE_IP, which is what is being checked."""
        if "tailscale_ip" not in self._cache:
            self._cache["tailscale_ip"] = _reported_tailscale_ip(self.host)
        return self._cache["tailscale_ip"]

    @property
    def has_gpu(self) -> bool:
        if "gpu" not in self._cache:
            result = self.run("command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L")
            self._cache["gpu"] = result.rc == 0 and "GPU" in result.stdout
        return self._cache["gpu"]

    def containers(self, services: tuple[str, ...] = SERVICES) -> dict[str, dict[str, Any]]:
        """Our containers by name: state, health, the image as named and its ID, published ports (one
        `docker inspect`)."""
        wanted = set(services)
        return {name: found for name, found in self._containers().items() if name in wanted}

    def _containers(self) -> dict[str, dict[str, Any]]:
        """The containers of the five services and of every service placed here, read once per session."""
        if "containers" in self._cache:
            return self._cache["containers"]
        names = " ".join(sorted({*SERVICES, *self.services}))  # the containers keep the services' names
        result = self.run(
            "docker inspect --format "
            "'{{json .Name}} {{json .State.Status}} "
            "{{if .State.Health}}{{json .State.Health.Status}}{{else}}null{{end}} "
            "{{json .Config.Image}} {{json .Image}} {{json .NetworkSettings.Ports}}' "
            + names + " 2>/dev/null"
        )
        found = {}
        for line in result.stdout.splitlines():
            if not line.startswith('"'):
                continue  # `[]` when none of them exists
            name, status, health, image, image_id, ports = line.split(" ", 5)
            found[json.loads(name).lstrip("/")] = {
                "state": json.loads(status), "health": json.loads(health), "ports": json.loads(ports) or {},
                "image": json.loads(image), "image_id": json.loads(image_id),
            }
        self._cache["containers"] = found
        return found

    @property
    def host_memory(self) -> int | None:
        """The host's memory in bytes, as it reports it (read with the planned limits)."""
        self.planned_limits()
        return self._cache.get("host_memory")

    def planned_limits(self) -> dict[str, tuple[int, int]]:
        """Each placed service's limits as the host plan decides them, with the host's memory and CPUs as
        the host reports them (a limit may be a share of them): (memory bytes, nano CPUs), 0: none."""
        if "limits" not in self._cache:
            from facts.host import HostResources as Fact

            fact = Fact()
            found = fact.process(self.run(fact.command()).stdout.splitlines())
            self._cache["host_memory"] = found["memory"] if found else None
            assert self.plans is not None
            plan = plan_host(self.plans, self.name, tailscale_ip=None, gpu=None,
                             resources=HostResources(**found) if found else None)
            try:
                self._cache["limits"] = {
                    service: (plan.limits_of(service).memory_bytes or 0, plan.limits_of(service).nano_cpus)
                    for service in plan.services
                }
            except ValueError as error:  # a share of the host, whose memory or CPUs could not be read
                pytest.fail(f"{self.short_name}: {error}")
        return self._cache["limits"]

    def placed(self, service: str) -> bool:
        return service in self.services

    def require_placed(self, service: str) -> None:
        if not self.placed(service):
            pytest.skip(f"{service} is not deployed to {self.short_name} (settings/groups)")

    def require_running(self, service: str) -> dict[str, Any]:
        """Skip (not fail) a test that needs a container which is not running: the container's own
        test reports that, so one broken thing fails one test."""
        self.require_placed(service)
        container = self.containers((service,)).get(service)
        if not container or container["state"] != "running":
            pytest.skip(f"{service} is not running (see test_container_running_and_healthy)")
        return container


class _Paramiko(ParamikoBackend):
    """testinfra's paramiko backend with pyinfra's host key rules (`ssh_known_hosts_file`,
    `ssh_strict_host_key_checking`: yes, accept-new (the default) or no)."""

    def __init__(self, hostspec: str, known_hosts: str, strict: str, **kwargs: Any):
        self.known_hosts = os.path.expanduser(known_hosts)
        self.strict = strict
        super().__init__(hostspec, **kwargs)

    @functools.cached_property
    def client(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        if self.strict == "no":
            client.set_missing_host_key_policy(IgnorePolicy())
        else:
            if os.path.isfile(self.known_hosts):
                client.load_host_keys(self.known_hosts)  # a changed key is refused
            policy = paramiko.RejectPolicy() if self.strict == "yes" else paramiko.AutoAddPolicy()
            client.set_missing_host_key_policy(policy)
        client.connect(
            hostname=self.host.name,
            port=int(self.host.port) if self.host.port else 22,
            username=self.host.user,
            key_filename=self.ssh_identity_file,
            timeout=self.timeout,
        )
        # every check is a small request and its answer: without this, each waits on Nagle's algorithm
        # and the host's delayed ACK (about 40 ms a command), as the deploy's own connector avoids
        client.get_transport().sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client


def _matches(host: Any, patterns: list[str]) -> bool:
    names = {host.name, host.name.split("/", 1)[-1], *host.groups}
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns for name in names)


def load_targets(inventory_file: str, limit: str | None) -> list[Target]:
    from pyinfra.api import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    with ctx_state.use(State()):
        inventory = make_inventory(inventory_file, cwd=str(ROOT))
    hosts = list(inventory)
    if limit:
        patterns = [item.strip() for item in limit.split(",") if item.strip()]
        hosts = [each for each in hosts if _matches(each, patterns)]
        if not hosts:
            raise pytest.UsageError(f"--limit {limit}: no host of {inventory_file} matches")

    every = list(inventory)
    settings: dict[str, HomelabSettings] = {}
    problems = []
    for each in every:
        try:
            settings[each.name] = settings_for_host(each)
        except SettingsError as error:
            problems.append(f"{each.name}: {error}")
    if problems:
        raise pytest.UsageError("invalid settings:\n" + "\n".join(problems))
    backends = {each.name: _backend(each) for each in every}

    def reported_address(name: str) -> str | None:
        """Another host's Tailscale address, as that host reports it (asked only when needed)."""
        return _reported_tailscale_ip(backends[name])

    plans = InventoryPlan(
        [Member(each.name, frozenset(each.groups), settings[each.name]) for each in every], reported_address
    )
    targets = []
    for each in hosts:
        # what runs where is the plan's; the GPU rules need the host's own facts and are not applied
        plan = plan_host(plans, each.name, tailscale_ip=None, gpu=None)
        proxy_ip = None
        if plan.proxy_host not in (None, each.name):
            try:
                proxy_ip = plans.address(plan.proxy_host)
            except PlanError:
                proxy_ip = None
        targets.append(Target(
            name=each.name,
            host=backends[each.name],
            settings=settings[each.name],
            services=plan.services,
            proxy_elsewhere=plan.proxy_host not in (None, each.name),
            watched_from_elsewhere=(settings[each.name].monitoring
                                    and plans.monitoring_host not in (None, each.name)),
            proxies_elsewhere=any(name != each.name for name in plans.hosts_running(NPM)),
            proxy_ip_elsewhere=proxy_ip,
            login_user=str(each.data.get("ssh_user") or "root"),
            login_password=bool(each.data.get("ssh_password")),
            plans=plans,
        ))
    return targets


def _reported_tailscale_ip(backend: Any) -> str | None:
    from facts.tailscale import TailscaleIP

    fact = TailscaleIP()
    return fact.process(backend.run(fact.command).stdout.splitlines())


def _backend(each: Any) -> Any:
    """A testinfra host for an inventory host, from its pyinfra data (connects when first used)."""
    data = each.data
    address = data.get("ssh_hostname") or each.name.split("/", 1)[-1]
    user = data.get("ssh_user")
    port = data.get("ssh_port")
    spec = f"{user + '@' if user else ''}{address}{':' + str(port) if port else ''}"
    return testinfra.host.Host(
        _Paramiko(
            spec,
            known_hosts=data.get("ssh_known_hosts_file") or "~/.ssh/known_hosts",
            strict=str(data.get("ssh_strict_host_key_checking") or "accept-new"),
            ssh_identity_file=data.get("ssh_key"),
            sudo=bool(data.get("_sudo")),
            sudo_user=data.get("_sudo_user"),
        )
    )


@functools.cache
def _targets(inventory_file: str, limit: str | None) -> tuple[Target, ...]:
    return tuple(load_targets(inventory_file, limit))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" not in metafunc.fixturenames:
        return
    inventory_file = metafunc.config.getoption("inventory")
    if not inventory_file:
        raise pytest.UsageError(
            "tests/verify needs an inventory: pytest tests/verify --inventory inventories/<name>.py"
        )
    targets = _targets(inventory_file, metafunc.config.getoption("limit"))
    metafunc.parametrize("target", targets, ids=[t.short_name for t in targets], scope="session")


@pytest.fixture(scope="session")
def host(target: Target):
    """The testinfra host of the target (overrides testinfra's own `host` fixture)."""
    return target.host


@pytest.fixture(scope="session")
def settings(target: Target) -> HomelabSettings:
    return target.settings


__all__ = ["Target"]


@pytest.fixture(scope="session")
def egress_target(request: pytest.FixtureRequest, target: Target) -> tuple[str, str]:
    """(address, port) that every container must reach: --egress-target, else Pi-hole's first
    upstream resolver on 53 (Pi-hole needs it, and a resolver answers TCP on 53)."""
    given = request.config.getoption("--egress-target")
    if given:
        address, _, port = given.rpartition(":")
        if not address or not port.isdigit():
            raise pytest.UsageError(f"--egress-target {given!r}: expected ADDRESS:PORT")
        return address.strip("[]"), port
    upstream = target.settings.pihole_upstream_dns[0].split("#", 1)[0]
    return upstream, "53"
