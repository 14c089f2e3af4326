"""A service's declaration (``catalog.py``) and its host's plan (``plan.py``) rendered as compose files.

Secrets never enter a compose document: it refers to ``${NAME}``, and the value lives only in the
project's ``.env`` (mode 0600), which ``docker compose`` reads for interpolation. A secret whose setting
is absent and whose declaration allows it is generated once on the host, in a file of the project
folder that the compose document lists as an ``env_file``.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import yaml

from deploys.library.catalog import (
    CATALOG,
    MANAGED_BY,
    MANAGED_HEADER,
    MANAGED_LABEL,
    NETWORK,
    FromSetting,
    OnGpu,
    Secret,
    ServiceUrl,
    SubdomainUrl,
    Volume,
    WhenTls,
)
from deploys.library.errors import PlanError
from deploys.library.plan import HostPlan
from deploys.library.resources import show_memory
from deploys.library.settings import HomelabSettings

CATALOG_PROXY = "nginx-proxy-manager"


def data_dirs(settings: HomelabSettings, service: str) -> list[tuple[PurePosixPath, Volume]]:
    """Absolute data folders of one service, parents before children."""
    return [(settings.cold_storage_path / volume.source, volume) for volume in CATALOG[service].volumes]


def npm_data_dir(settings: HomelabSettings) -> PurePosixPath:
    """NGINX Proxy Manager's ``/data`` on the host (its certbot log, a private ACME CA bundle)."""
    return next(path for path, volume in data_dirs(settings, CATALOG_PROXY) if volume.target == "/data")


def generated_secrets(plan: HostPlan, service: str) -> list[Secret]:
    """The service's secrets that no setting gives and that are made once on the host instead."""
    return [
        secret for secret in CATALOG[service].secrets
        if secret.generated_file and getattr(plan.settings, secret.setting) is None
    ]


# the project's folder of the configuration files the deploy renders (the catalog's config_target)
CONFIG_DIR = "config"


def from_setting(plan: HostPlan, value: FromSetting) -> str:
    given = getattr(plan.settings, value.setting)
    text = value.join.join(map(str, given)) if isinstance(given, list | tuple) else str(given)
    return value.template.format(text)


def _environment(plan: HostPlan, service: str) -> dict[str, str]:
    env: dict[str, str] = {"TZ": plan.settings.timezone}
    for key, value in CATALOG[service].environment.items():
        if isinstance(value, FromSetting):
            env[key] = from_setting(plan, value)
        elif isinstance(value, SubdomainUrl):
            env[key] = plan.subdomain_url(value.subdomain)
        elif isinstance(value, OnGpu):
            env[key] = value.with_gpu if plan.gpu_for(service) else value.without_gpu
        elif isinstance(value, ServiceUrl):
            env[key] = plan.service_url(value.service)
        elif isinstance(value, WhenTls):
            given = getattr(plan.tls, value.attribute) if plan.tls is not None else None
            if given is not None:
                env[key] = str(given)
        else:
            env[key] = value
    return env


def env_file(plan: HostPlan, service: str) -> dict[str, str]:
    """The project's ``.env``: the secrets the compose document refers to (mode 0600 on the host)."""
    values: dict[str, str] = {}
    for secret in CATALOG[service].secrets:
        given = getattr(plan.settings, secret.setting)
        if given is not None:
            values[secret.variable] = given.get_secret_value()
    return values


def limit_keys(plan: HostPlan, service: str) -> dict:
    """The container's limits as compose's service keys, which ``docker compose`` applies without swarm
    (compose's getDeployResources: ``mem_limit`` -> HostConfig.Memory, ``memswap_limit`` -> MemorySwap,
    ``cpus`` -> NanoCpus). ``memswap_limit`` equals ``mem_limit``: the container gets no swap, so going
    over its limit ends in its own OOM kill and restart rather than in swapping that slows the whole host
    (a model swapped out runs a hundred times slower). A changed limit changes the file, and compose
    re-creates the container."""
    limit = plan.limits_of(service)
    if not limit.resolved:
        raise PlanError(f"{plan.name}: {service}'s limits ({limit.describe()}) need the host's memory and "
                        "CPUs, which were not read")
    keys: dict = {}
    if limit.memory_bytes is not None:
        keys["mem_limit"] = keys["memswap_limit"] = show_memory(limit.memory_bytes)
    if limit.cpus_value is not None:
        keys["cpus"] = limit.cpus_value
    return keys


def compose_document(plan: HostPlan, service: str) -> dict:
    item = CATALOG[service]
    settings = plan.settings
    ports = plan.ports_of(service)
    address = plan.require_tailscale_ip() if ports else None
    environment = _environment(plan, service)
    generated = generated_secrets(plan, service)
    for secret in item.secrets:
        if secret not in generated:
            environment[secret.key] = "${" + secret.variable + "}"

    container: dict = {
        "image": settings.image_for(service),
        "container_name": item.name,
        "restart": "unless-stopped",
        "pull_policy": settings.pull_policy.value,
        "labels": {MANAGED_LABEL: MANAGED_BY},
        "networks": [NETWORK],
    }
    if item.user is not None:
        container["user"] = item.user
    if item.command:
        container["command"] = [
            part if isinstance(part, str) else from_setting(plan, part) for part in item.command
        ]
    if ports:
        container["ports"] = [f"{address}:{port.number}:{port.number}/{port.protocol}" for port in ports]
    container["volumes"] = [f"{path}:{volume.target}" for path, volume in data_dirs(settings, service)]
    container["volumes"] += [f"{mount.source}:{mount.target}:ro" for mount in item.host_mounts]
    if item.config_target is not None:
        container["volumes"].append(f"{item.project_dir / CONFIG_DIR}:{item.config_target}:ro")
    resolver = plan.inventory.serving_host(item.dns_from, plan.name) if item.dns_from else None
    if resolver is not None:  # Docker's own DNS still resolves the containers; other names ask this one
        container["dns"] = [plan.inventory.address(resolver, plan)]
    container["environment"] = environment
    if generated:
        container["env_file"] = [secret.generated_file for secret in generated]
    if item.cap_add:
        container["cap_add"] = list(item.cap_add)
    container["healthcheck"] = {
        "test": list(item.healthcheck),
        "interval": "10s",
        "timeout": "5s",
        "retries": 5,
        "start_period": item.start_period,
    }
    container.update(limit_keys(plan, service))
    if plan.gpu_for(service):
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


def render_compose(plan: HostPlan, service: str) -> str:
    document = compose_document(plan, service)
    return MANAGED_HEADER + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
