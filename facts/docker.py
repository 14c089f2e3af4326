"""Facts about Docker networks, read whole in one command."""

from __future__ import annotations

import json
from typing import Any

from pyinfra.api import FactBase

BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"


def _network(raw: dict[str, Any]) -> dict[str, Any]:
    ipam = (raw.get("IPAM") or {}).get("Config") or []
    options = raw.get("Options") or {}
    containers = (raw.get("Containers") or {}).values()
    return {
        "id": raw.get("Id"),
        "driver": raw.get("Driver"),
        "scope": raw.get("Scope"),
        "internal": bool(raw.get("Internal")),
        "ipv6": bool(raw.get("EnableIPv6")),
        "subnets": [entry["Subnet"] for entry in ipam if entry.get("Subnet")],
        "gateways": [entry["Gateway"] for entry in ipam if entry.get("Gateway")],
        "bridge_name": options.get(BRIDGE_NAME_OPTION),
        "options": options,
        "labels": raw.get("Labels") or {},
        "containers": sorted(container.get("Name", "") for container in containers),
    }


class DockerNetworksInspect(FactBase[dict]):
    """
    Returns every Docker network, keyed by name, from one ``docker network inspect``.

    .. code:: python

        {
            "self-hosted": {
                "id": "64f14b16…", "driver": "bridge", "scope": "local",
                "internal": False, "ipv6": False,
                "subnets": ["172.30.0.0/16"], "gateways": ["172.30.0.1"],
                "bridge_name": "br-selfhosted",
                "options": {"com.docker.network.bridge.name": "br-selfhosted"},
                "labels": {"managed-by": "homelab"},
                "containers": ["demo-web-1", "demo-worker-1"],   # attached container names
            },
        }

    No ``docker`` binary, or an engine that does not answer: ``{}``.
    """

    requires_command = "docker"
    command = (
        "ids=$(docker network ls -q 2>/dev/null) && [ -n \"$ids\" ] "
        "|| { echo '[]'; exit 0; }; docker network inspect $ids"
    )

    @staticmethod
    def default() -> dict[str, Any]:
        return {}

    def process(self, output: list[str]) -> dict[str, dict[str, Any]]:
        text = "\n".join(output).strip()
        return {raw["Name"]: _network(raw) for raw in json.loads(text or "[]")}


class DockerContainerAddresses(FactBase[dict]):
    """
    Returns the address of every running container on each of its networks, in one command:
    ``{"pihole": {"self-hosted": "172.30.0.3"}}``. No Docker, or an engine that does not answer: ``{}``.
    """

    requires_command = "docker"
    command = (
        "ids=$(docker ps -q 2>/dev/null) && [ -n \"$ids\" ] || exit 0; docker inspect --format "
        "'{{.Name}}{{range $net, $conf := .NetworkSettings.Networks}} {{$net}}={{$conf.IPAddress}}{{end}}' "
        "$ids"
    )

    @staticmethod
    def default() -> dict[str, Any]:
        return {}

    def process(self, output: list[str]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for line in output:
            words = line.split()
            if not words:
                continue
            found[words[0].lstrip("/")] = {
                net: address for net, _, address in (w.partition("=") for w in words[1:]) if address
            }
        return found


_PS_EXIT = "### pyinfra-docker-ps exit "


class RunningContainers(FactBase[list]):
    """
    Returns the names of the running containers (``docker ps``), sorted: ``["jellyfin", "pihole"]``.

    ``None`` when ``docker ps`` fails (the engine is down or does not answer): unknown, not "none
    running" -- with live-restore, containers keep running while dockerd is stopped. No ``docker``
    command: ``[]``.
    """

    requires_command = "docker"
    command = f"docker ps --format '{{{{.Names}}}}' 2>/dev/null; echo \"{_PS_EXIT}$?\""

    @staticmethod
    def default() -> list[str]:
        return []

    def process(self, output: list[str]) -> list[str] | None:
        status = next((line for line in reversed(output) if line.startswith(_PS_EXIT)), None)
        if status != f"{_PS_EXIT}0":
            return None
        return sorted(line.strip() for line in output if line.strip() and not line.startswith(_PS_EXIT))
