"""The five services, described once as data, and rendered to compose documents.

Everything a deploy, the proxy tier, the preflight checks and the verification suite need to
know about a service lives here: image (from settings), ports, data folders under the cold-storage
path, GPU use, environment, health check, subdomain and upstream port.

Secrets never enter a compose document: it refers to ``${NAME}``, and the value lives only in the
project's ``.env`` (mode 0600), which ``docker compose`` reads for interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

import yaml

from deploys.library.settings import HomelabSettings, Service

NETWORK = "self-hosted"
PROJECTS_ROOT = PurePosixPath("/opt/homelab")
MANAGED_LABEL = "org.homelab.managed-by"
MANAGED_BY = "homelab-pyinfra"
# Open WebUI's session secret when no setting gives one: made once on the host, kept there
WEBUI_SECRET_FILE = "webui-secret.env"  # noqa: S105 (a file name)


@dataclass(frozen=True)
class Port:
    """A host port, always bound to the Tailscale IP (never to every address)."""

    number: int
    protocol: str = "tcp"


@dataclass(frozen=True)
class Volume:
    """A folder under the cold-storage path, bind-mounted into the container."""

    source: str  # relative to COLD_STORAGE_PATH
    target: str
    owner: str = "root:root"
    mode: str = "755"


def pinned_image(service: Service) -> str:
    """The image a service runs unless HOMELAB_IMAGE_<NAME> says otherwise (the settings' default)."""
    return HomelabSettings.model_fields["image_" + service.value.replace("-", "_")].default


@dataclass(frozen=True)
class CudaNeed:
    """The CUDA version the host's NVIDIA driver must support (nvidia-smi's "CUDA Version") for
    a service's pinned image; preflight compares it with the driver's."""

    image: str  # the pinned image this is known for
    minimum: str  # "12.8"
    falls_back: bool  # with an older driver the image still runs, on the CPU (else it fails to start)
    source: str  # where the number comes from


@dataclass(frozen=True)
class ServiceSpec:
    service: Service
    upstream_port: int  # where the service listens inside the Docker network
    volumes: tuple[Volume, ...]
    healthcheck: tuple[str, ...]
    host_ports: tuple[Port, ...] = ()
    subdomain: str | None = None
    gpu: bool = False
    cap_add: tuple[str, ...] = ()
    start_period: str = "60s"
    min_vram_mib: int = 0  # what the service needs to be useful on a GPU (preflight warns below)
    cuda: CudaNeed | None = None  # the driver's CUDA version the pinned image needs
    # environment: plain values and, for secrets, the name of the .env variable holding them
    secret_env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Container name, compose project and service name: the original's names."""
        return self.service.value

    @property
    def is_ai(self) -> bool:
        return self.service in (Service.OLLAMA, Service.COMFYUI, Service.OPEN_WEBUI)


CATALOG: dict[Service, ServiceSpec] = {
    Service.NGINX_PROXY_MANAGER: ServiceSpec(
        service=Service.NGINX_PROXY_MANAGER,
        upstream_port=81,
        host_ports=(Port(80), Port(443), Port(81)),
        volumes=(
            Volume("services/nginx-proxy/data", "/data"),
            Volume("services/nginx-proxy/certificates/letsencrypt", "/etc/letsencrypt"),
        ),
        healthcheck=("CMD", "curl", "-fsS", "http://localhost:81/api/"),
    ),
    Service.PIHOLE: ServiceSpec(
        service=Service.PIHOLE,
        upstream_port=80,
        subdomain="hole",
        host_ports=(Port(53, "tcp"), Port(53, "udp")),
        volumes=(
            Volume("services/pihole/config", "/etc/pihole"),
            Volume("services/pihole/logs", "/var/log/pihole"),
        ),
        healthcheck=("CMD", "dig", "+short", "+norecurse", "+retry=0", "@127.0.0.1", "pi.hole"),
        cap_add=("SYS_NICE",),
        secret_env={"FTLCONF_webserver_api_password": "PIHOLE_PASSWORD"},
    ),
    Service.OLLAMA: ServiceSpec(
        service=Service.OLLAMA,
        upstream_port=11434,
        subdomain="ollama",
        volumes=(Volume("ai/ollama/models", "/root/.ollama/models"),),
        healthcheck=("CMD", "ollama", "list"),
        gpu=True,
        min_vram_mib=4096,  # a 7B model at 4-bit quantisation
        cuda=CudaNeed(
            image=pinned_image(Service.OLLAMA),
            minimum="12.1",
            falls_back=True,
            source=(
                "docs.ollama.com/gpu (0.12 era): NVIDIA 'driver version 531 and newer' (531 = CUDA 12.1); "
                "ollama PR #10569 dropped the CUDA 11 runners and tested the oldest driver, 531.79 / "
                "CUDA 12.1; 0.12 ships cuda_v12 and cuda_v13 runners (PR #12000) and takes v13 only where "
                "the driver supports it. With an older driver it finds no usable GPU and runs on the CPU "
                "(docs/gpu.md: 'fallback to running on the CPU')"
            ),
        ),
    ),
    Service.COMFYUI: ServiceSpec(
        service=Service.COMFYUI,
        upstream_port=8188,
        subdomain="comfy",
        volumes=(
            Volume("ai/comfyui/data", "/root"),
            Volume("ai/comfyui/models", "/root/ComfyUI/models"),
            Volume("ai/comfyui/output", "/root/ComfyUI/output"),
            Volume("ai/comfyui/input", "/root/ComfyUI/input"),
        ),
        healthcheck=("CMD", "curl", "-fsS", "http://localhost:8188/system_stats"),
        gpu=True,
        start_period="180s",
        min_vram_mib=8192,  # SDXL needs about 8 GB
        cuda=CudaNeed(
            image=pinned_image(Service.COMFYUI),
            minimum="12.8",
            falls_back=False,
            source=(
                "the tag names the CUDA of its PyTorch build (cu128: CUDA 12.8; YanWenKun/ComfyUI-Docker "
                "docs/README-DockerHub.md: 'cu124 ... Using CUDA 12.4'); PyTorch refuses an older driver "
                "and ComfyUI only runs on the CPU when started with --cpu"
            ),
        ),
    ),
    Service.OPEN_WEBUI: ServiceSpec(
        service=Service.OPEN_WEBUI,
        upstream_port=8080,  # not 3000: the image listens on 8080
        subdomain="chat",
        volumes=(Volume("ai/open-webui/data", "/app/backend/data"),),
        healthcheck=("CMD", "curl", "-fsS", "http://localhost:8080/health"),
        start_period="120s",
        secret_env={"WEBUI_SECRET_KEY": "WEBUI_SECRET_KEY"},
    ),
}


def spec(service: Service | str) -> ServiceSpec:
    return CATALOG[Service(service)]


def project_dir(service: Service) -> PurePosixPath:
    return PROJECTS_ROOT / service.value


def data_dirs(settings: HomelabSettings, service: Service) -> list[tuple[PurePosixPath, Volume]]:
    """Absolute data folders of one service, parents before children."""
    return [(settings.cold_storage_path / volume.source, volume) for volume in CATALOG[service].volumes]


@dataclass(frozen=True)
class Placement:
    """Where this host's deploy puts things: decided by the deploy, rendered here."""

    tailscale_ip: str
    gpu: bool  # reserve the NVIDIA GPU for services that use one
    publish_upstream: bool = False  # the proxy runs on another host: bind the upstream port too
    webui_secret_from_settings: bool = True


def _environment(settings: HomelabSettings, service: Service, placement: Placement) -> dict[str, str]:
    env: dict[str, str] = {"TZ": settings.timezone}
    if service is Service.PIHOLE:
        env["FTLCONF_dns_upstreams"] = ";".join(settings.pihole_upstream_dns)
        env["FTLCONF_dns_listeningMode"] = "all"  # queries arrive from the bridge network
    elif service is Service.COMFYUI:
        env["CLI_ARGS"] = "" if placement.gpu else "--cpu"
    elif service is Service.OPEN_WEBUI:
        env["OLLAMA_BASE_URL"] = f"http://ollama:{CATALOG[Service.OLLAMA].upstream_port}"
    return env


def env_file(settings: HomelabSettings, service: Service, placement: Placement) -> dict[str, str]:
    """The project's ``.env``: the secrets the compose document refers to (mode 0600 on the host)."""
    values: dict[str, str] = {}
    for variable in CATALOG[service].secret_env.values():
        if variable == "PIHOLE_PASSWORD" and settings.pihole_password:
            values[variable] = settings.pihole_password.get_secret_value()
        elif variable == "WEBUI_SECRET_KEY" and settings.open_webui_secret_key:
            values[variable] = settings.open_webui_secret_key.get_secret_value()
    return values


def published_ports(service: Service, placement: Placement) -> list[Port]:
    """The host ports a service publishes on the Tailscale IP: its own, plus its upstream port when
    the proxy runs on another host."""
    item = CATALOG[service]
    ports = list(item.host_ports)
    if placement.publish_upstream and not any(port.number == item.upstream_port for port in ports):
        ports.append(Port(item.upstream_port))
    return ports


def compose_document(settings: HomelabSettings, service: Service, placement: Placement) -> dict:
    item = CATALOG[service]
    address = placement.tailscale_ip
    ports = [f"{address}:{port.number}:{port.number}/{port.protocol}"
             for port in published_ports(service, placement)]

    environment = _environment(settings, service, placement)
    env_files: list[str] = []
    for key, variable in item.secret_env.items():
        if variable == "WEBUI_SECRET_KEY" and not placement.webui_secret_from_settings:
            env_files.append(WEBUI_SECRET_FILE)
        else:
            environment[key] = "${" + variable + "}"

    container: dict = {
        "image": settings.image_for(service),
        "container_name": item.name,
        "restart": "unless-stopped",
        "pull_policy": settings.pull_policy.value,
        "labels": {MANAGED_LABEL: MANAGED_BY},
        "networks": [NETWORK],
    }
    if ports:
        container["ports"] = ports
    container["volumes"] = [
        f"{path}:{volume.target}" for path, volume in data_dirs(settings, service)
    ]
    container["environment"] = environment
    if env_files:
        container["env_file"] = env_files
    if item.cap_add:
        container["cap_add"] = list(item.cap_add)
    container["healthcheck"] = {
        "test": list(item.healthcheck),
        "interval": "10s",
        "timeout": "5s",
        "retries": 5,
        "start_period": item.start_period,
    }
    if item.gpu and placement.gpu:
        container["deploy"] = {
            "resources": {
                "reservations": {"devices": [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]}
            }
        }
    return {
        "name": item.name,
        "services": {item.name: container},
        "networks": {NETWORK: {"external": True}},
    }


def render_compose(settings: HomelabSettings, service: Service, placement: Placement) -> str:
    header = f"# Managed by {MANAGED_BY}: changes here are overwritten by the next deploy.\n"
    return header + yaml.safe_dump(
        compose_document(settings, service, placement), sort_keys=False, default_flow_style=False
    )
