"""
Manage a Docker network, with drift detection.

Docker cannot change a network's driver, subnet, gateway, bridge name or labels in place; the
network has to be removed and created again, which needs every container off it first.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.exceptions import OperationError

from facts.docker import BRIDGE_NAME_OPTION, DockerNetworksInspect
from facts.reads import read_fact


def _create_command(
    network: str,
    driver: str,
    subnet: str | None,
    gateway: str | None,
    bridge_name: str | None,
    labels: Mapping[str, str],
) -> str:
    parts = ["docker", "network", "create", "--driver", driver]
    if subnet:
        parts += ["--subnet", subnet]
    if gateway:
        parts += ["--gateway", gateway]
    if bridge_name:
        parts += ["--opt", f"{BRIDGE_NAME_OPTION}={bridge_name}"]
    for key, value in labels.items():
        parts += ["--label", f"{key}={value}"]
    parts.append(network)
    return shlex.join(parts)


def _drift(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between the network found and the one wanted."""
    found = {
        "driver": current["driver"],
        "subnet": ",".join(current["subnets"]) or None,
        "gateway": ",".join(current["gateways"]) or None,
        "bridge_name": current["bridge_name"],
    }
    drift = [
        f"{key} is {found[key]!r}, wanted {value!r}"
        for key, value in wanted.items()
        if key != "labels" and value is not None and found[key] != value
    ]
    labels = wanted["labels"]
    if labels is not None and dict(current["labels"]) != dict(labels):
        drift.append(f"labels are {dict(current['labels'])!r}, wanted {dict(labels)!r}")
    return drift


@operation()
def network(
    network: str,
    present: bool = True,
    driver: str = "bridge",
    subnet: str | None = None,
    gateway: str | None = None,
    bridge_name: str | None = None,
    labels: dict[str, str] | None = None,
    recreate: bool = False,
):
    """
    Create or remove a Docker network; report (or repair) drift from the wanted settings.

    + network: network name
    + present: whether the network should exist
    + driver: network driver
    + subnet: IPAM subnet in CIDR form; ``None`` accepts whatever Docker chose
    + gateway: IPAM gateway; ``None`` accepts whatever Docker chose
    + bridge_name: Linux bridge name (``com.docker.network.bridge.name``); ``None`` accepts any
    + labels: exact labels; ``None`` accepts any
    + recreate: when the existing network differs, remove and create it again (only while no
      container is attached); without it a difference is an error that lists it

    **Example:**

    .. code:: python

        from operations import docker_network

        docker_network.network(
            name="Docker network for the services",
            network="self-hosted",
            subnet="172.30.0.0/16",
            gateway="172.30.0.1",
            bridge_name="br-selfhosted",
        )
    """
    networks = read_fact(DockerNetworksInspect, host=host)
    current = networks[network] if network in networks else None

    if not present:
        if current is None:
            host.noop(f"docker network {network} does not exist")
            return
        if current["containers"]:
            raise OperationError(
                f"Cannot remove docker network '{network}': containers still attached: "
                f"{', '.join(current['containers'])}",
            )
        yield f"docker network rm {shlex.quote(network)}"
        return

    create = _create_command(network, driver, subnet, gateway, bridge_name, labels or {})
    if current is None:
        yield create
        return

    wanted = {
        "driver": driver,
        "subnet": subnet,
        "gateway": gateway,
        "bridge_name": bridge_name,
        "labels": labels,
    }
    drift = _drift(current, wanted)
    if not drift:
        host.noop(f"docker network {network} is up to date")
        return
    if not recreate:
        raise OperationError(
            f"Docker network '{network}' differs from the wanted settings: {'; '.join(drift)}. "
            "Pass recreate=True to remove and create it again (all containers must be off it).",
        )
    if current["containers"]:
        raise OperationError(
            f"Cannot recreate docker network '{network}' ({'; '.join(drift)}): containers still "
            f"attached: {', '.join(current['containers'])}",
        )
    yield f"docker network rm {shlex.quote(network)}"
    yield create
