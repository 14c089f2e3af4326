"""The services, declared once as data: one :class:`ServiceSpec` per service in :data:`CATALOG`.

Everything the tiers need to know about a service is in its declaration: the image it runs by
default (``HOMELAB_IMAGE_<NAME>`` overrides it), its container name, the inventory group it is
placed on, its ports (published on the host, and the upstream port the proxy forwards to), its data
folders with owner, mode and backup class, its environment (secrets marked), health check, GPU use,
subdomain and metrics endpoint. Nothing outside the declarations asks *which* service it handles:
adding a service is adding a declaration here (and a tag file in ``deploys/``).

The host plan (``plan.py``) decides where each service runs and what it publishes; ``compose_files.py``
renders a declaration and its placement into a compose document.

This module imports nothing of the project: the settings read it (service names, default images,
required secrets), never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath

# -- names defined once ------------------------------------------------------------------------
NETWORK = "self-hosted"  # the Docker network every service joins
ZONE = "self-hosted"  # the firewalld zone of the Tailscale peers
# Docker's own firewalld zone (the container bridges, target ACCEPT): left alone by SSH over the tailnet only
DOCKER_ZONE = "docker"
PROJECTS_ROOT = PurePosixPath("/opt/homelab")  # one compose project folder per service
MANAGED_LABEL = "org.homelab.managed-by"  # on containers and the network; NPM proxy hosts' meta
MANAGED_BY = "homelab-pyinfra"
# the first line of every file the deploy renders for a service (compose documents, configuration files)
MANAGED_HEADER = f"# Managed by {MANAGED_BY}: changes here are overwritten by the next deploy.\n"
CORE_GROUP = "core"  # inventory group of the proxy and DNS
GPU_GROUP = "gpu"  # inventory group of the AI services
PLACEMENT_GROUPS = (CORE_GROUP, GPU_GROUP)
# the monitoring host's group: Prometheus, Alertmanager, Grafana and the blackbox exporter run on its first
# host, else on the first host of the core group, else on the inventory's first host
MONITORING_GROUP = "monitoring"
EVERY_HOST = "all"  # pyinfra's name of the group of every inventory host: a service placed on each
METRICS_ROOT = PurePosixPath("/var/lib/homelab/metrics")  # the node exporter's textfile collector folder


class Service(StrEnum):
    """The services, by the container names the original used (a service *is* its name: the catalog
    is keyed by plain strings, and these members compare and hash as those strings): the five of
    HOMELAB_SERVICES, then the monitoring set (HOMELAB_MONITORING)."""

    NGINX_PROXY_MANAGER = "nginx-proxy-manager"
    PIHOLE = "pihole"
    OLLAMA = "ollama"
    COMFYUI = "comfyui"
    OPEN_WEBUI = "open-webui"
    PROMETHEUS = "prometheus"
    ALERTMANAGER = "alertmanager"
    BLACKBOX_EXPORTER = "blackbox-exporter"
    GRAFANA = "grafana"
    NODE_EXPORTER = "node-exporter"
    CADVISOR = "cadvisor"
    DCGM_EXPORTER = "dcgm-exporter"


class BackupClass(StrEnum):
    """How much a data folder matters (the original design's backup strategy)."""

    CRITICAL = "critical"  # users' own data: chats, accounts
    HIGH = "high"  # hard to rebuild: proxy configuration, certificates
    MEDIUM = "medium"  # rebuildable by hand: DNS configuration, generated outputs
    LOW = "low"  # downloadable again: models (tens of GB)
    NONE = "none"  # logs, caches


@dataclass(frozen=True)
class Port:
    """A host port, always bound to the Tailscale IP (never to every address)."""

    number: int
    protocol: str = "tcp"

    def __str__(self) -> str:
        return f"{self.number}/{self.protocol}"


@dataclass(frozen=True)
class Volume:
    """A folder under the cold-storage path, bind-mounted into the container."""

    source: str  # relative to COLD_STORAGE_PATH
    target: str
    backup: BackupClass
    owner: str = "root:root"
    mode: str = "755"


@dataclass(frozen=True)
class Secret:
    """A secret the container reads from its environment: the value comes from a setting and reaches
    the host only in the project's ``.env`` (mode 0600); the compose document says ``${variable}``.

    With ``generated_file`` a missing setting is no problem: a random value is made once on the host
    in that file (in the project folder) and kept there; without it the setting is required while the
    service is enabled.
    """

    key: str  # the container's environment variable
    setting: str  # the HomelabSettings field holding the value
    variable: str  # the name in the project's .env
    generated_file: str | None = None


@dataclass(frozen=True)
class FromSetting:
    """An environment value (or a command argument) taken from a setting (lists joined by ``join``),
    written into ``template``."""

    setting: str
    join: str = ","
    template: str = "{}"


@dataclass(frozen=True)
class OnGpu:
    """An environment value that depends on whether the service gets the GPU on its host."""

    with_gpu: str
    without_gpu: str


@dataclass(frozen=True)
class ServiceUrl:
    """``http://<address>:<upstream port>`` of another service: its container name when it runs on
    the same host, its host's Tailscale address otherwise (the host plan decides)."""

    service: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "service", str(self.service))


@dataclass(frozen=True)
class WhenTls:
    """An environment value of the host plan's HTTPS decision (``TlsPlan``'s attribute ``attribute``),
    left out when TLS is off or the attribute is unset: nothing changes for a host without HTTPS."""

    attribute: str


@dataclass(frozen=True)
class SubdomainUrl:
    """``<scheme>://<subdomain>.<domain>/`` of a service's own subdomain (https with HOMELAB_TLS)."""

    subdomain: str


EnvValue = str | FromSetting | OnGpu | ServiceUrl | WhenTls | SubdomainUrl


@dataclass(frozen=True)
class HostMount:
    """A host path bind-mounted read-only into the container (a system folder an exporter reads, or the
    folder the deploy writes its metrics to): never data of the service itself."""

    source: str  # an absolute path on the host
    target: str


@dataclass(frozen=True)
class CudaNeed:
    """The CUDA version the host's NVIDIA driver must support (nvidia-smi's "CUDA Version") for
    a service's pinned image; preflight compares it with the driver's."""

    minimum: str  # "12.8"
    falls_back: bool  # with an older driver the image still runs, on the CPU (else it fails to start)
    source: str  # where the number comes from


@dataclass(frozen=True)
class Limits:
    """A container's memory and CPU limits, as ``HOMELAB_LIMITS`` writes them (``resources.py``): memory
    ``512m`` / ``24g`` / ``40%`` of the host's, CPUs ``0.5`` / ``75%`` of the host's, ``none``: no limit.
    In ``HOMELAB_LIMITS``, ``None`` keeps the catalog's default."""

    memory: str | None = None
    cpus: str | None = None

    def __str__(self) -> str:
        return f"{self.memory or ''}:{self.cpus or ''}"


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # container name, compose project and service name: the original's names
    image: str  # the pinned default; `latest` would make a re-run change what runs
    group: str  # the inventory group it is placed on when the inventory uses groups
    upstream_port: int  # where the service listens inside the Docker network
    volumes: tuple[Volume, ...]
    healthcheck: tuple[str, ...]
    host_ports: tuple[Port, ...] = ()  # published on the Tailscale IP wherever it runs
    subdomain: str | None = None  # proxied as <subdomain>.<domain>
    gpu: bool = False  # reserves the NVIDIA GPU where the host has one
    cap_add: tuple[str, ...] = ()
    start_period: str = "60s"
    min_vram_mib: int = 0  # what the service needs to be useful on a GPU (preflight warns below)
    cuda: CudaNeed | None = None  # the driver's CUDA version the pinned image needs
    environment: dict[str, EnvValue] = field(default_factory=dict)
    secrets: tuple[Secret, ...] = ()
    required_settings: tuple[str, ...] = ()  # settings that must be set while the service is enabled
    metrics: str | None = None  # a Prometheus endpoint (path on the upstream port), where it has one
    # memory and CPU limits (HOMELAB_LIMITS overrides them); a declaration without any runs unlimited
    limits: Limits = Limits("none", "none")
    # the boolean setting that turns the service on (with its set), instead of HOMELAB_SERVICES
    enabled_by: str | None = None
    needs_gpu: bool = False  # placed only where the host has a working NVIDIA GPU (and reserves it)
    command: tuple[str | FromSetting, ...] = ()  # arguments to the image's entrypoint
    host_mounts: tuple[HostMount, ...] = ()
    # the deploy renders the service's configuration files (monitoring_config.py) into the project's
    # config/ folder, mounted read-only here in the container
    config_target: str | None = None
    user: str | None = None  # the container's user, where it must differ from the image's
    dns_from: str | None = None  # the containers resolve names at this service's host (Pi-hole)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", str(self.name))  # a plain string, as YAML and JSON want it
        groups = (*PLACEMENT_GROUPS, MONITORING_GROUP, EVERY_HOST)
        if self.group not in groups:
            raise ValueError(f"{self.name}: group {self.group!r} is not one of {', '.join(groups)}")

    @property
    def image_setting(self) -> str:
        """The HomelabSettings field (``HOMELAB_IMAGE_<NAME>``) that overrides the pinned image."""
        return "image_" + self.name.replace("-", "_")

    @property
    def project_dir(self) -> PurePosixPath:
        return PROJECTS_ROOT / self.name


CATALOG: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec(
            name=Service.NGINX_PROXY_MANAGER,
            image="jc21/nginx-proxy-manager:2.15.1",
            group=CORE_GROUP,
            upstream_port=81,
            host_ports=(Port(80), Port(443), Port(81)),
            volumes=(
                Volume("services/nginx-proxy/data", "/data", BackupClass.HIGH),
                Volume("services/nginx-proxy/certificates/letsencrypt", "/etc/letsencrypt", BackupClass.HIGH),
            ),
            healthcheck=("CMD", "curl", "-fsS", "http://localhost:81/api/"),
            # HTTPS (HOMELAB_TLS=dns): NPM hands LE_SERVER to certbot as --server; certbot, which inherits
            # NPM's environment, trusts a private ACME server's CA through REQUESTS_CA_BUNDLE
            environment={"LE_SERVER": WhenTls("acme_server"), "REQUESTS_CA_BUNDLE": WhenTls("ca_bundle")},
            required_settings=("npm_admin_email", "npm_admin_password"),
            # nginx and NPM's node backend use 100-300 MB; certbot's DNS plugins are installed on demand
            limits=Limits(memory="1g", cpus="1"),
        ),
        ServiceSpec(
            name=Service.PIHOLE,
            image="pihole/pihole:2025.08.0",
            group=CORE_GROUP,
            upstream_port=80,
            subdomain="hole",
            host_ports=(Port(53, "tcp"), Port(53, "udp")),
            volumes=(
                Volume("services/pihole/config", "/etc/pihole", BackupClass.MEDIUM),
                Volume("services/pihole/logs", "/var/log/pihole", BackupClass.NONE),
            ),
            healthcheck=("CMD", "dig", "+short", "+norecurse", "+retry=0", "@127.0.0.1", "pi.hole"),
            cap_add=("SYS_NICE",),
            environment={
                "FTLCONF_dns_upstreams": FromSetting("pihole_upstream_dns", join=";"),
                "FTLCONF_dns_listeningMode": "all",  # queries arrive from the bridge network
            },
            secrets=(Secret("FTLCONF_webserver_api_password", "pihole_password", "PIHOLE_PASSWORD"),),
            required_settings=("pihole_password",),
            # FTL holds its lists in 50-150 MB; a gravity update (`pihole -g`) of large lists needs more
            limits=Limits(memory="512m", cpus="1"),
        ),
        ServiceSpec(
            name=Service.OLLAMA,
            image="ollama/ollama:0.12.6",
            group=GPU_GROUP,
            upstream_port=11434,
            subdomain="ollama",
            volumes=(Volume("ai/ollama/models", "/root/.ollama/models", BackupClass.LOW),),
            healthcheck=("CMD", "ollama", "list"),
            gpu=True,
            # a share, not a size: a model runs from RAM where VRAM is short (70B at 4 bits: ~40 GB); with
            # ComfyUI's share and the small services it leaves a fifth of the host to the system. CPU time
            # is not capped: each container's equal cgroup weight keeps DNS and the proxy served
            limits=Limits(memory="40%", cpus="none"),
            min_vram_mib=4096,  # a 7B model at 4-bit quantisation
            cuda=CudaNeed(
                minimum="12.1",
                falls_back=True,
                source=(
                    "docs.ollama.com/gpu (0.12 era): NVIDIA 'driver version 531 and newer' "
                    "(531 = CUDA 12.1); "
                    "ollama PR #10569 dropped the CUDA 11 runners and tested the oldest driver, 531.79 / "
                    "CUDA 12.1; 0.12 ships cuda_v12 and cuda_v13 runners (PR #12000) and takes v13 only "
                    "where the driver supports it. With an older driver it finds no usable GPU and runs on "
                    "the CPU (docs/gpu.md: 'fallback to running on the CPU')"
                ),
            ),
        ),
        ServiceSpec(
            name=Service.COMFYUI,
            image="yanwk/comfyui-boot:cu128-slim",
            group=GPU_GROUP,
            upstream_port=8188,
            subdomain="comfy",
            volumes=(
                Volume("ai/comfyui/data", "/root", BackupClass.LOW),
                Volume("ai/comfyui/models", "/root/ComfyUI/models", BackupClass.LOW),
                Volume("ai/comfyui/output", "/root/ComfyUI/output", BackupClass.MEDIUM),
                Volume("ai/comfyui/input", "/root/ComfyUI/input", BackupClass.MEDIUM),
            ),
            healthcheck=("CMD", "curl", "-fsS", "http://localhost:8188/system_stats"),
            gpu=True,
            start_period="180s",
            limits=Limits(memory="40%", cpus="none"),  # checkpoints pass through RAM (SDXL ~7 GB, Flux 20+)
            min_vram_mib=8192,  # SDXL needs about 8 GB
            cuda=CudaNeed(
                minimum="12.8",
                falls_back=False,
                source=(
                    "the tag names the CUDA of its PyTorch build (cu128: CUDA 12.8; YanWenKun/ComfyUI-Docker "
                    "docs/README-DockerHub.md: 'cu124 ... Using CUDA 12.4'); PyTorch refuses an older driver "
                    "and ComfyUI only runs on the CPU when started with --cpu"
                ),
            ),
            environment={"CLI_ARGS": OnGpu(with_gpu="", without_gpu="--cpu")},
        ),
        ServiceSpec(
            name=Service.OPEN_WEBUI,
            image="ghcr.io/open-webui/open-webui:v0.6.34",
            group=GPU_GROUP,
            upstream_port=8080,  # not 3000: the image listens on 8080
            subdomain="chat",
            volumes=(Volume("ai/open-webui/data", "/app/backend/data", BackupClass.CRITICAL),),
            healthcheck=("CMD", "curl", "-fsS", "http://localhost:8080/health"),
            start_period="120s",
            limits=Limits(memory="2g", cpus="2"),  # Python with a local embedding model (RAG): ~1-1.5 GB
            # sign-up closed from the very first start (ENABLE_INITIAL_ADMIN_SIGNUP stays unset, so not even
            # a first account can sign up): the deploy creates the admin itself (openwebui_steps)
            environment={"OLLAMA_BASE_URL": ServiceUrl(Service.OLLAMA), "ENABLE_SIGNUP": "false"},
            secrets=(
                Secret("WEBUI_SECRET_KEY", "open_webui_secret_key", "WEBUI_SECRET_KEY",
                       generated_file="webui-secret.env"),
            ),
            required_settings=("open_webui_admin_email", "open_webui_admin_password"),
        ),
        # -- the monitoring set (HOMELAB_MONITORING): its configuration is rendered from the host plan --
        ServiceSpec(
            name=Service.PROMETHEUS,
            image="prom/prometheus:v2.55.1",
            group=MONITORING_GROUP,
            enabled_by="monitoring",
            upstream_port=9090,
            volumes=(Volume("monitoring/prometheus", "/prometheus", BackupClass.NONE, owner="65534:65534"),),
            healthcheck=("CMD", "wget", "-q", "--spider", "http://localhost:9090/-/ready"),
            command=("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
                     FromSetting("monitoring_retention", template="--storage.tsdb.retention.time={}"),
                     "--web.enable-lifecycle"),
            config_target="/etc/prometheus",
            metrics="/metrics",
            limits=Limits(memory="2g", cpus="1"),  # a homelab's few thousand series: 200-500 MB
        ),
        ServiceSpec(
            name=Service.ALERTMANAGER,
            image="prom/alertmanager:v0.28.1",
            group=MONITORING_GROUP,
            enabled_by="monitoring",
            upstream_port=9093,
            volumes=(
                Volume("monitoring/alertmanager", "/alertmanager", BackupClass.NONE, owner="65534:65534"),
            ),
            healthcheck=("CMD", "wget", "-q", "--spider", "http://localhost:9093/-/ready"),
            command=("--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"),
            config_target="/etc/alertmanager",
            user="0",  # its configuration holds the webhook URL, a secret: a 0600 file of root's
            metrics="/metrics",
            limits=Limits(memory="256m", cpus="0.5"),
        ),
        ServiceSpec(
            name=Service.BLACKBOX_EXPORTER,
            image="prom/blackbox-exporter:v0.27.0",
            group=MONITORING_GROUP,
            enabled_by="monitoring",
            upstream_port=9115,
            volumes=(),
            healthcheck=("CMD", "wget", "-q", "--spider", "http://localhost:9115/-/healthy"),
            command=("--config.file=/etc/blackbox/blackbox.yml",),
            config_target="/etc/blackbox",
            dns_from=Service.PIHOLE,  # probes reach the subdomains as a user does: by Pi-hole's records
            metrics="/metrics",
            limits=Limits(memory="128m", cpus="0.5"),
        ),
        ServiceSpec(
            name=Service.GRAFANA,
            image="grafana/grafana:12.2.1",
            group=MONITORING_GROUP,
            enabled_by="monitoring",
            upstream_port=3000,
            subdomain="grafana",
            volumes=(Volume("monitoring/grafana", "/var/lib/grafana", BackupClass.HIGH, owner="472:0"),),
            healthcheck=("CMD", "wget", "-q", "--spider", "http://localhost:3000/api/health"),
            environment={
                "GF_SECURITY_ADMIN_USER": "admin",
                "GF_USERS_ALLOW_SIGN_UP": "false",
                "GF_SERVER_ROOT_URL": SubdomainUrl("grafana"),
                "GF_ANALYTICS_REPORTING_ENABLED": "false",
                "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
            },
            # Grafana takes it when it makes its database (the first start); later changes: README
            secrets=(
                Secret("GF_SECURITY_ADMIN_PASSWORD", "grafana_admin_password", "GRAFANA_ADMIN_PASSWORD"),
            ),
            required_settings=("grafana_admin_password",),
            config_target="/etc/grafana/provisioning",
            metrics="/metrics",
            limits=Limits(memory="512m", cpus="1"),
        ),
        ServiceSpec(
            name=Service.NODE_EXPORTER,
            image="prom/node-exporter:v1.9.1",
            group=EVERY_HOST,
            enabled_by="monitoring",
            upstream_port=9100,
            volumes=(),
            healthcheck=("CMD", "wget", "-q", "--spider", "http://localhost:9100/metrics"),
            command=("--path.rootfs=/host", "--collector.textfile.directory=/textfile"),
            host_mounts=(HostMount("/", "/host"), HostMount(str(METRICS_ROOT), "/textfile")),
            metrics="/metrics",
            limits=Limits(memory="128m", cpus="0.5"),
        ),
        ServiceSpec(
            name=Service.CADVISOR,
            image="gcr.io/cadvisor/cadvisor:v0.52.1",
            group=EVERY_HOST,
            enabled_by="monitoring",
            upstream_port=9338,  # not its default 8080: Open WebUI's port
            volumes=(),
            healthcheck=("CMD", "wget", "-q", "--spider", "http://localhost:9338/healthz"),
            command=("--port=9338", "--docker_only=true", "--housekeeping_interval=15s"),
            host_mounts=(HostMount("/", "/rootfs"), HostMount("/var/run", "/var/run"),
                         HostMount("/sys", "/sys"), HostMount("/var/lib/docker", "/var/lib/docker")),
            metrics="/metrics",
            limits=Limits(memory="256m", cpus="0.5"),
        ),
        ServiceSpec(
            name=Service.DCGM_EXPORTER,
            image="nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04",
            group=EVERY_HOST,
            enabled_by="monitoring",
            needs_gpu=True,
            gpu=True,
            upstream_port=9400,
            volumes=(),
            healthcheck=("CMD", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9400"),
            cap_add=("SYS_ADMIN",),  # DCGM's profiling metrics
            metrics="/metrics",
            limits=Limits(memory="512m", cpus="0.5"),
        ),
    )
}


def set_members(setting: str) -> tuple[str, ...]:
    """The services a boolean setting turns on as a set (``monitoring``: the monitoring set)."""
    return tuple(name for name, item in CATALOG.items() if item.enabled_by == setting)


def selectable_services() -> tuple[str, ...]:
    """The services HOMELAB_SERVICES chooses among (a set's services have a setting of their own)."""
    return tuple(name for name, item in CATALOG.items() if item.enabled_by is None)


def spec(service: str) -> ServiceSpec:
    return CATALOG[str(service)]


def services_in(group: str) -> tuple[str, ...]:
    """The catalog's services placed on an inventory group's hosts, in the catalog's order."""
    return tuple(name for name, item in CATALOG.items() if item.group == group)


def referenced_services(item: ServiceSpec) -> tuple[str, ...]:
    """The services a service's environment points at (``ServiceUrl``)."""
    return tuple(value.service for value in item.environment.values() if isinstance(value, ServiceUrl))
