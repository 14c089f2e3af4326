"""Tier 3: what a deployed homelab host must look like, one property per test.

A test that needs a running container skips (with the reason) when that container is not running:
`test_container_running_and_healthy` is the one that fails for it, so each broken thing fails one
test. Run: `pytest tests/verify --inventory inventories/<name>.py` (see conftest.py).
"""

from __future__ import annotations

import configparser
import ipaddress
import json
import re
import shlex
import time
import warnings

import pytest
from host_rules import (
    APT_UPGRADE_TIMER,
    BACKUP_LAST_SUCCESS,
    BACKUP_TIMER,
    COMFYUI_MODELS_FOLDER,
    DATA_FOLDERS,
    DATA_OWNER,
    DNF_AUTOMATIC_CONF,
    DNF_AUTOMATIC_TIMER,
    GPU_SERVICES,
    GRAFANA_ADMIN,
    GRAFANA_DASHBOARDS,
    GRAFANA_PORT,
    GRAFANA_PROBE,
    HOST_METRICS_FILE,
    HOST_METRICS_MAX_AGE,
    HOST_METRICS_TIMER,
    HOST_PORTS_BY_SERVICE,
    HTTPS_PORT,
    LIMITS_FORMAT,
    NETWORK,
    NPM_API_PORT,
    OPEN_WEBUI_API,
    OPEN_WEBUI_SIGNUP_CLOSED,
    PIN_FILE,
    PRIVATE_FILES,
    PROJECTS_ROOT,
    PROMETHEUS_API,
    SCRAPED,
    SERVICES,
    SUBDOMAINS,
    TLS_PROBE,
    UPSTREAMS,
    ZONE,
    ZONE_SERVICES,
    apt_config_values,
    backup_age_problem,
    certificate_problems,
    container_limits,
    expected_ssh_port,
    expected_zone_ports,
    firing_alerts,
    host_metric_names,
    image_pin,
    limit_mismatches,
    limit_safety_problems,
    models_not_listed,
    not_held,
    not_security_origins,
    ollama_list_names,
    proxy_hosts_nginx_rejected,
    sshd_expected,
    target_problems,
    wildcard_listeners,
    zones_admitting_ssh_elsewhere,
)

from facts.firewalld import FirewalldZones
from facts.host import ListeningSockets
from facts.system import SshConnection
from facts.updates import AutomaticUpdates

# What a deployed host must look like is stated in host_rules.py, never imported from the deploy
# code under test; only the host plan (which services are placed where, the settings) is shared.
ALL = list(SERVICES)
HOST_PORTS = [(service, port) for service, ports in HOST_PORTS_BY_SERVICE.items() for port in ports]
VOLUMES = [(service, folder) for service, folders in DATA_FOLDERS.items() for folder in folders]
NPM, PIHOLE = "nginx-proxy-manager", "pihole"

# A DNS A query over UDP, run with the host's python3 (no dig needed): prints "<rcode> <addresses…>"
DNS_QUERY = r"""
import socket, struct, sys
name, server = sys.argv[1], sys.argv[2]
labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
query = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", 1, 1)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(3)
sock.sendto(query, (server, 53))
reply = sock.recv(4096)
rcode, count, i = reply[3] & 15, struct.unpack(">H", reply[6:8])[0], 12
while reply[i]:
    i += reply[i] + 1
i += 5
found = []
for _ in range(count):
    if reply[i] & 0xC0 == 0xC0:
        i += 2
    else:
        while reply[i]:
            i += reply[i] + 1
        i += 1
    kind, _, _, size = struct.unpack(">HHIH", reply[i:i + 10])
    i += 10
    if kind == 1:
        found.append(socket.inet_ntoa(reply[i:i + size]))
    i += size
print(rcode, *found)
"""


def _ids(values):
    return [str(value) for value in values]


def _sockets(target) -> list[dict]:
    fact = ListeningSockets()
    sockets = fact.process(target.read(fact.command()).stdout.splitlines())
    assert sockets is not None, "`ss` is missing or failed on the host"
    return sockets


def _dns(target, name: str, server: str) -> tuple[int, list[str]]:
    if target.read("command -v python3").rc == 0:
        result = target.run("python3 -c %s %s %s", DNS_QUERY, name, server)
        assert result.rc == 0, f"no DNS answer from {server}:53 for {name}: {result.stderr.strip()[-300:]}"
        rcode, *addresses = result.stdout.split()
        return int(rcode), addresses
    # no python3 on the host: ask from inside the Pi-hole container (its image has dig)
    result = target.run("docker exec pihole dig +short +time=3 +tries=1 @%s %s A", server, name)
    assert result.rc == 0, f"no DNS answer from {server}:53 for {name}: {result.stdout}{result.stderr}"
    return 0, [line for line in result.stdout.split() if line[:1].isdigit()]


# -- Docker ------------------------------------------------------------------------------------
def test_docker_running(host):
    assert host.service("docker").is_running, "the docker service is not running"


@pytest.mark.parametrize("service", ALL, ids=_ids(ALL))
def test_container_running_and_healthy(target, service):
    target.require_placed(service)
    container = target.containers().get(service)
    assert container is not None, f"no container {service}"
    assert (container["state"], container["health"]) == ("running", "healthy")


@pytest.mark.parametrize("service", ALL, ids=_ids(ALL))
def test_service_runs_the_image_pinned_beside_its_project(target, service):
    """The image a service runs is pinned by digest beside its compose project, for the image its
    setting names, and the container runs exactly that image (so a tag that moves in its registry
    changes nothing until an update)."""
    container = target.require_running(service)
    path = f"{PROJECTS_ROOT}/{service}/{PIN_FILE}"
    pin = image_pin(target.run(f"cat {path}").stdout)
    assert pin is not None, f"{path}: no image pin (x-homelab-pin)"
    assert pin["image"] == target.settings.image_for(service), f"{path} pins another image than its setting"
    assert pin["pinned"].startswith("sha256:") or "@sha256:" in pin["pinned"], pin
    assert container["image"] == pin["pinned"], f"{service} runs {container['image']}, pinned {pin['pinned']}"
    held = target.run(f"docker image inspect --format '{{{{.Id}}}}' {pin['pinned']}").stdout.strip()
    assert held == container["image_id"], f"{pin['pinned']} is not the image {service} runs"


def test_containers_run_with_the_planned_limits(target):
    """Each running container of a service placed here has the memory limit (and no swap beyond it) and
    the CPU limit that the host plan decides for this host (one `docker inspect` for all of them)."""
    planned = target.planned_limits()
    if not planned:
        pytest.skip(f"no service is placed on {target.short_name}")
    result = target.run(f"docker inspect --format {LIMITS_FORMAT} {' '.join(planned)} 2>/dev/null")
    found = container_limits(result.stdout)
    if not any(container["state"] == "running" for container in found.values()):
        pytest.skip("none of this host's containers is running (see test_container_running_and_healthy)")
    lifted = [service for service, limits in target.settings.limits.items() if limits.memory == "none"]
    # the rule stated here (host_rules), then the exact values the plan decided
    problems = limit_safety_problems(found, target.host_memory, lifted) + limit_mismatches(planned, found)
    assert not problems, "; ".join(problems)


def test_every_other_service_placed_here_runs_healthy(target):
    """The services the plan places on this host beyond the five (a sixth one the catalog declares)
    have their containers running and healthy; the five have their own test just above, so one
    stopped container fails one test."""
    others = tuple(service for service in target.services if service not in SERVICES)
    if not others:
        pytest.skip(f"no service beyond the five is placed on {target.short_name}")
    found = target.containers(others)
    wrong = {
        service: (found[service]["state"], found[service]["health"]) if service in found else "no container"
        for service in others
        if (found.get(service) or {}).get("state") != "running" or found[service]["health"] != "healthy"
    }
    assert not wrong, f"not running and healthy: {wrong}"


@pytest.mark.parametrize("service", GPU_SERVICES, ids=_ids(GPU_SERVICES))
def test_gpu_visible_inside(target, service):
    target.require_placed(service)
    if not target.has_gpu:
        pytest.skip(f"{target.short_name} has no NVIDIA GPU (nvidia-smi -L found none): "
                    f"{service} runs on the CPU")
    target.require_running(service)
    result = target.run("docker exec %s nvidia-smi -L", service)
    assert result.rc == 0 and "GPU" in result.stdout, f"nvidia-smi inside {service}: {result.stderr}"


def test_network_exists(target):
    result = target.run("docker network inspect --format '{{.Driver}}' %s", NETWORK)
    assert result.rc == 0, f"no Docker network {NETWORK}"
    assert result.stdout.strip() == "bridge"


@pytest.mark.parametrize("service", ALL, ids=_ids(ALL))
def test_network_holds_container(target, service):
    target.require_running(service)
    result = target.run("docker inspect --format '{{json .NetworkSettings.Networks}}' %s", service)
    assert NETWORK in json.loads(result.stdout or "{}"), f"{service} is not on the {NETWORK} network"


# -- host ports --------------------------------------------------------------------------------
def test_tailscale_ip_on_the_host(target):
    """The host has a Tailscale IPv4 (read from it); a configured HOMELAB_TAILSCALE_IP must be that one."""
    address = target.tailscale_ip
    assert address, "no Tailscale IPv4 on the host (`tailscale ip -4`, `ip -4 addr show dev tailscale0`)"
    configured = target.settings.tailscale_ip
    if configured is not None:
        assert str(configured) == address, (
            f"HOMELAB_TAILSCALE_IP is {configured}, but the host's Tailscale address is {address}"
        )


def test_nothing_listens_on_every_interface_but_sshd(target):
    """Nothing listens on 0.0.0.0, :: or * but sshd (and tailscaled's WireGuard port, a DHCP client):
    every service port is bound to the Tailscale IP or stays on the Docker network."""
    found = wildcard_listeners(_sockets(target))
    assert not found, f"listening on every interface: {found}"


def test_sshd_takes_no_passwords_and_no_root_password(target, settings):
    """sshd's effective settings (``sshd -T``, drop-ins included) are the hardened ones: no password
    logins, root by key only or not at all, as HOMELAB_SSH_* and the deploy's own login ask."""
    expected = sshd_expected(settings.ssh_password_logins, settings.ssh_root_login.value, target.login_user,
                             target.login_password)
    if not expected:
        pytest.skip("HOMELAB_SSH_PASSWORD_LOGINS and HOMELAB_SSH_ROOT_LOGIN leave sshd as the host has it")
    result = target.read("sshd -T")
    assert result.rc == 0, f"sshd -T failed: {result.stderr.strip()}"
    found = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert {key: found.get(key) for key in expected} == expected


@pytest.mark.parametrize(("service", "port"), HOST_PORTS, ids=[p.replace("/", "-") for _, p in HOST_PORTS])
def test_host_port_on_tailscale_ip_only(target, service, port):
    target.require_running(service)
    address = target.tailscale_ip
    assert address, "the host's Tailscale IP is unknown"
    number, protocol = port.split("/")
    bound = sorted(
        s["address"] for s in _sockets(target) if s["port"] == int(number) and s["proto"] == protocol
    )
    assert bound == [address], f"{port} is bound on {bound or 'nothing'}, not only on {address}"


@pytest.mark.parametrize("service", ALL, ids=_ids(ALL))
def test_nothing_else_published(target, service):
    """Ports other than the host ports stay on the Docker network (or, where the proxy runs on
    another host, are published on the Tailscale IP only)."""
    container = target.require_running(service)
    host_ports = set(HOST_PORTS_BY_SERVICE.get(service, []))
    allowed_ip = target.tailscale_ip if target.proxy_elsewhere else None
    extra = [
        f"{binding.get('HostIp') or '0.0.0.0'}:{binding.get('HostPort')}->{inside}"
        for inside, bindings in container["ports"].items()
        if inside not in host_ports
        for binding in bindings or []
        if binding.get("HostIp") != allowed_ip
    ]
    assert not extra, f"{service} publishes {extra}"


# -- answers -----------------------------------------------------------------------------------
def test_pihole_answers_dns(target):
    target.require_running(PIHOLE)
    name = f"hole.{target.settings.domain}"
    rcode, addresses = _dns(target, name, target.tailscale_ip)
    assert rcode == 0 and addresses, f"{name} @{target.tailscale_ip}: rcode {rcode}, answers {addresses}"


@pytest.mark.parametrize(("subdomain", "service"), SUBDOMAINS.items(), ids=list(SUBDOMAINS))
def test_subdomain_points_at_proxy(target, subdomain, service):
    target.require_running(PIHOLE)
    if service not in target.settings.services:
        pytest.skip(f"{service} is not enabled")
    if not target.proxy_ip:
        pytest.skip("no host of the inventory runs NGINX Proxy Manager with a known Tailscale IP")
    name = f"{subdomain}.{target.settings.domain}"
    _, addresses = _dns(target, name, target.tailscale_ip)
    assert addresses == [target.proxy_ip], f"{name} resolves to {addresses}, not the proxy {target.proxy_ip}"


def _https_target(target, subdomain: str, service: str) -> str:
    """The subdomain's name when HTTPS is on and its service and proxy are deployed; else a skip."""
    if str(target.settings.tls) != "dns":
        pytest.skip("HTTPS is off (HOMELAB_TLS=off): the subdomains are plain HTTP")
    if service not in target.settings.services:
        pytest.skip(f"{service} is not enabled")
    if not target.proxy_ip:
        pytest.skip("no host of the inventory runs NGINX Proxy Manager with a known Tailscale IP")
    if target.read("command -v python3").rc != 0:
        pytest.skip("no python3 on the host to check the certificate with")
    return f"{subdomain}.{target.settings.domain}"


@pytest.mark.parametrize(("subdomain", "service"), SUBDOMAINS.items(), ids=list(SUBDOMAINS))
def test_subdomain_serves_the_wildcard_over_https_with_a_valid_chain(target, subdomain, service):
    """Asked from the host at the proxy's Tailscale IP with the name a browser sends: the chain must
    verify (against the system's roots, or HOMELAB_TLS_CA_FILE's for a private ACME server), the
    certificate must be the wildcard for the domain and not expired; under 21 days left is a warning."""
    import time

    name = _https_target(target, subdomain, service)
    ca_file = target.settings.tls_ca_file
    roots = ca_file.read_text() if ca_file is not None else ""
    answer = _with_stdin(target, f"python3 -c {shlex.quote(TLS_PROBE)} {name} {target.proxy_ip} {HTTPS_PORT}",
                         roots)
    failures, warned = certificate_problems(json.loads(answer), name, target.settings.domain, time.time())
    for line in warned:
        warnings.warn(f"{target.short_name}: {line}", stacklevel=1)
    assert not failures, "; ".join(failures)


@pytest.mark.parametrize(("subdomain", "service"), SUBDOMAINS.items(), ids=list(SUBDOMAINS))
def test_plain_http_redirects_to_https(target, subdomain, service):
    name = _https_target(target, subdomain, service)
    if not target.settings.tls_force_ssl:
        pytest.skip("HOMELAB_TLS_FORCE_SSL=false: plain HTTP is served as well")
    result = target.run("curl -sS --max-time 10 -o /dev/null -w '%%{http_code} %%{redirect_url}' "
                        "--resolve %s http://%s/homelab-verify", f"{name}:80:{target.proxy_ip}", name)
    code, _, location = result.stdout.partition(" ")
    assert code in ("301", "308") and location == f"https://{name}/homelab-verify", (
        f"http://{name}/ answers {result.stdout!r} {result.stderr.strip()}, not a redirect to https")


def test_npm_api_answers(target):
    target.require_running(NPM)
    url = f"http://{target.tailscale_ip}:{NPM_API_PORT}/api/"
    result = target.run("curl -fsS --max-time 10 %s", url)
    assert result.rc == 0, f"{url}: {result.stderr.strip()}"
    assert json.loads(result.stdout).get("status") == "OK", result.stdout


def _with_stdin(target, command: str, data: str, privileged: bool = False) -> str:
    """Run ``command`` on the host over the suite's own SSH connection, ``data`` on its stdin: how a
    secret reaches curl without appearing in any command line (or in ``ps`` on the host).
    ``privileged``: through sudo as the suite's other commands run (``docker`` needs root)."""
    shown = command
    if privileged:
        command = target.host.backend.get_command(command)
    stdin, stdout, stderr = target.host.backend.client.exec_command(command, timeout=30)
    stdin.write(data)
    stdin.channel.shutdown_write()
    out, err = stdout.read().decode(), stderr.read().decode()
    assert stdout.channel.recv_exit_status() == 0, f"{shown.split(' http')[0]} …: {err.strip()[-300:]}"
    return out


def test_npm_proxy_hosts_accepted_by_nginx(target):
    """Every proxy host the deploy manages (meta.managed_by homelab-pyinfra) or that holds one of the
    service subdomains runs in nginx: NPM answers 2xx even when nginx rejected a host's config, and
    only ``meta.nginx_online`` tells. Asked from the host, logged in as the configured admin."""
    target.require_running(NPM)
    settings = target.settings
    if not settings.npm_admin_email or settings.npm_admin_password is None:
        pytest.skip("no NPM admin credentials in the settings")
    api = f"http://{target.tailscale_ip}:{NPM_API_PORT}/api"
    login = json.dumps(
        {"identity": settings.npm_admin_email, "secret": settings.npm_admin_password.get_secret_value()}
    )
    curl = "curl -sS --fail-with-body --max-time 10"
    json_body = "-H 'Content-Type: application/json' --data-binary @-"
    answer = _with_stdin(target, f"{curl} {json_body} {api}/tokens", login)
    token = json.loads(answer)["token"]
    listing = _with_stdin(target, f"{curl} -H @- {api}/nginx/proxy-hosts", f"Authorization: Bearer {token}\n")
    names = [f"{sub}.{settings.domain}" for sub in SUBDOMAINS]
    rejected = proxy_hosts_nginx_rejected(json.loads(listing), names)
    assert not rejected, "proxy hosts nginx does not run: " + "; ".join(rejected)


def test_open_webui_admin_signs_in_and_nobody_can_sign_up(target):
    """The configured account is Open WebUI's admin, and public sign-up is closed: a stranger who
    reaches the service cannot make an account (the first one would be an admin)."""
    target.require_running("open-webui")
    settings = target.settings
    if not settings.open_webui_admin_email or settings.open_webui_admin_password is None:
        pytest.skip("no Open WebUI admin credentials in the settings")
    curl = ("docker exec -i open-webui curl -sS --max-time 10 -H 'Content-Type: application/json' "
            "--data-binary @- -w '\\n%{http_code}'")
    login = json.dumps({"email": settings.open_webui_admin_email,
                        "password": settings.open_webui_admin_password.get_secret_value()})
    answer = _with_stdin(target, f"{curl} {OPEN_WEBUI_API}/signin", login, privileged=True)
    body, status = answer.rsplit("\n", 1)
    assert status == "200", f"the admin does not sign in: {status} {body[:300]}"
    assert json.loads(body).get("role") == "admin", f"{settings.open_webui_admin_email} is not an admin"
    stranger = json.dumps({"name": "Stranger", "email": "stranger@verify.invalid",
                           "password": "not-an-admin-1"})
    answer = _with_stdin(target, f"{curl} {OPEN_WEBUI_API}/signup", stranger, privileged=True)
    body, status = answer.rsplit("\n", 1)
    assert status == str(OPEN_WEBUI_SIGNUP_CLOSED), f"sign-up is open: {status} {body[:300]}"


@pytest.mark.parametrize("service", list(UPSTREAMS), ids=_ids(UPSTREAMS))
def test_answers_on_docker_network(target, service):
    target.require_running(service)
    if not target.placed(NPM):
        pytest.skip("no NGINX Proxy Manager on this host to ask from")
    target.require_running(NPM)
    port, path = UPSTREAMS[service]
    url = f"http://{service}:{port}{path}"
    result = target.run("docker exec nginx-proxy-manager curl -fsS --max-time 10 -o /dev/null %s", url)
    assert result.rc == 0, f"{url} from nginx-proxy-manager: {result.stderr.strip()}"


# -- files and firewall ------------------------------------------------------------------------
@pytest.mark.parametrize(("service", "folder"), VOLUMES, ids=[f"{s}:{f}" for s, f in VOLUMES])
def test_storage_path(target, service, folder):
    target.require_placed(service)
    path = target.settings.cold_storage_path / folder
    folder = target.host.file(str(path))
    assert folder.is_directory, f"{path} is missing"
    owner, group = DATA_OWNER.split(":")
    assert (folder.user, folder.group) == (owner, group), f"{path} belongs to {folder.user}:{folder.group}"


@pytest.mark.parametrize("service", ALL, ids=_ids(ALL))
def test_env_file_0600(target, service):
    target.require_placed(service)
    directory = f"{PROJECTS_ROOT}/{service}"
    env_file, *others = PRIVATE_FILES
    env = target.host.file(f"{directory}/{env_file}")
    assert env.is_file, f"{directory}/{env_file} is missing"
    assert env.mode == 0o600, f"{directory}/{env_file} has mode {env.mode:o}"
    for name in others:
        secret = target.host.file(f"{directory}/{name}")
        if secret.exists:
            assert secret.mode == 0o600, f"{directory}/{name} has mode {secret.mode:o}"


def _zone(target) -> tuple[dict, dict]:
    fact = FirewalldZones()
    result = target.read(fact.command)
    zones = fact.process(result.stdout.splitlines())
    assert zones["running"], "firewalld is not running"
    runtime, permanent = zones["zones"].get(ZONE), zones["permanent"].get(ZONE)
    assert runtime is not None and permanent is not None, f"no firewalld zone {ZONE}"
    return runtime, permanent


def _networks(values) -> set:
    return {ipaddress.ip_network(str(value), strict=False) for value in values}


def test_firewall_zone_sources(target):
    """The zone admits the allowed Tailscale addresses, and not the Docker subnet: as a source of this
    zone it would take the containers' traffic out of Docker's own zone and cut them off the world."""
    result = target.run(
        "docker network inspect --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}' %s", NETWORK
    )
    assert result.rc == 0, f"no Docker network {NETWORK}"
    docker_subnets = _networks(result.stdout.split())
    wanted = _networks(target.settings.tailscale_allowed_ips)
    for kind, zone in zip(("runtime", "permanent"), _zone(target), strict=True):
        assert not _networks(zone["sources"]) & docker_subnets, (
            f"{kind} sources {zone['sources']} hold the Docker subnet: containers cannot reach the world"
        )
        assert _networks(zone["sources"]) == wanted, f"{kind} sources {zone['sources']}"


def _ssh_port(target) -> int:
    """The port sshd answers this session on, as the host sees it (behind a forwarded port too)."""
    fact = SshConnection()
    found = fact.process(target.read(fact.command).stdout.splitlines())
    assert found is not None, "cannot tell which port this SSH session uses (no SSH_CONNECTION)"
    return int(found["server_port"])


def test_firewall_zone_ports_and_services(target):
    """Ports: NGINX Proxy Manager's 80/443/81 tcp and Pi-hole's 53 tcp+udp, where they are placed, and
    sshd's own port when it is not 22 (tests/verify/host_rules.py); service: ssh. Nothing else."""
    wanted_ports = _zone_ports_of(target)
    wanted_ports += [p for p in expected_ssh_port(_ssh_port(target)) if p not in wanted_ports]
    for kind, zone in zip(("runtime", "permanent"), _zone(target), strict=True):
        assert sorted(zone["ports"]) == sorted(wanted_ports), f"{kind} ports {zone['ports']}"
        assert sorted(zone["services"]) == sorted(ZONE_SERVICES), f"{kind} services {zone['services']}"


def test_ssh_over_the_tailnet_only(target):
    """With HOMELAB_SSH_TAILNET_ONLY: no zone but the tailnet's (and Docker's) that handles other traffic
    admits SSH, runtime or permanent, and the tailnet's does (its ssh service, or sshd's port)."""
    if not target.settings.ssh_tailnet_only:
        pytest.skip("HOMELAB_SSH_TAILNET_ONLY is off: SSH is admitted as the zones have it")
    port = _ssh_port(target)
    fact = FirewalldZones()
    zones = fact.process(target.read(fact.command).stdout.splitlines())
    assert zones["running"], "firewalld is not running"
    tailnet = [str(network) for network in target.settings.tailscale_allowed_ips]
    for kind in ("zones", "permanent"):
        elsewhere = zones_admitting_ssh_elsewhere(zones[kind], zones["default_zone"], tailnet, port)
        assert not elsewhere, f"{kind}: SSH still admitted outside the tailnet by {'; '.join(elsewhere)}"
        own = zones[kind].get(ZONE) or {}
        assert ("ssh" in own.get("services", []) and port == 22) or f"{port}/tcp" in own.get("ports", []), (
            f"{kind}: zone {ZONE} does not admit SSH on port {port}")


def test_cold_storage_exists(target, settings):
    assert target.host.file(str(settings.cold_storage_path)).is_directory



# -- the world and the tailnet -------------------------------------------------------------------
# from inside a container: bash's /dev/tcp, else python3 (every service image has one of them)
CONNECT = (
    "timeout 8 bash -c 'exec 3<>/dev/tcp/$0/$1' %s %s 2>/dev/null || "
    "python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 8)' %s %s"
)


@pytest.mark.parametrize("service", ALL, ids=_ids(ALL))
def test_container_reaches_the_world(target, egress_target, service):
    """Each container opens a TCP connection to an address outside its host (by default the first
    upstream DNS server of Pi-hole, port 53: a real server's containers need the world)."""
    target.require_running(service)
    address, port = egress_target
    result = target.run(f"docker exec {service} sh -c %s", CONNECT % (address, port, address, port))
    assert result.rc == 0, f"{service} cannot connect to {address}:{port}: {result.stderr.strip()[-300:]}"


# the deploy's table for the published ports, as `nft list table` prints it
PUBLISHED_PORTS_TABLE = "inet homelab_published_ports"


def _guarded_ports(listing: str, address: str) -> set[tuple[int, str]]:
    found = set()
    for protocol, ports in re.findall(
        rf"ip daddr {re.escape(address)} (tcp|udp) dport (\{{[^}}]*\}}|\d+) jump tailnet_only", listing
    ):
        found |= {(int(port), protocol) for port in re.findall(r"\d+", ports)}
    return found


def _zone_ports_of(target) -> list[str]:
    return expected_zone_ports(target.services, target.proxy_elsewhere, target.watched_from_elsewhere,
                               target.proxies_elsewhere)


def test_published_ports_answer_the_tailnet_only(target):
    """Every port published on the Tailscale IP is guarded before Docker's DNAT: it passes from the
    tailscale0 interface (allowed sources), the Docker network or loopback; anything else is dropped.
    The ports are the zone's, stated in tests/verify/host_rules.py; the address is the one read from
    the host (as every host-port test uses)."""
    wanted = {
        (int(number), protocol)
        for number, protocol in (
            port.split("/") for port in _zone_ports_of(target)
        )
    }
    if not wanted:
        pytest.skip("no service publishes a port on this host")
    address = target.tailscale_ip
    assert address, "the host's Tailscale IP is unknown"
    result = target.read(f"nft list table {PUBLISHED_PORTS_TABLE}")
    assert result.rc == 0, f"no nftables table {PUBLISHED_PORTS_TABLE}: {result.stderr.strip()}"
    listing = result.stdout
    assert "hook prerouting priority dstnat - 10; policy accept;" in listing, listing
    missing = wanted - _guarded_ports(listing, address)
    assert not missing, f"published ports not kept to the tailnet: {sorted(missing)}"
    rules = re.search(r"chain tailnet_only \{(.*?)\}", listing, re.S)
    assert rules, listing
    lines = [line.strip() for line in rules.group(1).strip().splitlines()]
    assert 'iifname "tailscale0" ip saddr @tailnet_sources accept' in lines, lines
    assert lines[-1].endswith("drop"), lines


def test_backup_timer_enabled_and_last_backup_recent(target, settings):
    """Where a backup repository is configured: the timer is enabled and waiting, and the last good
    backup is younger than HOMELAB_BACKUP_MAX_AGE_HOURS."""
    if not settings.backups:
        pytest.skip("no HOMELAB_BACKUP_REPOSITORY: backups are not configured")
    timer = target.host.service(BACKUP_TIMER)
    assert timer.is_enabled, f"{BACKUP_TIMER} is not enabled"
    assert timer.is_running, f"{BACKUP_TIMER} is not active"
    now = int(target.run("date +%s").stdout.strip())
    last = target.run(f"cat {BACKUP_LAST_SUCCESS} 2>/dev/null").stdout
    problem = backup_age_problem(now, last, settings.backup_max_age_hours)
    assert problem is None, problem


# -- models ------------------------------------------------------------------------------------
def test_configured_ollama_models_are_listed_by_ollama(target, settings):
    """Every model of HOMELAB_OLLAMA_MODELS is one `ollama list` shows (by the rule in host_rules.py)."""
    if not settings.ollama_models:
        pytest.skip("no HOMELAB_OLLAMA_MODELS")
    target.require_running("ollama")
    result = target.run("docker exec ollama ollama list")
    assert result.rc == 0, f"ollama list: {result.stderr.strip()[-300:]}"
    missing = models_not_listed(settings.ollama_models, ollama_list_names(result.stdout))
    assert not missing, f"not listed by Ollama: {missing}\n{result.stdout}"


def test_comfyui_files_present_with_their_sha256(target, settings):
    """Every file of HOMELAB_COMFYUI_MODELS is in ComfyUI's models folder and holds the configured sum."""
    if not settings.comfyui_models:
        pytest.skip("no HOMELAB_COMFYUI_MODELS")
    target.require_placed("comfyui")
    wrong = []
    for item in settings.comfyui_models:
        path = f"{settings.cold_storage_path}/{COMFYUI_MODELS_FOLDER}/{item.folder}/{item.filename}"
        result = target.run("sha256sum %s", path)
        found = result.stdout.split()[0] if result.rc == 0 and result.stdout else "missing"
        if found != item.sha256:
            wrong.append(f"{path}: {found} (expected {item.sha256}, from {item.url})")
    assert not wrong, "; ".join(wrong)


# -- security updates ------------------------------------------------------------------------------
def _manager(target) -> str:
    return "apt" if target.read("command -v apt-get").rc == 0 else "dnf"


def test_automatic_updates_take_security_updates_only(target, settings):
    """unattended-upgrades allows the security suites only and apt runs it daily (Debian, Ubuntu);
    dnf-automatic applies updates of type security (Fedora, RHEL); the timer that runs it is enabled."""
    if not settings.security_updates:
        pytest.skip("HOMELAB_SECURITY_UPDATES=false: automatic updates are not managed")
    if _manager(target) == "apt":
        assert target.host.package("unattended-upgrades").is_installed, "unattended-upgrades is not installed"
        dump = target.read("apt-config dump").stdout
        wrong = not_security_origins(dump)
        assert wrong == [], f"unattended-upgrades takes more than security updates: {wrong}"
        assert apt_config_values(dump, "APT::Periodic::Unattended-Upgrade") == ["1"], "not run daily"
        timer = target.host.service(APT_UPGRADE_TIMER)
    else:
        config = configparser.ConfigParser()
        config.read_string(target.run("cat %s", DNF_AUTOMATIC_CONF).stdout)
        assert config.get("commands", "upgrade_type", fallback="default") == "security"
        assert config.get("commands", "apply_updates", fallback="no").lower() in ("yes", "true", "1")
        timer = target.host.service(DNF_AUTOMATIC_TIMER)
    assert timer.is_enabled, f"{timer.name} is not enabled"


def test_reboot_policy_as_configured(target, settings):
    """HOMELAB_REBOOT: never, or a reboot at that time when an update needs one."""
    if not settings.security_updates:
        pytest.skip("HOMELAB_SECURITY_UPDATES=false: automatic updates are not managed")
    if _manager(target) == "apt":
        dump = target.read("apt-config dump").stdout
        reboot = apt_config_values(dump, "Unattended-Upgrade::Automatic-Reboot") or ["false"]
        at = apt_config_values(dump, "Unattended-Upgrade::Automatic-Reboot-Time")
        if settings.reboot == "never":
            assert reboot == ["false"], reboot
        else:
            assert (reboot, at) == (["true"], [settings.reboot]), (reboot, at)
    else:
        config = configparser.ConfigParser()
        config.read_string(target.run("cat %s", DNF_AUTOMATIC_CONF).stdout)
        wanted = "never" if settings.reboot == "never" else "when-needed"
        assert config.get("commands", "reboot", fallback="never") == wanted


def _updates(target) -> dict:
    fact = AutomaticUpdates()
    return fact.process(target.read(fact.command(manager=_manager(target))).stdout.splitlines())


def test_engine_toolkit_and_driver_are_held(target, settings):
    """The Docker engine, the NVIDIA container toolkit and the NVIDIA driver, where installed, are held
    at their versions (apt-mark showhold / dnf versionlock list)."""
    if not settings.hold_packages:
        pytest.skip("HOMELAB_HOLD_PACKAGES=false: holds are not managed")
    if _manager(target) == "apt":
        listing = target.read("dpkg-query -W -f='${db:Status-Abbrev} ${Package}\\n'").stdout
        installed = [line.split()[1] for line in listing.splitlines() if line.startswith("ii")]
    else:
        installed = target.run("rpm -qa --qf '%{NAME}\\n'").stdout.split()
    held = _updates(target)["held"]
    missing = not_held(installed, held)
    assert not missing, f"installed, not held: {missing} (held: {held})"


def test_report_pending_security_updates_and_reboot(target, settings):
    """Reported, not failed: the security updates pending (installed by the next automatic run) and a
    pending reboot (HOMELAB_REBOOT=never leaves it to you)."""
    updates = _updates(target)
    pending = updates["security"]
    if pending:
        warnings.warn(f"{target.short_name}: {len(pending)} security update(s) pending: {', '.join(pending)}",
                      stacklevel=1)
    if updates["reboot_required"]:
        warnings.warn(f"{target.short_name}: a reboot is pending (HOMELAB_REBOOT={settings.reboot})",
                      stacklevel=1)
    if pending is None:
        warnings.warn(f"{target.short_name}: pending security updates unknown (no package lists / metadata "
                      "cache yet)", stacklevel=1)


# -- monitoring (HOMELAB_MONITORING) -----------------------------------------------------------------
def _require_monitoring(target) -> None:
    if not target.settings.monitoring:
        pytest.skip("HOMELAB_MONITORING is off")


def _prometheus(target, path: str) -> dict:
    result = target.run(f"docker exec prometheus wget -qO- '{PROMETHEUS_API}/{path}'")
    assert result.rc == 0, f"Prometheus's {path}: {result.stderr.strip()}"
    return json.loads(result.stdout)


def test_host_metrics_are_written_for_the_node_exporter(target):
    """Every host of the monitoring set: the metrics timer runs, its file is fresh and says each
    container placed here runs."""
    _require_monitoring(target)
    timer = target.host.service(HOST_METRICS_TIMER)
    assert timer.is_enabled and timer.is_running, f"{HOST_METRICS_TIMER} is not enabled and active"
    age = target.run(f"echo $(( $(date +%s) - $(stat -c %Y {HOST_METRICS_FILE}) ))")
    assert age.rc == 0 and int(age.stdout) <= HOST_METRICS_MAX_AGE, f"{HOST_METRICS_FILE}: {age.stdout}"
    running = host_metric_names(target.run(f"cat {HOST_METRICS_FILE}").stdout)
    wrong = {service: running.get(service) for service in target.services if running.get(service) != 1}
    assert not wrong, f"{HOST_METRICS_FILE} does not say these run: {wrong}"


def test_prometheus_scrapes_every_host_and_every_target_is_up(target):
    """Where Prometheus runs: it scrapes each service of the set on each inventory host (a job per
    service, labelled with the host), and every target it has is up (waiting up to 90 s for the first
    scrapes after a deploy)."""
    _require_monitoring(target)
    target.require_placed("prometheus")
    target.require_running("prometheus")
    plans = target.plans
    assert plans is not None
    expected = {(service, name) for name in plans.members for service in plans.runs(name)
                if service in SCRAPED}
    deadline = time.monotonic() + 90
    while True:
        problems = target_problems(_prometheus(target, "targets"), expected)
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert not problems, "; ".join(problems)


def test_no_alert_is_firing(target):
    """No alert fires (one whose condition has just cleared, e.g. after a deploy restarted something,
    is given up to 60 s: the next rule evaluations resolve it)."""
    _require_monitoring(target)
    target.require_placed("prometheus")
    target.require_running("prometheus")
    deadline = time.monotonic() + 60
    while (firing := firing_alerts(_prometheus(target, "alerts"))) and time.monotonic() < deadline:
        time.sleep(5)
    assert not firing, "firing: " + "; ".join(firing)


def test_grafana_has_its_prometheus_data_source_and_dashboards(target):
    _require_monitoring(target)
    target.require_placed("grafana")
    target.require_running("grafana")
    password = target.settings.grafana_admin_password
    if password is None:
        pytest.skip("no HOMELAB_GRAFANA_ADMIN_PASSWORD in the settings")
    networks = "'{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}'"
    address = target.run(f"docker inspect --format {networks} grafana").stdout.split()[0]
    command = f"python3 -c {shlex.quote(GRAFANA_PROBE)} {address}:{GRAFANA_PORT} {GRAFANA_ADMIN}"
    found = json.loads(_with_stdin(target, command, password.get_secret_value()))
    assert [d.get("type") for d in found["datasources"]] == ["prometheus"], found["datasources"]
    uids = sorted(d.get("uid") for d in found["dashboards"])
    assert uids == sorted(GRAFANA_DASHBOARDS), found["dashboards"]
