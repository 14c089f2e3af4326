"""Typed settings for the homelab deploys: one model, validated before any host is touched.

Sources, highest priority first:

1. pyinfra host data — per-host overrides, same names lower-case without the prefix
   (``--data domain=lab.example.org``, inventory host/group data);
2. the environment — ``HOMELAB_<NAME>``;
3. a git-ignored ``.env`` file at the repository root (see ``.env.example``);
4. the defaults below.

Secrets are :class:`pydantic.SecretStr`: they never appear in a repr, a log line or an error.
Every problem is reported at once, one line each, naming the setting as the user spells it
(``HOMELAB_…``), the bad value (never a secret's value) and what is expected.
"""

from __future__ import annotations

import ipaddress
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "HOMELAB_"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_DNS_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DNS_NAME = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})+$")
_EMAIL = re.compile(r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@" + rf"{_DNS_LABEL}(\.{_DNS_LABEL})*$")
_IMAGE_REF = re.compile(
    r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)


class Service(StrEnum):
    """The five services, by the container names the original used."""

    NGINX_PROXY_MANAGER = "nginx-proxy-manager"
    PIHOLE = "pihole"
    OLLAMA = "ollama"
    COMFYUI = "comfyui"
    OPEN_WEBUI = "open-webui"


ALL_SERVICES: tuple[Service, ...] = tuple(Service)
AI_SERVICES: frozenset[Service] = frozenset({Service.OLLAMA, Service.COMFYUI, Service.OPEN_WEBUI})


class DockerSource(StrEnum):
    """Where the Docker engine comes from."""

    DOCKER_CE = "docker-ce"  # Docker's own repository (docker-ce + compose plugin)
    DISTRO = "distro"  # the distribution's package: docker.io (Debian/Ubuntu), moby-engine (Fedora)


class PullPolicy(StrEnum):
    ALWAYS = "always"
    MISSING = "missing"
    NEVER = "never"


class NoGpuPolicy(StrEnum):
    """What to do with the AI services on a host without an NVIDIA GPU."""

    CPU = "cpu"  # deploy them on the CPU, with a warning
    SKIP = "skip"  # leave them out on that host


class GpuDowngrade(StrEnum):
    """What to do with a host that was set up for an NVIDIA GPU whose driver now fails (nvidia-smi)."""

    REFUSE = "refuse"  # stop the deploy of that host, naming the error and the remedy
    ALLOW = "allow"  # deploy it without the GPU: no nvidia runtime in Docker, ComfyUI on the CPU


class SettingsError(ValueError):
    """Invalid settings: ``problems`` holds one readable line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "invalid homelab settings:\n" + "\n".join(f"  - {problem}" for problem in problems)
        )


def _split_list(value: Any) -> Any:
    """Environment lists are comma-separated; host data may give a list or the same string."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return value


CommaList = Annotated[list[str], NoDecode]


class HomelabSettings(BaseSettings):
    """Everything the deploys need to know, with the original's defaults where it had them."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=REPO_ROOT / ".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    # -- network identity --------------------------------------------------------------------
    domain: str = Field(description="Base DNS name; services answer on chat./ollama./comfy./hole.<domain>")
    tailscale_allowed_ips: Annotated[list[IPNetwork], NoDecode] = Field(
        description="Tailscale peers admitted by the firewall zone (addresses or CIDRs, comma-separated)"
    )
    tailscale_ip: ipaddress.IPv4Address | None = Field(
        default=None, description="The host's Tailscale IPv4; read from the host when absent"
    )
    tailscale_authkey: SecretStr | None = Field(
        default=None, description="Auth key used to join the tailnet (only needed for the first join)"
    )
    tailscale_install: bool = Field(
        default=True, description="Install and join Tailscale; false when it is managed elsewhere"
    )
    tailscale_hostname: str | None = Field(default=None, description="Node name in the tailnet")
    docker_subnet: ipaddress.IPv4Network | None = Field(
        default=None, description="Subnet of the `self-hosted` Docker network; Docker picks one when absent"
    )

    # -- storage -----------------------------------------------------------------------------
    cold_storage_path: PurePosixPath = Field(
        default=PurePosixPath("/cold-storage"), description="Absolute path holding all service data"
    )
    min_free_disk_gb: int = Field(default=50, ge=0, description="Preflight warns below this much free space")

    # -- services ----------------------------------------------------------------------------
    services: Annotated[list[Service], NoDecode] = Field(
        default_factory=lambda: list(ALL_SERVICES), description="Which services to deploy"
    )
    ai_without_gpu: NoGpuPolicy = Field(
        default=NoGpuPolicy.CPU, description="AI services on a host without a GPU: cpu (warn) or skip"
    )
    gpu_downgrade: GpuDowngrade = Field(
        default=GpuDowngrade.REFUSE,
        description="A GPU host whose NVIDIA driver fails: refuse to deploy it, or allow it without the GPU",
    )
    timezone: str = Field(default="UTC", description="TZ for the containers")
    pull_policy: PullPolicy = Field(default=PullPolicy.MISSING, description="Compose pull policy")
    docker_source: DockerSource = Field(default=DockerSource.DOCKER_CE, description="Docker package source")
    pihole_upstream_dns: CommaList = Field(
        default_factory=lambda: ["1.1.1.1", "1.0.0.1"], description="Pi-hole's upstream resolvers"
    )

    # -- credentials -------------------------------------------------------------------------
    pihole_password: SecretStr | None = Field(default=None, description="Pi-hole web/API password")
    npm_admin_email: str | None = Field(default=None, description="NGINX Proxy Manager admin email")
    npm_admin_password: SecretStr | None = Field(
        default=None, description="NGINX Proxy Manager admin password (8-64 characters)"
    )
    open_webui_secret_key: SecretStr | None = Field(
        default=None, description="Open WebUI session secret; generated once on the host when absent"
    )

    # -- images (pinned; `latest` would make a re-run change what runs) ---------------------
    image_nginx_proxy_manager: str = Field(default="jc21/nginx-proxy-manager:2.15.1")
    image_pihole: str = Field(default="pihole/pihole:2025.08.0")
    image_ollama: str = Field(default="ollama/ollama:0.12.6")
    image_comfyui: str = Field(default="yanwk/comfyui-boot:cu128-slim")
    image_open_webui: str = Field(default="ghcr.io/open-webui/open-webui:v0.6.34")

    # -- validators --------------------------------------------------------------------------
    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not _DNS_NAME.match(value) or len(value) > 253:
            raise ValueError("expected a lower-case DNS name with at least two labels, e.g. home.example.com")
        return value

    @field_validator("tailscale_allowed_ips", mode="before")
    @classmethod
    def _allowed_ips(cls, value: Any) -> Any:
        value = _split_list(value)
        if isinstance(value, list):
            for item in value:
                try:
                    ipaddress.ip_network(str(item), strict=False)
                except ValueError:
                    raise ValueError(
                        f"{str(item)!r} is not an IPv4/IPv6 address or CIDR "
                        "(expected e.g. 100.64.0.0/10, 100.101.102.103 or fd7a:115c:a1e0::/48)"
                    ) from None
            return [ipaddress.ip_network(str(item), strict=False) for item in value]
        return value

    @field_validator("tailscale_allowed_ips")
    @classmethod
    def _allowed_ips_not_empty(cls, value: list[IPNetwork]) -> list[IPNetwork]:
        if not value:
            raise ValueError("expected at least one address or CIDR")
        return value

    @field_validator("cold_storage_path", mode="before")
    @classmethod
    def _absolute_path(cls, value: Any) -> Any:
        if isinstance(value, str | PurePosixPath | Path):
            path = PurePosixPath(str(value))
            if not path.is_absolute():
                raise ValueError("expected an absolute path such as /cold-storage")
            if ".." in path.parts:
                raise ValueError("expected a path without '..'")
            if path == PurePosixPath("/"):
                raise ValueError("expected a dedicated directory, not /")
        return value

    @field_validator("services", mode="before")
    @classmethod
    def _services(cls, value: Any) -> Any:
        value = _split_list(value)
        if isinstance(value, list):
            known = {service.value for service in Service}
            unknown = [str(item) for item in value if str(item) not in known]
            if unknown:
                raise ValueError(
                    f"unknown service(s) {', '.join(unknown)}; expected a comma-separated subset of "
                    + ", ".join(service.value for service in Service)
                )
            # keep the catalog's order, drop duplicates
            return [service for service in Service if service.value in {str(item) for item in value}]
        return value

    @field_validator("pihole_upstream_dns", mode="before")
    @classmethod
    def _upstreams(cls, value: Any) -> Any:
        value = _split_list(value)
        if isinstance(value, list):
            for item in value:
                try:
                    ipaddress.ip_address(str(item))
                except ValueError:
                    raise ValueError(f"{str(item)!r} is not an IP address") from None
            if not value:
                raise ValueError("expected at least one resolver address")
        return value

    @field_validator("gpu_downgrade", mode="before")
    @classmethod
    def _gpu_downgrade(cls, value: Any) -> Any:
        if isinstance(value, GpuDowngrade):
            return value
        if str(value).strip().lower() not in {item.value for item in GpuDowngrade}:
            raise ValueError(
                "expected refuse (the default: a host set up for a GPU whose driver fails is not deployed) "
                "or allow (deploy it without the GPU: Docker without its nvidia runtime, ComfyUI on the CPU)"
            )
        return str(value).strip().lower()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("expected an IANA time zone such as Europe/Berlin or UTC") from None
        return value

    @field_validator("npm_admin_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value != value.lower():
            raise ValueError(
                "expected a lower-case address: NGINX Proxy Manager can never log in one with capitals"
            )
        if not _EMAIL.match(value):
            raise ValueError("expected an email address such as admin@home.example.com")
        return value

    @field_validator("npm_admin_password")
    @classmethod
    def _npm_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not 8 <= len(value.get_secret_value()) <= 64:
            raise ValueError("expected 8 to 64 characters (NGINX Proxy Manager's own rule)")
        return value

    @field_validator("pihole_password", "open_webui_secret_key", "tailscale_authkey", "npm_admin_password")
    @classmethod
    def _secret_text(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        text = value.get_secret_value()
        if not text.strip():
            raise ValueError("expected a non-empty secret")
        # secrets travel in compose .env files, where these cannot be written literally
        if "'" in text or "\n" in text or "\r" in text or text.endswith("\\"):
            raise ValueError("expected no single quote, line break or trailing backslash")
        return value

    @field_validator(
        "image_nginx_proxy_manager", "image_pihole", "image_ollama", "image_comfyui", "image_open_webui"
    )
    @classmethod
    def _image(cls, value: str) -> str:
        if not _IMAGE_REF.match(value):
            raise ValueError("expected an image reference such as registry/name:tag")
        last = value.rsplit("/", 1)[-1]
        if ":" not in last and "@" not in last:
            raise ValueError("expected a pinned tag or digest (name:tag); an untagged image means `latest`")
        if last.endswith(":latest"):
            raise ValueError("expected a pinned tag or digest, not `latest`")
        return value

    @field_validator("tailscale_hostname")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(_DNS_LABEL, value):
            raise ValueError("expected one lower-case DNS label (letters, digits, '-')")
        return value

    @model_validator(mode="after")
    def _credentials_for_enabled_services(self) -> HomelabSettings:
        problems: list[str] = []
        if Service.PIHOLE in self.services and self.pihole_password is None:
            problems.append("pihole_password: required while pihole is in HOMELAB_SERVICES")
        if Service.NGINX_PROXY_MANAGER in self.services:
            if self.npm_admin_email is None:
                problems.append("npm_admin_email: required while nginx-proxy-manager is in HOMELAB_SERVICES")
            if self.npm_admin_password is None:
                problems.append(
                    "npm_admin_password: required while nginx-proxy-manager is in HOMELAB_SERVICES"
                )
        if problems:
            raise ValueError("|".join(problems))
        return self

    # -- derived -----------------------------------------------------------------------------
    def image_for(self, service: Service) -> str:
        return getattr(self, "image_" + service.value.replace("-", "_"))

    def enabled(self, service: Service) -> bool:
        return service in self.services


SETTING_NAMES: tuple[str, ...] = tuple(HomelabSettings.model_fields)
SECRET_NAMES: frozenset[str] = frozenset(
    name for name, field in HomelabSettings.model_fields.items() if "SecretStr" in str(field.annotation)
)


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _plain(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, PurePosixPath | ipaddress.IPv4Address | ipaddress.IPv4Network):
        return str(value)
    return value


def _shown(name: str, value: Any) -> str:
    if name in SECRET_NAMES:
        return "(secret, not shown)"
    if isinstance(value, list | tuple):
        value = ",".join(str(_plain(item)) for item in value)
    return repr(_plain(value))


def _problems(error: ValidationError, overrides: Mapping[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    for item in error.errors(include_url=False, include_context=False, include_input=True):
        name = str(item["loc"][0]) if item["loc"] else ""
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            problems.append(f"{env_name(name)}: missing; it is required ({_describe(name)})")
            continue
        if not name:  # model-level check: "field: message|field: message"
            for part in message.split("|"):
                field, _, text = part.partition(": ")
                problems.append(f"{env_name(field)}: {text}")
            continue
        source = f" (from {where} `{name}`)" if name in overrides else ""
        value = overrides.get(name, item.get("input"))
        problems.append(f"{env_name(name)}{source}: {_shown(name, value)} is not valid: {message}")
    return problems


def _describe(name: str) -> str:
    return HomelabSettings.model_fields[name].description or "see README"


_DEFAULT_ENV_FILE = object()


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    where: str = "host data",
    env_file: Path | None | object = _DEFAULT_ENV_FILE,
) -> HomelabSettings:
    """Build the settings from ``overrides`` (pyinfra data), the environment and ``.env``.

    ``env_file`` replaces the repository's ``.env`` (``None``: read no file).
    Raises :class:`SettingsError` with one line per problem; secrets are never part of it.
    """
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    extra: dict[str, Any] = {} if env_file is _DEFAULT_ENV_FILE else {"_env_file": env_file}
    try:
        return HomelabSettings(**overrides, **extra)
    except ValidationError as error:
        raise SettingsError(_problems(error, overrides, where)) from None


def overrides_from_data(data: Any, names: Iterable[str] = SETTING_NAMES) -> dict[str, Any]:
    """The settings present in pyinfra host data (``host.data``), keyed by setting name."""
    found: dict[str, Any] = {}
    for name in names:
        value = data.get(name) if hasattr(data, "get") else getattr(data, name, None)
        if value is not None:
            found[name] = value
    return found


def settings_for_host(host: Any) -> HomelabSettings:
    """The settings for one pyinfra host: its data (``--data``, host, group) over env and .env."""
    return load_settings(overrides_from_data(host.data), where=f"host data of {host.name}")


def main() -> int:
    """``python -m deploys.settings``: check the environment's settings and print them (secrets masked)."""
    import sys

    try:
        settings = load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    for name in SETTING_NAMES:
        value = getattr(settings, name)
        shown = ("(set)" if value else "(unset)") if name in SECRET_NAMES else _shown(name, value)
        print(f"{env_name(name)}={shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
