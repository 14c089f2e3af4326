"""What a deployed host must look like, stated here rather than imported from the deploy code it checks.

Plain data and pure functions over fact output, so that they are unit-tested with canned outputs
(tests/unit/test_verify_host_rules.py) while tests/verify itself runs only against real hosts.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

import yaml

# the five services (as in HOMELAB_SERVICES); their containers keep these names
SERVICES = ("nginx-proxy-manager", "pihole", "ollama", "comfyui", "open-webui")
# the services that get the NVIDIA GPU where the host has one
GPU_SERVICES = ("ollama", "comfyui")
# the ports each service publishes on the host's Tailscale IP (and on nothing else)
HOST_PORTS_BY_SERVICE = {
    "nginx-proxy-manager": ["80/tcp", "443/tcp", "81/tcp"],
    "pihole": ["53/tcp", "53/udp"],
}
# NGINX Proxy Manager's API (its admin port)
NPM_API_PORT = 81
# where the AI services answer on the Docker network: port and the path of their health answer
UPSTREAMS = {
    "ollama": (11434, "/api/tags"), "comfyui": (8188, "/system_stats"), "open-webui": (8080, "/health"),
}
# subdomain -> the service it reaches through the proxy
SUBDOMAINS = {"chat": "open-webui", "ollama": "ollama", "comfy": "comfyui", "hole": "pihole"}
# the port the proxy forwards each subdomain's service to; a host whose proxy runs on another host
# publishes these on its Tailscale IP (and its zone opens them), since the proxy reaches them over the tailnet
PROXIED_PORTS = {"open-webui": "8080/tcp", "ollama": "11434/tcp", "comfyui": "8188/tcp", "pihole": "80/tcp"}
# Grafana runs on the monitoring host alone: every other host's proxy forwards grafana.<domain> to its port
# there, so it is published (and the zone opens it) wherever a proxy runs on another host
MONITORING_HOST_PROXIED_PORTS = {"grafana": "3000/tcp"}
# the exporters a host publishes on its Tailscale IP (and its zone opens) when Prometheus runs on another
# host and scrapes them over the tailnet; none where Prometheus runs on the host itself
EXPORTER_PORTS = {"node-exporter": "9100/tcp", "cadvisor": "9338/tcp", "dcgm-exporter": "9400/tcp"}
# the Docker network every container joins
NETWORK = "self-hosted"
# each service's compose project folder is <PROJECTS_ROOT>/<service>; these files in it hold secrets
# and must be 0600 (the .env always; Open WebUI's generated session secret where it exists)
PROJECTS_ROOT = "/opt/homelab"
PRIVATE_FILES = (".env", "webui-secret.env")
# beside compose.yaml: the image the service runs, pinned by digest (Docker Compose reads it with
# compose.yaml); `x-homelab-pin` names the image setting (`image`) and the exact image (`pinned`)
PIN_FILE = "compose.override.yaml"
# each service's data folders under the cold-storage path, and their owner
DATA_FOLDERS = {
    "nginx-proxy-manager": ["services/nginx-proxy/data", "services/nginx-proxy/certificates/letsencrypt"],
    "pihole": ["services/pihole/config", "services/pihole/logs"],
    "ollama": ["ai/ollama/models"],
    "comfyui": ["ai/comfyui/data", "ai/comfyui/models", "ai/comfyui/output", "ai/comfyui/input"],
    "open-webui": ["ai/open-webui/data"],
}
DATA_OWNER = "root:root"

# the firewalld zone of the Tailscale peers
ZONE = "self-hosted"
# its services: Tailscale peers may administer the host over SSH
ZONE_SERVICES = ["ssh"]
# its ports: exactly the ports published on the host (the host ports of the services placed there, and
# their proxied ports when the proxy runs on another host)
ZONE_PORTS_BY_SERVICE = HOST_PORTS_BY_SERVICE

# listening addresses that mean "every interface"
WILDCARDS = {"0.0.0.0", "::", "*"}  # noqa: S104 (addresses looked for, not bound)
# what may listen on every interface: sshd (how the host is reached), tailscaled's WireGuard UDP
# port (the tailnet itself: 41641 unless tailscaled --port says otherwise), and a DHCP client on
# its client ports (68, and 546 for DHCPv6), which serve nothing
WILDCARD_ALLOWED_PROCESSES = {"sshd": {"tcp"}, "tailscaled": {"udp"}}
DHCP_CLIENT_PORTS = {68, 546}


def expected_zone_ports(services: Iterable[str], proxy_elsewhere: bool = False,
                        watched_from_elsewhere: bool = False, proxies_elsewhere: bool = False) -> list[str]:
    """The zone's ports for the services placed on a host: NGINX Proxy Manager 80/443/81 tcp,
    Pi-hole 53 tcp and udp; none for the AI services (they stay on the Docker network) unless the
    proxy runs on another host: then every proxied service's port (Open WebUI 8080, Ollama 11434,
    ComfyUI 8188, Pi-hole's web 80), which that proxy reaches over the tailnet; Grafana's 3000 where any
    other host runs a proxy (``proxies_elsewhere``); the exporters' ports (node 9100, cAdvisor 9338, DCGM
    9400) where Prometheus runs on another host."""
    ports: list[str] = []
    for service in services:
        wanted = list(ZONE_PORTS_BY_SERVICE.get(str(service), []))
        if proxy_elsewhere and str(service) in PROXIED_PORTS:
            wanted.append(PROXIED_PORTS[str(service)])
        if watched_from_elsewhere and str(service) in EXPORTER_PORTS:
            wanted.append(EXPORTER_PORTS[str(service)])
        if (proxies_elsewhere or proxy_elsewhere) and str(service) in MONITORING_HOST_PROXIED_PORTS:
            wanted.append(MONITORING_HOST_PROXIED_PORTS[str(service)])
        for port in wanted:
            if port not in ports:
                ports.append(port)
    return ports


def wildcard_listeners(sockets: list[dict[str, Any]]) -> list[str]:
    """Sockets (facts.host.ListeningSockets) on 0.0.0.0, :: or * that are not allowed, as
    ``proto address:port (process)``; a socket whose process ``ss`` could not show is not allowed."""
    found = []
    for socket in sockets:
        if socket["address"] not in WILDCARDS:
            continue
        process, proto = socket.get("process"), socket["proto"]
        if proto in WILDCARD_ALLOWED_PROCESSES.get(process or "", set()):
            continue
        if proto == "udp" and socket["port"] in DHCP_CLIENT_PORTS:
            continue
        who = process or "process unknown: not root?"
        found.append(f"{proto} {socket['address']}:{socket['port']} ({who})")
    return found


# the mark the deploy puts on the NGINX Proxy Manager proxy hosts it owns (meta.managed_by)
NPM_MANAGED_BY = "homelab-pyinfra"


def proxy_hosts_nginx_rejected(hosts: Iterable[dict[str, Any]], names: Iterable[str]) -> list[str]:
    """One line per proxy host that nginx does not run (``meta.nginx_online`` not true: NPM's nginx
    rejected its config, or never wrote it) among those marked ``NPM_MANAGED_BY`` or holding one of
    ``names`` (case-insensitive): "#<id> <names>: <nginx's error on one line>"."""
    wanted = {name.lower() for name in names}
    found = []
    for host in hosts:
        meta = host.get("meta") or {}
        held = {name.lower() for name in host.get("domain_names") or []}
        if meta.get("managed_by") != NPM_MANAGED_BY and not held & wanted:
            continue
        if meta.get("nginx_online") is True:
            continue
        error = " ".join(str(meta.get("nginx_err") or "no config written").split())
        found.append(f"#{host.get('id')} {', '.join(host.get('domain_names') or [])}: {error}")
    return found

# backups (where HOMELAB_BACKUP_REPOSITORY is set): the timer that runs them, and the file the backup
# script writes (epoch seconds) when a backup has completed
BACKUP_TIMER = "homelab-backup.timer"
BACKUP_LAST_SUCCESS = "/var/lib/homelab-backup/last-success"


def backup_age_problem(now: int, last_success: str | None, max_age_hours: int) -> str | None:
    """Why the last good backup does not count as recent (``None`` when it does): it never completed,
    the file holds no time, or it is older than ``max_age_hours``."""
    text = (last_success or "").strip()
    if not text:
        return f"no backup has completed ({BACKUP_LAST_SUCCESS} is missing)"
    if not text.isdigit():
        return f"{BACKUP_LAST_SUCCESS} holds {text[:40]!r}, not epoch seconds"
    hours = (now - int(text)) / 3600
    if hours > max_age_hours:
        return f"the last good backup is {hours:.0f} h old (more than {max_age_hours} h)"
    return None

# Open WebUI's account API (asked inside its container, where curl is): the configured admin signs
# in as an admin; a stranger's sign-up is refused with 403 (sign-up closed), never made an account
OPEN_WEBUI_API = "http://localhost:8080/api/v1/auths"
OPEN_WEBUI_SIGNUP_CLOSED = 403

# the models (where HOMELAB_OLLAMA_MODELS / HOMELAB_COMFYUI_MODELS are set): Ollama lists a model by its
# shortest name, its registry and namespace left out where they are Ollama's defaults and its tag always
# shown (`llama3.2` is listed as `llama3.2:latest`); names compare without case
OLLAMA_DEFAULT_REGISTRY = "registry.ollama.ai"
OLLAMA_DEFAULT_NAMESPACE = "library"
OLLAMA_DEFAULT_TAG = "latest"
# ComfyUI's models folder under the cold-storage path: each configured file at <folder>/<file name>
COMFYUI_MODELS_FOLDER = "ai/comfyui/models"


def ollama_listed_name(configured: str) -> str:
    """How `ollama list` shows a configured model name (lower-case, for comparing)."""
    name = configured.strip().lower()
    if name.rfind(":") <= name.rfind("/"):
        name += f":{OLLAMA_DEFAULT_TAG}"
    name = name.removeprefix(f"{OLLAMA_DEFAULT_REGISTRY}/")
    if name.count("/") == 1:
        name = name.removeprefix(f"{OLLAMA_DEFAULT_NAMESPACE}/")
    return name


def ollama_list_names(output: str) -> list[str]:
    """The NAME column of `ollama list`."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines or lines[0].split()[0] != "NAME":
        return []
    return [line.split()[0] for line in lines[1:]]


def models_not_listed(configured: Iterable[str], listed: Iterable[str]) -> list[str]:
    """The configured models `ollama list` does not show."""
    shown = {name.lower() for name in listed}
    return [name for name in configured if ollama_listed_name(name) not in shown]


def image_pin(text: str) -> dict[str, str] | None:
    """The ``x-homelab-pin`` mapping of a pin file (``image``, ``pinned``), or None."""
    try:
        document = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        return None
    pin = document.get("x-homelab-pin") if isinstance(document, dict) else None
    return pin if isinstance(pin, dict) and {"image", "pinned"} <= set(pin) else None


def sshd_expected(password_logins: bool | None, root_login: str, login_user: str,
                  login_password: bool) -> dict[str, str]:
    """What ``sshd -T`` must print for the hardened settings (its keys, lower-case; ``prohibit-password``
    is printed ``without-password``), from HOMELAB_SSH_PASSWORD_LOGINS, HOMELAB_SSH_ROOT_LOGIN and how the
    deploy logs in. Password logins end unless asked for or the deploy itself logs in with one; root's
    login ends when the deploy logs in as someone else, and is keys-only when it logs in as root; a
    part left ``unchanged``, or one that would lock the deploy out, is not checked."""
    expected = {}
    if not password_logins and not login_password:
        expected |= {"passwordauthentication": "no", "kbdinteractiveauthentication": "no"}
    if root_login == "auto":
        root_login = "prohibit-password" if login_user == "root" else "no"
    if root_login == "prohibit-password" and not (login_user == "root" and login_password):
        expected["permitrootlogin"] = "without-password"
    elif root_login == "no" and login_user != "root":
        expected["permitrootlogin"] = "no"
    return expected
# each container's limits as Docker keeps them (one `docker inspect` for all): its state, HostConfig.Memory
# (bytes; 0: none), MemorySwap (memory + swap; equal to Memory: no swap) and NanoCpus (CPUs x 10^9; 0: none)
LIMITS_FORMAT = ("'{{json .Name}} {{.State.Status}} {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} "
                 "{{.HostConfig.NanoCpus}}'")
# compose keeps `cpus` as a 32-bit float: 0.1 CPU may arrive as 100000001 nano CPUs
NANO_CPUS_TOLERANCE = 10**6
# a kernel without swap accounting (cgroup v1 without swapaccount=1): Docker drops the swap limit, keeps -1
SWAP_LIMIT_DROPPED = -1


def container_limits(output: str) -> dict[str, dict[str, Any]]:
    """``docker inspect --format LIMITS_FORMAT`` lines: name -> state, memory, memory_swap, nano_cpus."""
    found = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) != 5 or not words[0].startswith('"'):
            continue
        name = words[0].strip('"').lstrip("/")
        try:
            memory, swap, nano = (int(word) for word in words[2:])
        except ValueError:
            continue
        found[name] = {"state": words[1], "memory": memory, "memory_swap": swap, "nano_cpus": nano}
    return found


def limit_mismatches(planned: dict[str, tuple[int, int]], found: dict[str, dict[str, Any]]) -> list[str]:
    """One line per running container whose limits are not the planned ones: ``planned`` maps a service
    to (memory bytes, nano CPUs), 0 for no limit; a memory limit must come without swap beyond it."""
    problems = []
    for service, (memory, nano) in planned.items():
        container = found.get(service)
        if container is None or container["state"] != "running":
            continue
        if container["memory"] != memory:
            problems.append(f"{service}: memory limit {container['memory']} bytes, planned {memory}")
        elif memory and container["memory_swap"] not in (memory, SWAP_LIMIT_DROPPED):
            problems.append(f"{service}: memory + swap limit {container['memory_swap']} bytes, planned "
                            f"{memory} (no swap)")
        if abs(container["nano_cpus"] - nano) > NANO_CPUS_TOLERANCE:
            problems.append(f"{service}: {container['nano_cpus'] / 1e9:g} CPUs, planned {nano / 1e9:g}")
    return problems


# automatic updates (where HOMELAB_SECURITY_UPDATES is on): unattended-upgrades takes packages from the
# security suites only (every origin it allows names one ending in -security), apt runs it daily; on
# dnf hosts dnf-automatic applies updates of type security; the timer that runs it is enabled
SECURITY_SUITE_SUFFIX = "-security"
APT_UPGRADE_TIMER = "apt-daily-upgrade.timer"
DNF_AUTOMATIC_CONF = "/etc/dnf/automatic.conf"
DNF_AUTOMATIC_TIMER = "dnf-automatic.timer"
# held at their installed versions where installed (HOMELAB_HOLD_PACKAGES): the Docker engine (either
# source), the NVIDIA container toolkit, and the NVIDIA driver (names starting with these)
HELD_PACKAGES = ("docker-ce", "docker-ce-cli", "containerd.io", "docker.io", "moby-engine", "containerd",
                 "runc", "nvidia-container-toolkit", "nvidia-container-toolkit-base",
                 "libnvidia-container-tools", "libnvidia-container1")
HELD_PREFIXES = ("nvidia-", "libnvidia-", "libcuda", "cuda-drivers", "xorg-x11-drv-nvidia",
                 "akmod-nvidia", "kmod-nvidia", "firmware-nvidia-")
# Fedora's linux-firmware subpackage, on every host: firmware, not the driver
NOT_HELD = ("nvidia-gpu-firmware",)


def apt_config_values(dump: str, key: str) -> list[str]:
    """The values `apt-config dump` shows for ``key`` (a list's entries are ``key::``), unquoted."""
    values = []
    for line in dump.splitlines():
        name, _, value = line.partition(" ")
        if name in (key, f"{key}::") and value.strip().rstrip(";").strip('"'):
            values.append(value.strip().rstrip(";").strip('"'))
    return values


def not_security_origins(dump: str) -> list[str]:
    """The origins unattended-upgrades would take packages from that are not a security suite; a
    configuration allowing nothing at all is reported too."""
    patterns = apt_config_values(dump, "Unattended-Upgrade::Origins-Pattern")
    allowed = apt_config_values(dump, "Unattended-Upgrade::Allowed-Origins")
    if not patterns and not allowed:
        return ["(no origin allowed at all)"]
    wrong = [p for p in patterns if not any(
        part.split("=", 1)[0] in ("codename", "archive", "a", "n", "suite")
        and part.split("=", 1)[1].endswith(SECURITY_SUITE_SUFFIX) for part in p.split(","))]
    wrong += [a for a in allowed if not a.rsplit(":", 1)[-1].endswith(SECURITY_SUITE_SUFFIX)]
    return wrong


def not_held(installed: list[str], held: list[str]) -> list[str]:
    """Installed packages that should be held (HELD_PACKAGES, HELD_PREFIXES) and are not."""
    wanted = [name for name in installed if name in HELD_PACKAGES
              or (name.startswith(HELD_PREFIXES) and name not in NOT_HELD)]
    return sorted(set(wanted) - set(held))


# every one of the five runs with a memory limit below the host's memory and no swap beyond it, unless
# HOMELAB_LIMITS lifts that service's memory limit (`none`); a limit at or above the host's memory
# limits nothing
MEMORY_LIMITED = SERVICES


def limit_safety_problems(found: dict[str, dict[str, Any]], host_memory: int | None,
                          lifted: Iterable[str]) -> list[str]:
    """One line per running container of MEMORY_LIMITED that breaks the rule above (``found``: as
    :func:`container_limits` reads them; ``lifted``: the services whose memory limit the settings lift)."""
    problems = []
    for service in MEMORY_LIMITED:
        container = found.get(service)
        if container is None or container["state"] != "running" or service in lifted:
            continue
        memory = container["memory"]
        if memory <= 0:
            problems.append(f"{service}: runs without a memory limit")
        elif host_memory is not None and memory >= host_memory:
            problems.append(f"{service}: memory limit {memory} bytes is not below the host's {host_memory}")
        elif container["memory_swap"] not in (memory, SWAP_LIMIT_DROPPED):
            problems.append(f"{service}: may swap beyond its memory limit ({container['memory_swap']} bytes)")
    return problems


# -- HTTPS (HOMELAB_TLS=dns) -------------------------------------------------------------------------
HTTPS_PORT = 443
# a certificate closer than this to its expiry is reported (NPM renews 30 days before)
CERTIFICATE_WARN_DAYS = 21
# Run on the host with its python3 (argv: server name, address, port; the roots to trust on stdin, or
# nothing for the system's): the TLS handshake with the chain and the name verified, as a browser does.
# Prints JSON: {"verified": true, "names": [...], "not_after": "..."} or {"verified": false, "error": "..."}
TLS_PROBE = r"""
import json, socket, ssl, sys
name, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
roots = sys.stdin.read()
context = ssl.create_default_context(cadata=roots) if roots.strip() else ssl.create_default_context()
try:
    with socket.create_connection((address, port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            cert = tls.getpeercert()
    names = [value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"]
    print(json.dumps({"verified": True, "names": names, "not_after": cert["notAfter"]}))
except ssl.SSLCertVerificationError as error:
    print(json.dumps({"verified": False, "error": error.verify_message or str(error)}))
except (OSError, ssl.SSLError) as error:
    print(json.dumps({"verified": False, "error": f"{type(error).__name__}: {error}"}))
"""


def certificate_problems(probe: dict[str, Any], name: str, domain: str,
                         now: float) -> tuple[list[str], list[str]]:
    """What is wrong with the certificate ``name`` is served with (``probe``: TLS_PROBE's answer), as
    (failures, warnings): a chain or name that does not verify, a certificate other than the wildcard
    ``*.<domain>`` + ``<domain>``, one that has expired (failures) or expires within
    CERTIFICATE_WARN_DAYS (a warning)."""
    import ssl

    if not probe.get("verified"):
        return [f"https://{name}/ does not verify: {probe.get('error', 'no answer')}"], []
    failures, warnings = [], []
    names = {n.lower() for n in probe.get("names", [])}
    wanted = {f"*.{domain}".lower(), domain.lower()}
    if not wanted <= names:
        failures.append(f"https://{name}/ serves another certificate than the wildcard "
                        f"(names {sorted(names)}, expected {sorted(wanted)})")
    days = (ssl.cert_time_to_seconds(probe["not_after"]) - now) / 86400
    if days < 0:
        failures.append(f"https://{name}/: the certificate expired on {probe['not_after']}")
    elif days < CERTIFICATE_WARN_DAYS:
        warnings.append(f"https://{name}/: the certificate expires in {days:.0f} days "
                        f"({probe['not_after']}); NPM renews 30 days before: check its certbot log")
    return failures, warnings


# with HOMELAB_SSH_TAILNET_ONLY: the zones that may still admit SSH (the tailnet's, and Docker's own zone,
# which holds the container bridges only)
SSH_ZONES = (ZONE, "docker")


def expected_ssh_port(ssh_port: int) -> list[str]:
    """The zone's port for sshd itself: ``<port>/tcp`` when sshd answers on a port other than 22 (the
    ``ssh`` service is port 22 only), so that tailnet peers reach it; none otherwise."""
    return [f"{ssh_port}/tcp"] if ssh_port != 22 else []


def _inside(value: str, tailnet: list[str]) -> bool:
    try:
        source = ipaddress.ip_network(value, strict=False)
    except ValueError:  # a MAC address or an ipset
        return False
    return any(source.version == n.version and source.subnet_of(n)
               for n in (ipaddress.ip_network(t, strict=False) for t in tailnet))


def zones_admitting_ssh_elsewhere(zones: dict[str, dict[str, Any]], default_zone: str | None,
                                  tailnet: list[str], ssh_port: int) -> list[str]:
    """With HOMELAB_SSH_TAILNET_ONLY: every zone but ``SSH_ZONES`` that handles traffic from outside the
    tailnet (it holds an interface, a source outside ``tailnet``, or is the default zone) and still admits
    SSH (target ACCEPT, the ``ssh`` service, ``<ssh_port>/tcp``, ``22/tcp`` or a range holding one), as
    ``zone (what)``."""
    found = []
    for name, zone in zones.items():
        if name in SSH_ZONES:
            continue
        handles = (name == default_zone or zone.get("default") or zone.get("interfaces")
                   or any(not _inside(s, tailnet) for s in zone.get("sources", [])))
        if not handles:
            continue
        what = []
        if zone.get("target") == "ACCEPT":
            what.append("target ACCEPT")
        if "ssh" in zone.get("services", []):
            what.append("service ssh")
        for spec in zone.get("ports", []):
            number, _, proto = spec.partition("/")
            low, _, high = number.partition("-")
            if proto == "tcp" and any(int(low) <= p <= int(high or low) for p in {ssh_port, 22}):
                what.append(spec)
        if what:
            found.append(f"{name} ({', '.join(what)})")
    return found


# -- monitoring (HOMELAB_MONITORING) ----------------------------------------------------------------
# the services of the monitoring set: on the monitoring host only, and on every host (the DCGM exporter
# where the host has an NVIDIA GPU)
MONITORING_CENTRAL = ("prometheus", "alertmanager", "blackbox-exporter", "grafana")
MONITORING_EVERY_HOST = ("node-exporter", "cadvisor")
MONITORING_GPU_HOST = ("dcgm-exporter",)
# what Prometheus scrapes: every service of the set, each a job of its own name with a `host` label
SCRAPED = (*MONITORING_CENTRAL, *MONITORING_EVERY_HOST, *MONITORING_GPU_HOST)
# Prometheus's API, asked inside its container (busybox wget, as in the real image)
PROMETHEUS_API = "http://localhost:9090/api/v1"
# the host metrics the node exporter's textfile collector serves, written every 15 s by a timer
HOST_METRICS_FILE = "/var/lib/homelab/metrics/homelab.prom"
HOST_METRICS_TIMER = "homelab-metrics.timer"
HOST_METRICS_MAX_AGE = 60  # seconds: four missed runs
# Grafana's dashboards, by uid, provisioned from files
GRAFANA_PORT = 3000
GRAFANA_DASHBOARDS = ("homelab-containers", "homelab-gpu", "homelab-host", "homelab-services")


def target_problems(answer: dict, expected: Iterable[tuple[str, str]]) -> list[str]:
    """What is wrong with Prometheus's targets (``/api/v1/targets``): an expected (job, host) it does
    not scrape, and every target that is not up, with its last error."""
    active = answer.get("data", {}).get("activeTargets", [])
    seen = {(t.get("labels", {}).get("job"), t.get("labels", {}).get("host")) for t in active}
    problems = [f"{job} on {host}: not scraped" for job, host in sorted(expected) if (job, host) not in seen]
    for t in active:
        if t.get("health") != "up":
            labels = t.get("labels", {})
            problems.append(f"{labels.get('job')} {labels.get('instance')} ({labels.get('host')}): "
                            f"{t.get('health')}: {t.get('lastError') or 'not scraped yet'}")
    return problems


def firing_alerts(answer: dict) -> list[str]:
    """The alerts that fire (``/api/v1/alerts``), one line each: name, host, container or service."""
    lines = []
    for alert in answer.get("data", {}).get("alerts", []):
        if alert.get("state") != "firing":
            continue
        labels = alert.get("labels", {})
        what = labels.get("container") or labels.get("service") or labels.get("instance") or ""
        lines.append(f"{labels.get('alertname')} {labels.get('host', '')} {what}".strip())
    return sorted(lines)


def host_metric_names(text: str) -> dict[str, float]:
    """``homelab_container_running{name="x"} 1`` lines of the host metrics file -> {container: value}."""
    found = {}
    for line in text.splitlines():
        match = re.match(r'homelab_container_running\{name="([^"]+)"\} (\S+)$', line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found
GRAFANA_ADMIN = "admin"
# asks Grafana (at argv[1], host:port) with the admin's password read from stdin: its data sources and
# dashboards, printed as JSON
GRAFANA_PROBE = r"""
import base64, json, sys, urllib.request
address, password = sys.argv[1], sys.stdin.read()
auth = base64.b64encode((sys.argv[2] + ":" + password).encode()).decode()
found = {}
for key, path in (("datasources", "/api/datasources"), ("dashboards", "/api/search?type=dash-db")):
    request = urllib.request.Request("http://" + address + path, headers={"Authorization": "Basic " + auth})
    with urllib.request.urlopen(request, timeout=10) as answer:
        found[key] = json.load(answer)
print(json.dumps(found))
"""
