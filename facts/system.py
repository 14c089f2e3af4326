"""Facts about the deploy's own session and the container tooling present on the host."""

from __future__ import annotations

import re
from typing import Any

from pyinfra.api import FactBase

_VERSION = re.compile(r"v?(\d+\.\d+(?:\.\d+)?)")
_NETWORK = re.compile(r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")


class SshConnection(FactBase[dict[str, Any] | None]):
    """
    Returns the SSH connection this deploy runs over, as the host sees it, or ``None`` when not
    over SSH: ``{"client_address", "client_port", "server_address", "server_port"}``.

    Deploys use it to refuse firewall changes that would cut their own path.
    """

    command = 'echo "$SSH_CONNECTION"'

    @staticmethod
    def default() -> None:
        return None

    def process(self, output: list[str]) -> dict[str, Any] | None:
        parts = " ".join(output).split()
        if len(parts) != 4 or not parts[1].isdigit() or not parts[3].isdigit():
            return None
        return {
            "client_address": parts[0],
            "client_port": int(parts[1]),
            "server_address": parts[2],
            "server_port": int(parts[3]),
        }


class ComposeVersion(FactBase[str | None]):
    """
    Returns the version of the Docker Compose v2 plugin (``docker compose``), or ``None`` when
    Docker or the plugin is missing (compose v1's separate ``docker-compose`` does not count).
    """

    requires_command = "docker"
    command = "docker compose version --short 2>/dev/null || true"

    @staticmethod
    def default() -> None:
        return None

    def process(self, output: list[str]) -> str | None:
        for line in output:
            match = _VERSION.match(line.strip())
            if match and int(match.group(1).split(".")[0]) >= 2:
                return match.group(1)
        return None


class Ipv4Routes(FactBase[list[str]]):
    """
    Returns the destination networks of the host's IPv4 routes (``ip -4 route show``), without
    the default route: the subnets a new Docker network must not overlap.
    """

    requires_command = "ip"
    command = "ip -4 route show"

    @staticmethod
    def default() -> list[str]:
        return []

    def process(self, output: list[str]) -> list[str]:
        found: list[str] = []
        for line in output:
            words = line.split()
            if not words or words[0] in ("default", "unreachable", "blackhole", "prohibit"):
                continue
            destination = words[0] if "/" in words[0] else words[0] + "/32"
            if _NETWORK.match(destination) and destination not in found:
                found.append(destination)
        return found
