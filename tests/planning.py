"""Host plans for the fast tests: an inventory of named hosts with groups and settings, planned
without contacting anything (the deploy's own ``deploys.library.plan``)."""

from __future__ import annotations

from typing import Any

from deploys.library.plan import HostPlan, InventoryPlan, Member, plan_host
from deploys.library.resources import HostResources
from deploys.library.settings import HomelabSettings, load_settings

BASE = {
    "domain": "home.example.com",
    "tailscale_allowed_ips": "100.64.0.0/10",
    "pihole_password": "pihole-secret-value",
    "npm_admin_email": "admin@home.example.com",
    "npm_admin_password": "npm-secret-value",
    "open_webui_admin_email": "admin@home.example.com",
    "open_webui_admin_password": "webui-secret-value",
    "open_webui_secret_key": "webui-secret-value",
    "cold_storage_path": "/srv/cold",
}
WITH_GPU = {"gpus": [{"name": "NVIDIA GeForce RTX 4090", "memory_total_mib": 24564}]}
WITHOUT_GPU: dict[str, Any] = {"gpus": []}
# a 32 GiB, 16-CPU host (facts.host.HostResources): what a limit given as a share of the host comes to
RESOURCES = HostResources(memory=32 * 2**30, cpus=16)


def settings(**changes: Any) -> HomelabSettings:
    return load_settings({**BASE, **changes}, env_file=None)


def inventory(*hosts: tuple[str, tuple[str, ...], HomelabSettings], addresses: dict[str, str] | None = None,
              gpus: dict[str, bool] | None = None):
    """An inventory plan of ``(name, groups, settings)``; ``addresses``: what each host reports;
    ``gpus``: whether each host has a working GPU (as the deploy reads it of the other hosts)."""
    reported = addresses or {}
    return InventoryPlan([Member(name, frozenset(groups), s) for name, groups, s in hosts], reported.get,
                         (gpus or {}).get)


def one_host(tailscale_ip: str | None = "100.64.0.10", gpu: dict | None = None,
             resources: HostResources | None = RESOURCES, **changes: Any) -> HostPlan:
    """The plan of a single host with every service (no groups), of ``resources`` (32 GiB, 16 CPUs)."""
    plans = inventory(("server", (), settings(**changes)))
    return plan_host(plans, "server", tailscale_ip=tailscale_ip, gpu=WITH_GPU if gpu is None else gpu,
                     resources=resources)
