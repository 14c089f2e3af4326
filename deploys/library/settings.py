"""Typed settings for the homelab deploys: one model, validated before any host is touched.

Sources, highest priority first:

1. pyinfra host data — per-host overrides, same names lower-case without the prefix
   (``--data domain=lab.example.org``, inventory host/group data);
2. the environment — ``HOMELAB_<NAME>``;
3. a git-ignored ``.env`` file at the repository root (see ``.env.example``), or instead ``.env.age``,
   the same encrypted with age and decrypted in memory (deploys/library/secrets_at_rest.py);
4. the defaults below.

Values from pyinfra data are read as the environment's text is (``--data npm_admin_password=12345678``
arrives as an int and is the password ``12345678``). A ``HOMELAB_*`` variable in the environment or
``.env`` that is no setting is refused, naming the closest one (``HOMELAB_LAB_*`` belong to the lab).
Values that would weaken or break a server are refused like malformed ones: a wildcard or loopback
Tailscale IP, an allowed-IPs list open to the world, a Docker subnet on docker0 or the tailnet, a system
folder as cold storage, a placeholder secret.

Secrets are :class:`pydantic.SecretStr`: they never appear in a repr, a log line or an error.
Every problem is reported at once, one line each, naming the setting as the user spells it
(``HOMELAB_…``), the bad value (never a secret's value) and what is expected.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from deploys.library import secrets_at_rest
from deploys.library.catalog import (
    CATALOG,
    BackupClass,
    Limits,
    Service,
    selectable_services,
    set_members,
)
from deploys.library.resources import parse_limits
from deploys.library.tls import (
    DNS_PROVIDERS,
    LETSENCRYPT_PRODUCTION,
    NO_CREDENTIALS_FILE,
    TlsMode,
    ca_bundle_problem,
)
from facts.reads import ENV as READ_AHEAD
from operations.clients.ollama import DEFAULT_HOST, parse_model_name

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "HOMELAB_"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Tailscale hands out addresses from these (the CGNAT range and its IPv6 ULA prefix)
TAILNET_RANGES: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("fd7a:115c:a1e0::/48"),
)
# ranges that never leave a private network: RFC 1918, the tailnet's CGNAT range, IPv6 ULA
PRIVATE_RANGES: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("172.16.0.0/12"),
    ipaddress.ip_network("192.168.0.0/16"),
    ipaddress.ip_network("100.64.0.0/10"),
    ipaddress.ip_network("fc00::/7"),
)
DOCKER_DEFAULT_BRIDGE = ipaddress.ip_network("172.17.0.0/16")
_RFC1918 = PRIVATE_RANGES[:3]

# cold storage: never one of these folders itself …
SYSTEM_FOLDERS = frozenset(
    PurePosixPath(p) for p in (
        "/", "/etc", "/usr", "/var", "/tmp", "/root", "/home", "/boot", "/proc", "/sys", "/dev", "/run",
        "/bin", "/sbin", "/opt/homelab",
    )
)  # and every top-level /lib* (lib, lib32, lib64, libx32, libexec)
# … nor anything beneath these: virtual file systems, memory or cleaned-up folders, our project folders
_NOT_BENEATH = {
    PurePosixPath("/proc"): "a virtual file system (nothing can be stored there)",
    PurePosixPath("/sys"): "a virtual file system (nothing can be stored there)",
    PurePosixPath("/dev"): "a virtual file system (nothing can be stored there)",
    PurePosixPath("/tmp"): "a temporary folder (emptied at boot or by clean-ups: the data would be lost)",
    PurePosixPath("/run"): "in memory (emptied at boot: the data would be lost)",
    PurePosixPath("/opt/homelab"): "the deploy's own compose project folders",
}
_REMOVABLE_MEDIA = PurePosixPath("/run/media")  # udisks mounts real disks at /run/media/<user>/<disk>: fine
# a compose volume spec is `source:target[:mode]`, a list entry can be split at ',', and compose
# interpolates `$`; whitespace and control characters are mistakes in a path
_VOLUME_SPEC_BREAKERS = re.compile(r"[:,$\s\x00-\x1f\x7f]")

# secret values that are placeholders, not secrets (compared lower-case without - _ . and spaces)
PLACEHOLDER_SECRETS = frozenset({
    "changeme", "changemeplease", "changethis", "changeit", "replaceme", "password", "passw0rd",
    "yourpassword", "mypassword", "secret", "yoursecret", "mysecret", "secretkey", "example",
    "placeholder", "todo", "fixme", "tbd", "none", "null",
})

_DNS_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DNS_NAME = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})+$")
_DURATION = re.compile(r"[0-9]{1,6}[smhdwy]")  # Prometheus's and Alertmanager's durations, one unit
_EMAIL = re.compile(r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@" + rf"{_DNS_LABEL}(\.{_DNS_LABEL})*$")
_IMAGE_REF = re.compile(
    r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)


class DockerSource(StrEnum):
    """Where the Docker engine comes from."""

    AUTO = "auto"  # keep the engine the host has (docker-ce, docker.io, moby-engine); none: docker-ce
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


class SshRootLogin(StrEnum):
    """sshd's PermitRootLogin as the hardening sets it."""

    AUTO = "auto"  # `no` when the deploy logs in as another user, `prohibit-password` when as root
    NO = "no"
    PROHIBIT_PASSWORD = "prohibit-password"  # noqa: S105 - root by key only (a keyword, not a secret)
    UNCHANGED = "unchanged"  # left as the host has it


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


def is_placeholder(text: str) -> bool:
    """A value copied from an example instead of a secret: `change-me…`, `password`, `xxxx`, `<…>`, `…...`."""
    text = text.strip()
    if text.endswith(("...", "\u2026")) or (text.startswith("<") and text.endswith(">")):
        return True
    words = re.sub(r"[-_.\s]", "", text.lower())
    if words in PLACEHOLDER_SECRETS or words.startswith("changeme"):
        return True
    return re.fullmatch(r"x{3,}", words) is not None


def _unusable_address(address: IPAddress) -> str | None:
    """Why an address cannot be a host's own Tailscale address, or None."""
    if address.is_unspecified:
        return "the unspecified address (every interface)"
    if address.is_loopback:
        return "a loopback address (reachable from the host itself only)"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address == ipaddress.IPv4Address("255.255.255.255"):
        return "the broadcast address"
    return None


def _strict_network(text: str, setting_example: str) -> IPNetwork:
    """Parse a CIDR, refusing host bits: `100.64.1.7/10` names the network it would mean."""
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        loose = ipaddress.ip_network(text, strict=False)  # the caller has checked it parses
        raise ValueError(
            f"{text!r} has host bits set: it would mean {loose}; write {loose} for the range"
            f"{setting_example}"
        ) from None


def _is_private(network: IPNetwork) -> bool:
    return any(network.version == r.version and network.subnet_of(r) for r in PRIVATE_RANGES)  # type: ignore[arg-type]


def _split_list(value: Any) -> Any:
    """Environment lists are comma-separated; host data may give a list or the same string."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return value


CommaList = Annotated[list[str], NoDecode]


# restic repositories: an absolute local path, or one of the restic backends whose credentials the
# deploy can hand to restic (HOMELAB_BACKUP_CREDENTIALS); restic's gs:, swift: and rclone: read theirs
# from files or a configuration that the deploy does not write, so they are refused rather than left
# to fail on the first backup
_REPOSITORY_SCHEMES = frozenset({"local", "sftp", "rest", "s3", "b2", "azure"})
_REPOSITORY_FORMS = ("expected an absolute local path (/mnt/backup/restic), sftp:user@host:/path, "
                     "or a restic backend URL: rest:https://host:8000/, s3:host/bucket, b2:bucket:path "
                     "or azure:container:/path")


@dataclass(frozen=True)
class BackendCredentials:
    """The environment variables restic reads for one backend: each of ``required`` must be given,
    at least one of each ``one_of`` group, and nothing outside ``allowed``."""

    required: tuple[str, ...]
    one_of: tuple[tuple[str, ...], ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def allowed(self) -> tuple[str, ...]:
        return (*self.required, *(name for group in self.one_of for name in group), *self.optional)


# restic's documented variables per backend (restic.readthedocs.io, "Preparing a new repository");
# rest: the user and password go into the repository URL written on the host (every restic version
# reads them there), so that the URL in HOMELAB_BACKUP_REPOSITORY never holds a password
BACKEND_CREDENTIALS: dict[str, BackendCredentials] = {
    "s3": BackendCredentials(required=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
                             optional=("AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN")),
    "b2": BackendCredentials(required=("B2_ACCOUNT_ID", "B2_ACCOUNT_KEY")),
    "azure": BackendCredentials(required=("AZURE_ACCOUNT_NAME",),
                                one_of=(("AZURE_ACCOUNT_KEY", "AZURE_ACCOUNT_SAS"),),
                                optional=("AZURE_ENDPOINT_SUFFIX",)),
    "rest": BackendCredentials(required=(), optional=("RESTIC_REST_USERNAME", "RESTIC_REST_PASSWORD")),
}
_CREDENTIAL_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
# a password in a URL's user part: scheme://user:password@host
_URL_PASSWORD = re.compile(r"//[^/@:]*:[^@]*@")  # the password may hold '/'; it ends at the '@'
# a value is written single-quoted into a shell-read file: no quote, no control character
_CREDENTIAL_BREAKERS = re.compile(r"['\x00-\x1f\x7f]")
_REPOSITORY_BREAKERS = re.compile(r"[\s'\"$`\\\x00-\x1f\x7f]")
# systemd.time(7) calendar events: names, weekdays, dates, times, ranges, lists, repetitions, a zone
_ON_CALENDAR = re.compile(r"^[A-Za-z0-9*:,./~+ _-]{1,100}$")


def sftp_target(repository: str) -> tuple[str, int | None, str] | None:
    """``(user@host, port, path)`` of an ``sftp:`` repository, or ``None`` when it is not one:
    ``sftp:user@host:/srv/restic`` and ``sftp://user@host:2222//srv/restic`` (restic's two forms)."""
    if repository.startswith("sftp://"):
        rest = repository[len("sftp://"):]
        authority, slash, path = rest.partition("/")
        if not slash or not authority:
            return None
        port = None
        where = authority
        if re.search(r":\d+$", authority):
            where, _, number = authority.rpartition(":")
            port = int(number)
        return (where, port, "/" + path) if where and path else None
    if repository.startswith("sftp:"):
        where, colon, path = repository[len("sftp:"):].partition(":")
        return (where, None, path) if where and colon and path else None
    return None


def parse_credentials(text: str) -> dict[str, str]:
    """``NAME=VALUE`` pairs separated by whitespace, as a dict; a ``ValueError`` naming what is wrong
    and, at most, the names: never a value."""
    found: dict[str, str] = {}
    for number, word in enumerate(text.split(), start=1):
        name, equals, value = word.partition("=")
        if not equals or not _CREDENTIAL_NAME.match(name):
            raise ValueError(f"pair {number} is not NAME=VALUE (expected e.g. AWS_ACCESS_KEY_ID=… "
                             "AWS_SECRET_ACCESS_KEY=…, separated by spaces or line breaks)")
        if name in found:
            raise ValueError(f"{name} is given twice")
        if not value:
            raise ValueError(f"{name} is empty")
        if _CREDENTIAL_BREAKERS.search(value):
            raise ValueError(f"{name}'s value holds a quote or a control character, which the host's "
                             "environment file cannot keep")
        if is_placeholder(value):
            raise ValueError(f"{name} is a placeholder such as change-me: expected the real value")
        found[name] = value
    if not found:
        raise ValueError("expected NAME=VALUE pairs (or leave the setting out)")
    return found


def private_key_problem(text: str) -> str | None:
    """Why ``text`` cannot serve as the backup's SSH key (the timer runs without anyone to type a
    passphrase), or ``None``. The key's text is never part of the message."""
    import base64

    stripped = text.strip()
    first = stripped.splitlines()[0] if stripped else ""
    if not (first.startswith("-----BEGIN ") and first.endswith("PRIVATE KEY-----")):
        return ("expected a private key file (-----BEGIN OPENSSH PRIVATE KEY-----), e.g. made with "
                "`ssh-keygen -t ed25519 -N '' -f backup_key`")
    if "ENCRYPTED" in first or "Proc-Type: 4,ENCRYPTED" in stripped:
        return "the key has a passphrase: the backup timer cannot type it; expected a key without one"
    if "OPENSSH PRIVATE KEY" in first:
        body = "".join(line for line in stripped.splitlines()[1:] if "-----" not in line)
        try:
            blob = base64.b64decode(body)
        except ValueError:
            return "the OpenSSH private key is damaged (its body is not base64)"
        magic = b"openssh-key-v1\x00"
        if not blob.startswith(magic) or len(blob) < len(magic) + 4:
            return "the OpenSSH private key is damaged (no openssh-key-v1 header)"
        size = int.from_bytes(blob[len(magic):len(magic) + 4], "big")
        cipher = blob[len(magic) + 4:len(magic) + 4 + size]
        if cipher != b"none":
            return "the key has a passphrase: the backup timer cannot type it; expected a key without one"
    return None




# -- models: ComfyUI files (HOMELAB_COMFYUI_MODELS) ------------------------------------------------
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_PATH_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
_URL = re.compile(r"^https?://[^\s/?#@]+(/[^\s]*)?$")
_COMFY_FORM = ("expected FOLDER URL SHA256 [FILENAME] per entry, entries separated by commas or line breaks "
               "(e.g. `checkpoints https://host/sd_xl_base_1.0.safetensors 31e35c80…`)")


@dataclass(frozen=True)
class ComfyModel:
    """A file ComfyUI loads, downloaded to ``<models>/<folder>/<filename>`` and checked by its SHA-256."""

    folder: str  # a ComfyUI models sub-folder (checkpoints, loras, vae, …) or a relative path below models/
    url: str
    sha256: str  # lower-case hex
    filename: str

    @property
    def path(self) -> str:
        """Where it lands, relative to ComfyUI's models folder."""
        return f"{self.folder}/{self.filename}"

    def __str__(self) -> str:
        return f"{self.folder} {self.url} {self.sha256} {self.filename}"


def parse_comfy_model(text: str) -> ComfyModel:
    """One ``FOLDER URL SHA256 [FILENAME]`` entry; ``ValueError`` naming what is wrong."""
    words = text.split()
    if len(words) not in (3, 4):
        raise ValueError(f"{text.strip()!r} has {len(words)} word(s); {_COMFY_FORM}")
    folder, url, digest = words[:3]
    parts = folder.strip("/").split("/") if not folder.startswith("/") else []
    if folder.startswith("/") or ".." in folder.split("/") or not all(_PATH_PART.match(p) for p in parts):
        raise ValueError(f"folder {folder!r}: expected a ComfyUI models sub-folder such as checkpoints, "
                         "loras, vae, or a relative path below it (letters, digits, _ . + -; no leading /, "
                         "no ..)")
    if not _URL.match(url):
        raise ValueError(f"URL {url!r}: expected an http:// or https:// URL without spaces or a "
                         "user:password@ part")
    if not _HEX64.match(digest):
        raise ValueError(f"SHA256 {digest!r} for {url}: expected the file's SHA-256 as 64 hex digits "
                         "(Hugging Face shows it under the file's \"Git LFS Details\")")
    if len(words) == 4:
        filename = words[3]
    else:
        path = url.split("://", 1)[1].partition("/")[2].split("?", 1)[0].split("#", 1)[0]
        filename = path.rsplit("/", 1)[-1]  # the URL's last path segment
    if not filename or not _PATH_PART.match(filename):
        raise ValueError(f"file name {filename!r} for {url}: expected a plain file name (letters, digits, "
                         "_ . + -; no / \\ :); give it as the entry's fourth word")
    return ComfyModel("/".join(parts), url, digest.lower(), filename)


def _controller_file(value: Path | None, what: str, problem_of: Callable[[str], str | None]) -> Path | None:
    """A setting naming a file on the controller: it must exist, and ``problem_of`` its text must be None."""
    if value is None:
        return value
    path = value.expanduser()
    if not path.is_file():
        raise ValueError(f"expected the path of {what} on this machine (the controller); "
                         "there is no file there")
    problem = problem_of(path.read_text(errors="replace"))
    if problem:
        raise ValueError(problem)
    return path


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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: Any,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The usual sources, with ``.env.age`` read where ``.env`` is (decrypted in memory)."""
        try:
            dotenv_settings = secrets_at_rest.EncryptedDotEnvSource.replacing(dotenv_settings)
        except secrets_at_rest.EncryptedEnvError as error:
            raise SettingsError([str(error)]) from None
        return init_settings, env_settings, dotenv_settings, file_secret_settings

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
    tailscale_reset: bool = Field(
        default=False,
        description="Allow `tailscale up --reset` (turns off flags of a joined node the deploy does not set)",
    )
    docker_subnet: ipaddress.IPv4Network | None = Field(
        default=None, description="Subnet of the `self-hosted` Docker network; Docker picks one when absent"
    )
    ssh_password_logins: bool | None = Field(
        default=None,
        description="SSH logins by password; unset: off, unless the deploy logs in with one (then kept)",
    )
    ssh_root_login: SshRootLogin = Field(
        default=SshRootLogin.AUTO,
        description="sshd PermitRootLogin: auto (no, or prohibit-password when the deploy logs in as root), "
                    "no, prohibit-password, unchanged",
    )
    ssh_tailnet_only: bool = Field(
        default=False,
        description="SSH answers the tailnet only: the zones of every other network stop admitting it "
                    "(false: what the deploy took out is put back)",
    )

    # -- storage -----------------------------------------------------------------------------
    cold_storage_path: PurePosixPath = Field(
        default=PurePosixPath("/cold-storage"), description="Absolute path holding all service data"
    )
    min_free_disk_gb: int = Field(default=50, ge=0, description="Preflight warns below this much free space")

    # -- services ----------------------------------------------------------------------------
    services: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(selectable_services()),
        description="Which services to deploy (the monitoring set: HOMELAB_MONITORING)",
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
    docker_source: DockerSource = Field(
        default=DockerSource.AUTO,
        description="Docker package source: auto (keep the installed engine), docker-ce or distro",
    )
    # -- automatic updates (README: Security updates) -------------------------------------------
    security_updates: bool = Field(
        default=True, description="Install security updates automatically (unattended-upgrades/dnf-automatic)"
    )
    hold_packages: bool = Field(
        default=True, description="Hold the NVIDIA driver, its container toolkit and the Docker engine"
    )
    reboot: str = Field(
        default="never", description="Reboot after security updates that need it: never, or a time HH:MM"
    )
    pihole_upstream_dns: CommaList = Field(
        default_factory=lambda: ["1.1.1.1", "1.0.0.1"], description="Pi-hole's upstream resolvers"
    )
    limits: Annotated[dict[str, Limits], NoDecode] = Field(
        default_factory=dict, description="memory and CPU limits over the catalog's, as "
        "SERVICE=MEMORY[:CPUS] entries (ollama=24g:8,pihole=256m:0.5; 40% of the host; none lifts a limit)",
    )

    # -- credentials -------------------------------------------------------------------------
    pihole_password: SecretStr | None = Field(default=None, description="Pi-hole web/API password")
    npm_admin_email: str | None = Field(default=None, description="NGINX Proxy Manager admin email")
    npm_admin_password: SecretStr | None = Field(
        default=None, description="NGINX Proxy Manager admin password (8-64 characters)"
    )
    # rotation: what NPM has now, given once when the email or password above changes
    npm_admin_previous_email: str | None = Field(
        default=None, description="NGINX Proxy Manager admin email NPM has now (once, to change it)"
    )
    npm_admin_previous_password: SecretStr | None = Field(
        default=None, description="NGINX Proxy Manager admin password NPM has now (once, to change it)"
    )
    open_webui_secret_key: SecretStr | None = Field(
        default=None, description="Open WebUI session secret; generated once on the host when absent"
    )
    open_webui_admin_email: str | None = Field(
        default=None, description="Open WebUI admin email: the account the deploy creates (sign-up stays off)"
    )
    open_webui_admin_password: SecretStr | None = Field(
        default=None, description="Open WebUI admin password (8 characters to 72 bytes)"
    )
    open_webui_admin_name: str = Field(default="Admin", description="Open WebUI admin's display name")

    # -- models (Ollama's and ComfyUI's, downloaded by the deploy) --------------------------
    ollama_models: CommaList = Field(
        default_factory=list, description="Ollama models the deploy pulls ([host/][namespace/]model[:tag])"
    )
    ollama_prune: bool = Field(
        default=False, description="Delete the Ollama models that HOMELAB_OLLAMA_MODELS does not list"
    )
    ollama_insecure_registries: CommaList = Field(
        default_factory=list,
        description="private registries (host:port) Ollama pulls from over plain HTTP (Ollama's insecure)",
    )
    comfyui_models: Annotated[list[ComfyModel], NoDecode] = Field(
        default_factory=list,
        description="files ComfyUI loads, as FOLDER URL SHA256 [FILENAME] entries (commas or line breaks)",
    )

    # -- backups (restic; none without a repository) -----------------------------------------
    backup_repository: str | None = Field(
        default=None,
        description="restic repository: an absolute local path, sftp:user@host:/path, or a backend URL",
    )
    backup_password: SecretStr | None = Field(
        default=None, description="restic repository password (required with HOMELAB_BACKUP_REPOSITORY)"
    )
    backup_ssh_key: Path | None = Field(
        default=None,
        description="private key file (no passphrase) on the controller for an sftp: repository",
    )
    backup_credentials: SecretStr | None = Field(
        default=None,
        description="credentials of an s3:, b2:, azure: or rest: repository, as NAME=VALUE pairs "
        "(AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=…), separated by spaces or line breaks",
    )
    backup_schedule: str = Field(default="daily", description="systemd OnCalendar of the backup timer")
    backup_keep_daily: int = Field(default=7, ge=0, description="daily snapshots kept per service")
    backup_keep_weekly: int = Field(default=4, ge=0, description="weekly snapshots kept per service")
    backup_keep_monthly: int = Field(default=6, ge=0, description="monthly snapshots kept per service")
    backup_classes: Annotated[list[BackupClass], NoDecode] = Field(
        default_factory=lambda: [BackupClass.CRITICAL, BackupClass.HIGH, BackupClass.MEDIUM],
        description="backup classes of the catalog's data folders that are backed up",
    )
    backup_max_age_hours: int = Field(
        default=48, ge=1, description="preflight and verification warn when the last backup is older"
    )

    # -- HTTPS on the subdomains (README: HTTPS) ------------------------------------------------
    tls: TlsMode = Field(
        default=TlsMode.OFF,
        description="HTTPS on the subdomains: off (plain HTTP), or dns (one wildcard certificate by the "
        "ACME DNS-01 challenge, requested by NGINX Proxy Manager)",
    )
    tls_email: str | None = Field(
        default=None,
        description="the ACME account's email: NPM 2.13+ uses its admin's, so it is HOMELAB_NPM_ADMIN_EMAIL "
        "(another value is refused)",
    )
    tls_dns_provider: str | None = Field(
        default=None,
        description="the DNS provider's key in NPM's certbot plugin list (cloudflare, rfc2136, …)",
    )
    tls_dns_credentials: SecretStr | None = Field(
        default=None,
        description="the DNS provider's credentials file content (dns_cloudflare_api_token = …); "
        "required with dns except route53",
    )
    tls_propagation_seconds: int | None = Field(
        default=None, ge=1, le=3600,
        description="seconds certbot waits for the TXT record to propagate (the plugin's default when unset)",
    )
    tls_acme_server: str = Field(
        default=LETSENCRYPT_PRODUCTION,
        description="the ACME server's directory URL (Let's Encrypt's by default)",
    )
    tls_ca_file: Path | None = Field(
        default=None,
        description="PEM bundle (on the controller) of the roots to trust for a private ACME server: its "
        "HTTPS directory and the certificates it issues",
    )
    tls_force_ssl: bool = Field(default=True, description="redirect plain HTTP to HTTPS")
    tls_http2: bool = Field(default=True, description="HTTP/2 on the subdomains")
    tls_hsts: bool = Field(default=True, description="HSTS on the subdomains (only with force-SSL)")
    tls_hsts_subdomains: bool = Field(default=False, description="HSTS includeSubDomains")

    # -- monitoring (README: Monitoring) ---------------------------------------------------------
    monitoring: bool = Field(
        default=False,
        description="Prometheus, Alertmanager, Grafana and the blackbox exporter on the monitoring host, "
        "the node exporter and cAdvisor on every host, the DCGM exporter on GPU hosts",
    )
    monitoring_webhook_url: SecretStr | None = Field(
        default=None,
        description="where Alertmanager posts alerts (ntfy, Discord, Slack, Gotify: a webhook URL); "
        "unset: alerts reach nobody (preflight warns)",
    )
    grafana_admin_password: SecretStr | None = Field(
        default=None, description="Grafana's admin password (required with HOMELAB_MONITORING; 8+ characters)"
    )
    monitoring_retention: str = Field(default="30d", description="how long Prometheus keeps its metrics")
    monitoring_scrape_interval: str = Field(default="30s", description="how often Prometheus scrapes")
    monitoring_alert_for: str = Field(
        default="5m", description="how long a condition lasts before its alert fires"
    )
    monitoring_group_wait: str = Field(
        default="30s", description="Alertmanager: wait before the first notification of new alerts"
    )
    monitoring_group_interval: str = Field(
        default="5m", description="Alertmanager: notify a group's changes (resolved alerts too) after this"
    )
    monitoring_repeat_interval: str = Field(
        default="4h", description="Alertmanager: send a firing alert again after this long"
    )
    alert_gpu_temperature_c: int = Field(default=85, ge=40, le=120, description="GPU temperature alert (°C)")
    alert_gpu_memory_percent: int = Field(
        default=95, ge=1, le=100, description="GPU memory alert (% of the GPU's memory in use)"
    )
    alert_restarts: int = Field(
        default=3, ge=1, description="container restart alert: more restarts than this within 15 minutes"
    )

    # -- images (pinned; `latest` would make a re-run change what runs) ---------------------
    image_nginx_proxy_manager: str = Field(default=CATALOG[Service.NGINX_PROXY_MANAGER].image)
    image_pihole: str = Field(default=CATALOG[Service.PIHOLE].image)
    image_ollama: str = Field(default=CATALOG[Service.OLLAMA].image)
    image_comfyui: str = Field(default=CATALOG[Service.COMFYUI].image)
    image_open_webui: str = Field(default=CATALOG[Service.OPEN_WEBUI].image)
    image_prometheus: str = Field(default=CATALOG[Service.PROMETHEUS].image)
    image_alertmanager: str = Field(default=CATALOG[Service.ALERTMANAGER].image)
    image_blackbox_exporter: str = Field(default=CATALOG[Service.BLACKBOX_EXPORTER].image)
    image_grafana: str = Field(default=CATALOG[Service.GRAFANA].image)
    image_node_exporter: str = Field(default=CATALOG[Service.NODE_EXPORTER].image)
    image_cadvisor: str = Field(default=CATALOG[Service.CADVISOR].image)
    image_dcgm_exporter: str = Field(default=CATALOG[Service.DCGM_EXPORTER].image)

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
        if not isinstance(value, list):
            return value
        networks: list[IPNetwork] = []
        for item in value:
            text = str(item).strip()
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ValueError(
                    f"{text!r} is not an IPv4/IPv6 address or CIDR "
                    "(expected e.g. 100.64.0.0/10, 100.101.102.103 or fd7a:115c:a1e0::/48)"
                ) from None
            one = f" or {text.split('/')[0]} for that one address" if "/" in text else ""
            network = _strict_network(text, one)
            if network.prefixlen == 0:
                raise ValueError(
                    f"{text!r} is the default route: it admits every address; expected Tailscale peers "
                    "(100.64.0.0/10, fd7a:115c:a1e0::/48 or single addresses)"
                )
            if network.num_addresses > 1 and not _is_private(network):
                raise ValueError(
                    f"{text!r} is a public range wider than a single host; expected private ranges "
                    "(the tailnet's 100.64.0.0/10 and fd7a:115c:a1e0::/48, 10.0.0.0/8, 172.16.0.0/12, "
                    "192.168.0.0/16, fc00::/7) or single addresses"
                )
            if network not in networks:  # duplicates (100.64.0.1 and 100.64.0.1/32 too) are dropped
                networks.append(network)
        # CIDR ranges overlap only by containment: the narrower entry admits nothing more, and listing
        # it usually means someone believes access is narrower than it is
        for inner in networks:
            for outer in networks:
                if inner != outer and inner.version == outer.version and inner.subnet_of(outer):  # type: ignore[arg-type]
                    raise ValueError(
                        f"{str(inner)!r} lies inside {str(outer)!r}, which already admits it; "
                        f"expected ranges that do not overlap (list only {outer}, or narrow it)"
                    )
        return networks

    @field_validator("tailscale_allowed_ips")
    @classmethod
    def _allowed_ips_not_empty(cls, value: list[IPNetwork]) -> list[IPNetwork]:
        if not value:
            raise ValueError("expected at least one address or CIDR")
        return value

    @field_validator("tailscale_ip", mode="before")
    @classmethod
    def _tailscale_ip(cls, value: Any) -> Any:
        if value is None:
            return value
        try:
            address = ipaddress.ip_address(str(value).strip())
        except ValueError:
            return value  # the IPv4 type says what is wrong
        problem = _unusable_address(address)
        if problem:
            raise ValueError(f"it is {problem}; expected the host's own Tailscale IPv4, e.g. 100.64.0.10")
        return value

    @field_validator("docker_subnet", mode="before")
    @classmethod
    def _docker_subnet(cls, value: Any) -> Any:
        if value is None or isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
            text = None if value is None else str(value)
        else:
            text = str(value).strip()
        if text is None:
            return value
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return value  # the IPv4 network type says what is wrong
        if network.version != 4:
            raise ValueError("expected an IPv4 subnet such as 172.30.0.0/16")
        network = _strict_network(text, "")
        example = "; expected a private subnet such as 172.30.0.0/16"
        if network.prefixlen == 0:
            raise ValueError(f"it is every address (it overlaps every route of the host){example}")
        if network.overlaps(TAILNET_RANGES[0]):
            raise ValueError(f"it overlaps the tailnet's {TAILNET_RANGES[0]}: peers would be "
                             f"unreachable from the containers{example}")
        if network.overlaps(DOCKER_DEFAULT_BRIDGE):
            raise ValueError(f"it overlaps {DOCKER_DEFAULT_BRIDGE}, Docker's default bridge "
                             f"(docker0){example}")
        if not any(network.subnet_of(r) for r in _RFC1918):  # type: ignore[arg-type]
            raise ValueError(f"it is not a private range (inside 10.0.0.0/8, 172.16.0.0/12 or "
                             f"192.168.0.0/16){example}")
        return network

    @field_validator("cold_storage_path", mode="before")
    @classmethod
    def _cold_storage_path(cls, value: Any) -> Any:
        if not isinstance(value, str | PurePosixPath | Path):
            return value
        text = str(value)
        bad = _VOLUME_SPEC_BREAKERS.search(text)
        if bad:
            shown = {"\n": "a line break", "\t": "a tab", " ": "a space"}.get(bad.group(), repr(bad.group()))
            raise ValueError(f"expected a path without {shown}: ':' ',' '$', whitespace and control "
                             "characters break a compose volume spec (source:target)")
        if not text.startswith("/"):
            raise ValueError("expected an absolute path such as /cold-storage")
        # `//x` is `/x`; PurePosixPath drops `.` parts and a trailing /
        path = PurePosixPath("/" + text.lstrip("/"))
        if ".." in path.parts:
            raise ValueError("expected a path without '..' (write the folder it leads to)")
        dedicated = "expected a dedicated folder such as /cold-storage, /srv/homelab or /mnt/<disk>/homelab"
        top = path.parts[1] if len(path.parts) > 1 else ""
        if path in SYSTEM_FOLDERS or (len(path.parts) == 2 and re.fullmatch(r"lib(\d*|x\d+|exec)", top)):
            raise ValueError(f"{path} is a system folder; {dedicated} (a sub-folder such as "
                             "/var/lib/homelab is fine)")
        on_a_disk = path.is_relative_to(_REMOVABLE_MEDIA) and len(path.parts) > 4  # /run/media/<user>/<disk>
        for folder, why in _NOT_BENEATH.items():
            if path.is_relative_to(folder) and not on_a_disk:
                raise ValueError(f"{path} is under {folder}, {why}; {dedicated}")
        return path

    @field_validator("services", mode="before")
    @classmethod
    def _services(cls, value: Any) -> Any:
        value = _split_list(value)
        if isinstance(value, list):
            monitoring = [str(item) for item in value if str(item) in set_members("monitoring")]
            if monitoring:
                raise ValueError(
                    f"{', '.join(monitoring)}: part of the monitoring set, which HOMELAB_MONITORING=true "
                    "turns on as a whole; expected a comma-separated subset of "
                    + ", ".join(selectable_services())
                )
            unknown = [str(item) for item in value if str(item) not in selectable_services()]
            if unknown:
                raise ValueError(
                    f"unknown service(s) {', '.join(unknown)}; expected a comma-separated subset of "
                    + ", ".join(selectable_services())
                )
            # keep the catalog's order, drop duplicates
            return [name for name in selectable_services() if name in {str(item) for item in value}]
        return value

    @field_validator("monitoring_retention", "monitoring_scrape_interval", "monitoring_alert_for",
                     "monitoring_group_wait", "monitoring_group_interval", "monitoring_repeat_interval")
    @classmethod
    def _duration(cls, value: str) -> str:
        text = value.strip()
        if not _DURATION.fullmatch(text) or not any(ch != "0" for ch in text if ch.isdigit()):
            raise ValueError("expected a duration such as 30s, 5m, 4h, 30d or 1w (a whole number and one "
                             "of s, m, h, d, w, y)")
        return text

    @field_validator("monitoring_webhook_url")
    @classmethod
    def _webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        text = value.get_secret_value().strip()
        if not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", text):  # the value is a secret: never shown
            raise ValueError("expected an http:// or https:// URL (ntfy, Discord, Slack, Gotify webhooks); "
                             "the value is not shown")
        return SecretStr(text)

    @field_validator("grafana_admin_password")
    @classmethod
    def _grafana_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 8:
            raise ValueError("expected at least 8 characters")
        return value

    @field_validator("limits", mode="before")
    @classmethod
    def _limits(cls, value: Any) -> dict[str, Limits]:
        return parse_limits(value)

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

    @field_validator("reboot")
    @classmethod
    def _reboot(cls, value: str) -> str:
        text = value.strip().lower()
        if text != "never" and not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", text):
            raise ValueError("expected never (the default: a reboot is left to you) or a 24-hour time "
                             "HH:MM such as 03:30 (rebooted then, when an update needs it)")
        return text

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("expected an IANA time zone such as Europe/Berlin or UTC") from None
        return value

    @field_validator("npm_admin_email", "npm_admin_previous_email", "open_webui_admin_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value != value.lower():
            raise ValueError(
                "expected a lower-case address: NGINX Proxy Manager can never log in one with capitals, "
                "and Open WebUI keeps every address in lower case"
            )
        if not _EMAIL.match(value):
            raise ValueError("expected an email address such as admin@home.example.com")
        return value

    @field_validator("npm_admin_password", "npm_admin_previous_password")
    @classmethod
    def _npm_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not 8 <= len(value.get_secret_value()) <= 64:
            raise ValueError("expected 8 to 64 characters (NGINX Proxy Manager's own rule)")
        return value

    @field_validator("open_webui_admin_password")
    @classmethod
    def _open_webui_password(cls, value: SecretStr | None) -> SecretStr | None:
        # Open WebUI hashes with bcrypt, which takes at most 72 bytes (its sign-up refuses more)
        if value is not None and not (8 <= len(value.get_secret_value())
                                      and len(value.get_secret_value().encode()) <= 72):
            raise ValueError("expected 8 characters to 72 bytes (bcrypt, Open WebUI's hash, reads no more)")
        return value

    @field_validator("open_webui_admin_name")
    @classmethod
    def _open_webui_name(cls, value: str) -> str:
        if not value.strip() or any(ord(c) < 32 for c in value) or len(value) > 100:
            raise ValueError("expected a display name of 1 to 100 characters on one line")
        return value.strip()

    @field_validator("pihole_password", "open_webui_secret_key", "tailscale_authkey", "npm_admin_password",
                     "open_webui_admin_password")
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
        if is_placeholder(text):
            raise ValueError(
                "expected a real secret, not a placeholder such as .env.example's change-me "
                "(choose your own value)"
            )
        return value

    @field_validator("tls_email")
    @classmethod
    def _tls_email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value.lower()):
            raise ValueError("expected an email address such as admin@home.example.com")
        return value.lower() if value is not None else value

    @field_validator("tls_dns_provider")
    @classmethod
    def _dns_provider(cls, value: str | None) -> str | None:
        if value is None or value in DNS_PROVIDERS:
            return value
        close = difflib.get_close_matches(value.strip().lower(), DNS_PROVIDERS, n=3, cutoff=0.6)
        hint = (f"did you mean {' or '.join(close)}?" if close
                else "see NPM's DNS provider list (README: HTTPS on the subdomains)")
        raise ValueError(f"not a DNS provider NGINX Proxy Manager knows; {hint}")

    @field_validator("tls_dns_credentials")
    @classmethod
    def _dns_credentials(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("expected the provider's credentials file content, "
                             "e.g. dns_cloudflare_api_token = …")
        return value

    @field_validator("tls_acme_server")
    @classmethod
    def _acme_server(cls, value: str) -> str:
        if not re.fullmatch(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s]*)?", value.strip()):
            raise ValueError("expected the HTTPS URL of an ACME directory, e.g. " + LETSENCRYPT_PRODUCTION)
        return value.strip()

    @field_validator("tls_ca_file")
    @classmethod
    def _tls_ca_file(cls, value: Path | None) -> Path | None:
        return _controller_file(value, "a PEM file", ca_bundle_problem)

    # every image setting (a service declared without a field of its own runs its pinned image)
    @field_validator(*(item.image_setting for item in CATALOG.values()), check_fields=False)
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

    @field_validator("backup_repository", mode="before")
    @classmethod
    def _backup_repository(cls, value: Any) -> Any:
        if value is None:
            return value
        text = str(value).strip()
        if not text:
            return None
        if _REPOSITORY_BREAKERS.search(text):
            raise ValueError("expected a repository without whitespace, quotes, '$', '`' or '\\' "
                             f"(it is written into a shell-read environment file); {_REPOSITORY_FORMS}")
        if text.startswith("/"):
            path = PurePosixPath(text)
            if ".." in path.parts:
                raise ValueError(f"expected a path without '..'; {_REPOSITORY_FORMS}")
            for folder in (PurePosixPath("/tmp"), PurePosixPath("/run"), PurePosixPath("/proc"),
                           PurePosixPath("/sys"), PurePosixPath("/dev")):
                if path.is_relative_to(folder) and not path.is_relative_to(_REMOVABLE_MEDIA):
                    raise ValueError(f"{path} is under {folder}, which does not keep data; expected a "
                                     "folder on a second disk such as /mnt/backup/restic")
            if path == PurePosixPath("/"):
                raise ValueError(f"expected a folder of its own; {_REPOSITORY_FORMS}")
            return str(path)
        scheme = text.split(":", 1)[0]
        if ":" not in text or scheme not in _REPOSITORY_SCHEMES:
            backends = ", ".join(sorted(_REPOSITORY_SCHEMES))
            raise ValueError(f"{_REPOSITORY_FORMS} (restic backends: {backends})")
        if scheme == "sftp" and sftp_target(text) is None:
            raise ValueError("expected sftp:user@host:/path or sftp://user@host:port//path")
        if scheme == "rest" and _URL_PASSWORD.search(text):
            raise ValueError("expected no password in the URL (this setting is shown in plans and "
                             "messages): give it as HOMELAB_BACKUP_CREDENTIALS='RESTIC_REST_USERNAME=… "
                             "RESTIC_REST_PASSWORD=…' and the URL without it")
        return text

    @field_validator("backup_credentials")
    @classmethod
    def _backup_credentials(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        parse_credentials(value.get_secret_value())  # raises with the names only, never a value
        return value

    @field_validator("backup_schedule")
    @classmethod
    def _backup_schedule(cls, value: str) -> str:
        text = value.strip()
        if not text or not _ON_CALENDAR.match(text):
            raise ValueError("expected a systemd OnCalendar expression such as daily, weekly, "
                             "'*-*-* 03:30:00' or 'Mon..Fri 02:00' (check one with "
                             "`systemd-analyze calendar`)")
        return text

    @field_validator("backup_classes", mode="before")
    @classmethod
    def _backup_classes(cls, value: Any) -> Any:
        value = _split_list(value)
        if not isinstance(value, list):
            return value
        names = [str(getattr(item, "value", item)).strip().lower() for item in value]
        allowed = [item.value for item in BackupClass if item is not BackupClass.NONE]
        unknown = [name for name in names if name not in allowed]
        if unknown:
            raise ValueError(f"unknown backup class(es) {', '.join(unknown)}; expected a comma-separated "
                             f"subset of {', '.join(allowed)} (none: logs and caches are never backed up)")
        if not names:
            raise ValueError(f"expected at least one of {', '.join(allowed)}")
        return [item for item in allowed if item in names]  # the catalog's order, no duplicates

    @field_validator("backup_ssh_key")
    @classmethod
    def _backup_ssh_key(cls, value: Path | None) -> Path | None:
        return _controller_file(value, "a private key file", private_key_problem)

    @field_validator("backup_password")
    @classmethod
    def _backup_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        text = value.get_secret_value()
        if not text.strip():
            raise ValueError("expected a non-empty secret")
        if "\n" in text or "\r" in text:
            raise ValueError("expected no line break (restic reads the first line of its password file)")
        if is_placeholder(text):
            raise ValueError(
                "expected a real secret, not a placeholder such as .env.example's change-me "
                "(choose your own value)"
            )
        return value

    # -- models ------------------------------------------------------------------------------
    @field_validator("ollama_models", mode="before")
    @classmethod
    def _ollama_models(cls, value: Any) -> Any:
        value = _split_list(value)
        if not isinstance(value, list):
            return value
        found: dict[str, str] = {}
        for item in value:
            name = parse_model_name(str(item))  # raises naming the part that is wrong
            found.setdefault(name.key, name.shown)  # llama3.2 and LLaMA3.2:latest are one model
        return list(found.values())

    @field_validator("ollama_insecure_registries", mode="before")
    @classmethod
    def _insecure_registries(cls, value: Any) -> Any:
        value = _split_list(value)
        if not isinstance(value, list):
            return value
        hosts = []
        for item in value:
            text = str(item).strip().lower()
            if "/" in text or not re.fullmatch(r"[a-z0-9_][a-z0-9_.-]*(:\d{1,5})?", text):
                raise ValueError(f"{text!r}: expected a registry host as it starts a model name (host or "
                                 "host:port, e.g. registry.lan:5000)")
            if text == DEFAULT_HOST:
                raise ValueError(f"{DEFAULT_HOST} is Ollama's public registry: its models are never pulled "
                                 "over plain HTTP; list private registries only")
            if text not in hosts:
                hosts.append(text)
        return hosts

    @field_validator("comfyui_models", mode="before")
    @classmethod
    def _comfyui_models(cls, value: Any) -> Any:
        if isinstance(value, str):
            entries = [entry for entry in re.split(r"[,\n]", value) if entry.strip()]
        elif isinstance(value, list | tuple):
            entries = [entry if isinstance(entry, ComfyModel) else str(entry) for entry in value]
        else:
            return value
        models: list[ComfyModel] = []
        for number, entry in enumerate(entries, start=1):
            try:
                model = entry if isinstance(entry, ComfyModel) else parse_comfy_model(entry)
            except ValueError as error:
                raise ValueError(f"entry {number}: {error}") from None
            clash = next((m for m in models if m.path == model.path), None)
            if clash is not None and clash != model:
                raise ValueError(f"entry {number}: {model.path} is already the target of {clash.url}; "
                                 "expected one entry per file (give another FILENAME)")
            if clash is None:
                models.append(model)
        return models

    def _model_problems(self) -> list[str]:
        """What the model settings need of each other."""
        problems = []
        if self.ollama_prune and not self.ollama_models:
            problems.append("HOMELAB_OLLAMA_PRUNE: true without HOMELAB_OLLAMA_MODELS would delete every "
                            "model Ollama holds; list the models to keep (or delete them with `ollama rm`)")
        hosts = {parse_model_name(name).host.lower() for name in self.ollama_models}
        unused = [host for host in self.ollama_insecure_registries if host not in hosts]
        if unused:
            problems.append(f"HOMELAB_OLLAMA_INSECURE_REGISTRIES: {', '.join(unused)}: no model in "
                            "HOMELAB_OLLAMA_MODELS comes from it (a model of a private registry is written "
                            "host:port/namespace/model:tag)")
        return problems

    def ollama_insecure(self, model: str) -> bool:
        """Whether Ollama pulls ``model`` over plain HTTP (its registry is listed as insecure)."""
        return parse_model_name(model).host.lower() in self.ollama_insecure_registries

    # -- derived -----------------------------------------------------------------------------
    def image_for(self, service: str) -> str:
        """The image a service runs: its HOMELAB_IMAGE_<NAME> setting, else the catalog's pinned one
        (a service whose declaration has no setting of its own runs the pinned image)."""
        item = CATALOG[service]
        return getattr(self, item.image_setting, None) or item.image

    def missing_required(self) -> list[str]:
        """One line per setting an enabled service requires but nobody gave (the catalog's
        ``required_settings``), as ``field: message``."""
        found = [
            f"{env_name(name)}: required while {service} is in HOMELAB_SERVICES"
            if CATALOG[service].enabled_by is None else
            f"{env_name(name)}: required while {env_name(CATALOG[service].enabled_by)} is true ({service})"
            for service in self.enabled_services
            for name in CATALOG[service].required_settings
            if getattr(self, name) is None
        ]
        return found + self._backup_problems() + self._model_problems() + self._tls_problems()

    def _tls_problems(self) -> list[str]:
        """What HOMELAB_TLS=dns needs of the other settings."""
        if self.tls is not TlsMode.DNS:
            return []
        problems = []
        if self.tls_dns_provider is None:
            problems.append("HOMELAB_TLS_DNS_PROVIDER: required while HOMELAB_TLS is dns: the key of your "
                            "DNS provider in NPM's certbot plugin list (cloudflare, route53, rfc2136, …)")
        elif self.tls_dns_credentials is None and self.tls_dns_provider not in NO_CREDENTIALS_FILE:
            problems.append(f"HOMELAB_TLS_DNS_CREDENTIALS: required while HOMELAB_TLS is dns with the "
                            f"{self.tls_dns_provider} provider: its credentials file content (an API token "
                            "allowed to edit the zone's TXT records)")
        admin = self.npm_admin_email
        if self.tls_email is not None and self.tls_email != admin:
            problems.append(f"HOMELAB_TLS_EMAIL: {self.tls_email!r} differs from HOMELAB_NPM_ADMIN_EMAIL "
                            f"{admin!r}: NGINX Proxy Manager (2.13+) registers the ACME account with its "
                            "admin's email; set HOMELAB_NPM_ADMIN_EMAIL to the address the ACME server "
                            "should write to, and leave HOMELAB_TLS_EMAIL out")
        return problems

    @property
    def tls_ca_bundle(self) -> str | None:
        """The text of HOMELAB_TLS_CA_FILE (``None`` without one)."""
        return None if self.tls_ca_file is None else self.tls_ca_file.read_text()

    def _backup_problems(self) -> list[str]:
        """What a configured backup repository needs besides itself."""
        if self.backup_repository is None:
            given = [name for name in ("backup_password", "backup_ssh_key", "backup_credentials")
                     if getattr(self, name) is not None]
            return [f"{env_name(name)}: given without HOMELAB_BACKUP_REPOSITORY: set the repository too, "
                    "or leave it out" for name in given]
        problems = []
        if self.backup_password is None:
            problems.append("HOMELAB_BACKUP_PASSWORD: required while HOMELAB_BACKUP_REPOSITORY is set "
                            "(the restic repository's password; keep a copy off this server)")
        sftp = self.backup_repository.startswith("sftp:")
        if sftp and self.backup_ssh_key is None:
            problems.append(f"HOMELAB_BACKUP_SSH_KEY: required with the sftp repository "
                            f"{self.backup_repository!r}: the path of a private key (no passphrase) on this "
                            "machine that the repository's host accepts")
        elif not sftp and self.backup_ssh_key is not None:
            problems.append(f"HOMELAB_BACKUP_SSH_KEY: only used with an sftp: repository, not with "
                            f"{self.backup_repository!r}: leave it out")
        problems += self._credential_problems()
        if self.backup_keep_daily + self.backup_keep_weekly + self.backup_keep_monthly == 0:
            problems.append("HOMELAB_BACKUP_KEEP_DAILY, _WEEKLY, _MONTHLY: all 0: expected at least one "
                            "above 0 (else every snapshot would be pruned)")
        if self.backup_repository.startswith("/"):
            repository = PurePosixPath(self.backup_repository)
            cold = self.cold_storage_path
            if repository.is_relative_to(cold) or cold.is_relative_to(repository):
                problems.append(f"HOMELAB_BACKUP_REPOSITORY: {self.backup_repository!r} overlaps the "
                                f"cold-storage path {cold}: a backup must live apart from the data it "
                                "keeps (another disk, or sftp: to another machine)")
        return problems

    def _credential_problems(self) -> list[str]:
        """The credentials against what the repository's backend reads (names only, never a value)."""
        scheme = self.backup_scheme
        backend = BACKEND_CREDENTIALS.get(scheme or "")
        given = self.backup_backend_environment()
        shown = _shown("backup_repository", self.backup_repository)
        if backend is None:
            if not given:
                return []
            return ["HOMELAB_BACKUP_CREDENTIALS: only used with an s3:, b2:, azure: or rest: repository, not "
                    f"with {shown}: leave it out"]
        problems = []
        unknown = [name for name in given if name not in backend.allowed]
        if unknown:
            problems.append(f"HOMELAB_BACKUP_CREDENTIALS: {', '.join(unknown)} not read by restic's {scheme} "
                            f"backend; expected {', '.join(backend.allowed)}")
        missing = [name for name in backend.required if name not in given]
        missing += [" or ".join(group) for group in backend.one_of if not set(group) & set(given)]
        if missing:
            problems.append(f"HOMELAB_BACKUP_CREDENTIALS: {', '.join(missing)} required with the {scheme} "
                            f"repository {shown} (NAME=VALUE "
                            "pairs separated by spaces or line breaks)")
        if scheme == "rest" and given and "@" in self.backup_repository.split("//", 1)[-1].split("/", 1)[0]:
            problems.append(f"HOMELAB_BACKUP_CREDENTIALS: the repository {shown} names a user already: give "
                            "the user only as RESTIC_REST_USERNAME (the URL without user@)")
        if scheme == "rest" and ("RESTIC_REST_USERNAME" in given) != ("RESTIC_REST_PASSWORD" in given):
            problems.append("HOMELAB_BACKUP_CREDENTIALS: RESTIC_REST_USERNAME and RESTIC_REST_PASSWORD go "
                            "together (the REST server's htpasswd user)")
        return problems

    @property
    def backup_scheme(self) -> str | None:
        """The repository's restic backend: ``local``, ``sftp``, ``s3``, …; ``None`` without one."""
        if self.backup_repository is None:
            return None
        return "local" if self.backup_repository.startswith("/") else self.backup_repository.split(":", 1)[0]

    def backup_backend_environment(self) -> dict[str, str]:
        """The repository backend's credentials, NAME -> value (empty without any)."""
        if self.backup_credentials is None:
            return {}
        return parse_credentials(self.backup_credentials.get_secret_value())

    @property
    def backups(self) -> bool:
        """Whether backups are configured (a repository is set)."""
        return self.backup_repository is not None

    def enabled(self, service: str) -> bool:
        return service in self.enabled_services

    @property
    def enabled_services(self) -> list[str]:
        """The services turned on, in the catalog's order: those of HOMELAB_SERVICES, and each set whose
        setting is on (HOMELAB_MONITORING)."""
        return [
            name for name, item in CATALOG.items()
            if (name in self.services if item.enabled_by is None else getattr(self, item.enabled_by))
        ]


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
    if isinstance(value, dict):
        value = ",".join(f"{key}={item}" for key, item in value.items())
    value = _plain(value)
    if isinstance(value, str):  # a URL's password is a secret wherever it was put
        value = _URL_PASSWORD.sub(lambda m: m.group(0).split(":", 1)[0] + ":***@", value)
    return repr(value)


def _problems(error: ValidationError, overrides: Mapping[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    for item in error.errors(include_url=False, include_context=False, include_input=True):
        name = str(item["loc"][0]) if item["loc"] else ""
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            problems.append(f"{env_name(name)}: missing; it is required ({_describe(name)})")
            continue
        source = f" (from {where} `{name}`)" if name in overrides else ""
        value = overrides.get(name, item.get("input"))
        problems.append(f"{env_name(name)}{source}: {_shown(name, value)} is not valid: {message}")
    return problems


def _describe(name: str) -> str:
    return HomelabSettings.model_fields[name].description or "see README"


_DEFAULT_ENV_FILE = object()
ENV_FILE_VARIABLE = secrets_at_rest.ENV_FILE_VARIABLE


def default_env_file() -> Path:
    """The settings file read when none is given: ``$HOMELAB_ENV_FILE``, else the repository's ``.env``
    (each read as ``<file>.age`` when only that exists)."""
    named = os.environ.get(ENV_FILE_VARIABLE, "").strip()
    if not named:
        return REPO_ROOT / ".env"
    path = Path(named).expanduser()
    if path.suffix == ".age":
        raise SettingsError([f"{ENV_FILE_VARIABLE}={named}: name the plain file's path "
                             f"({path.with_suffix('')}); its .age beside it is read when only that exists"])
    if not path.is_file() and not secrets_at_rest.encrypted_path(path).is_file():
        raise SettingsError([f"{ENV_FILE_VARIABLE}={named}: neither that file nor "
                             f"{secrets_at_rest.encrypted_path(path).name} beside it exists"])
    return path
# variables of the lab inventory (inventories/lab.py), not settings
_NOT_SETTINGS_PREFIX = ENV_PREFIX + "LAB_"


def _as_environment_text(value: Any) -> Any:
    """A value from pyinfra data as the environment would give it: pyinfra turns `--data` numbers into
    ints and true/false into bools; a password of eight digits must stay a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return [_as_environment_text(item) for item in value]
    return value


def unknown_variables(env_file: Path | None | object = _DEFAULT_ENV_FILE) -> list[str]:
    """One line per ``HOMELAB_*`` variable in the environment or the ``.env`` file that is no setting."""
    known = {env_name(name) for name in SETTING_NAMES}
    seen: dict[str, str] = {}
    for key in os.environ:
        if key.upper().startswith(ENV_PREFIX) and key.upper() not in (*secrets_at_rest.VARIABLES,
                                                                       ENV_FILE_VARIABLE, READ_AHEAD):
            seen.setdefault(key.upper(), "the environment")
    path = default_env_file() if env_file is _DEFAULT_ENV_FILE else env_file
    if isinstance(path, str | Path):
        try:  # `.env`, or `.env.age` decrypted
            values = secrets_at_rest.env_file_values(path)
        except secrets_at_rest.EncryptedEnvError as error:
            raise SettingsError([str(error)]) from None
        where = str(secrets_at_rest.encrypted_path(path) if not Path(path).is_file() else path)
        for key in values:
            if key.upper().startswith(ENV_PREFIX):
                seen.setdefault(key.upper(), where)
    problems = []
    for key, where in seen.items():
        if key in known or key.startswith(_NOT_SETTINGS_PREFIX):
            continue
        # compared without the common prefix, which would make every name look alike
        close = difflib.get_close_matches(
            key.removeprefix(ENV_PREFIX), sorted(name.upper() for name in SETTING_NAMES), n=1, cutoff=0.6
        )
        hint = f"did you mean {env_name(close[0])}?" if close else "see README.md (Configuration)"
        problems.append(f"{key} (from {where}): is not a setting; {hint}")
    return problems


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    where: str = "host data",
    env_file: Path | None | object = _DEFAULT_ENV_FILE,
) -> HomelabSettings:
    """Build the settings from ``overrides`` (pyinfra data), the environment and ``.env``.

    ``env_file`` replaces the repository's ``.env`` or ``$HOMELAB_ENV_FILE`` (``None``: read no file).
    Override values are read as the environment's text is (``12345678`` is a valid password, ``5`` a
    valid number), and a ``HOMELAB_*`` variable that is no setting is a problem too (a typo would be
    ignored otherwise).
    Raises :class:`SettingsError` with one line per problem; secrets are never part of it.
    """
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    if env_file is _DEFAULT_ENV_FILE:
        env_file = default_env_file()
    extra: dict[str, Any] = {"_env_file": env_file}
    as_text = {key: _as_environment_text(value) for key, value in overrides.items()}
    unknown = unknown_variables(env_file)
    try:
        settings = HomelabSettings(**as_text, **extra)
    except ValidationError as error:
        raise SettingsError(_problems(error, overrides, where) + unknown) from None
    problems = settings.missing_required() + unknown
    if problems:
        raise SettingsError(problems)
    return settings


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


def main(argv: list[str] | None = None) -> int:
    """``python -m deploys.library.settings [check]``: check the settings and print them (secrets masked);
    ``… encrypt`` / ``… keygen``: settings encrypted at rest (deploys/library/secrets_at_rest.py)."""
    import sys

    argv = argv or []
    command = argv[:1]
    if command in (["encrypt"], ["keygen"], ["-h"], ["--help"]):
        return secrets_at_rest.main(argv)
    if command not in ([], ["check"]):
        print(f"unknown command {command[0]!r}: use check (the default), encrypt or keygen", file=sys.stderr)
        return 2
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
    import sys

    raise SystemExit(main(sys.argv[1:]))
