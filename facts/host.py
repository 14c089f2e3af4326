"""Facts about the host's capacity and network: free disk space, listening sockets, addresses and routes."""

from __future__ import annotations

import re
import shlex
from typing import Any

from pyinfra.api import FactBase

from facts.system import Ipv4Routes

_GIB = 1024**3
# df -P: Filesystem 1024-blocks Used Available Capacity Mounted-on (names may hold spaces)
_DF_LINE = re.compile(
    r"^(?P<fs>.+?)\s+(?P<total>\d+)\s+(?P<used>\d+)\s+(?P<avail>\d+)\s+\S+\s+(?P<mount>/.*)$",
)
_SS_EXIT = "### pyinfra-ss exit "
_SS_PROCESS = re.compile(r'users:\(\("(?P<name>[^"]*)"')


class DiskFree(FactBase[dict[str, Any] | None]):
    """
    Returns the free and total space, in GiB (as ``df -h`` counts), of the filesystem that
    holds ``path`` — or, when ``path`` does not exist yet, of its nearest existing parent.

    .. code:: python

        {"path_checked": "/", "mount_point": "/", "free_gb": 75.92, "total_gb": 251.97}

    ``None`` when ``df`` is missing or cannot read the filesystem.
    """

    def command(self, path: str) -> str:
        return (
            "command -v df >/dev/null 2>&1 || exit 0; "
            f"p={shlex.quote(path)}; "
            'while [ ! -e "$p" ]; do p=$(dirname -- "$p"); done; '
            "printf '%s\\n' \"$p\"; "
            'df -Pk -- "$p" 2>/dev/null || true'
        )

    @staticmethod
    def default() -> None:
        return None

    def process(self, output: list[str]) -> dict[str, Any] | None:
        if not output:
            return None
        path_checked, *table = output
        for line in table:
            match = _DF_LINE.match(line.strip())
            if match:
                return {
                    "path_checked": path_checked,
                    "mount_point": match["mount"],
                    "free_gb": round(int(match["avail"]) * 1024 / _GIB, 2),
                    "total_gb": round(int(match["total"]) * 1024 / _GIB, 2),
                }
        return None


def _split_address(local: str) -> tuple[str, int] | None:
    address, _, port = local.rpartition(":")
    if not port.isdigit() or not address:
        return None
    address = address.split("%", 1)[0]  # drop an interface scope: 127.0.0.53%lo, [fe80::1]%eth0
    return address.removeprefix("[").removesuffix("]"), int(port)


def _parse_socket(line: str) -> dict[str, Any] | None:
    parts = line.split(None, 6)
    if len(parts) < 6 or parts[0] not in ("tcp", "udp"):
        return None
    local = _split_address(parts[4])
    if local is None:
        return None
    process = _SS_PROCESS.search(parts[6]) if len(parts) > 6 else None
    return {
        "proto": parts[0],
        "address": local[0],
        "port": local[1],
        "process": process["name"] if process else None,
    }


class ListeningSockets(FactBase[list[dict[str, Any]] | None]):
    """
    Returns the listening TCP and bound UDP sockets (``ss -Hltnup``).

    .. code:: python

        [
            {"proto": "tcp", "address": "0.0.0.0", "port": 22, "process": "sshd"},
            {"proto": "tcp", "address": "::", "port": 22, "process": "sshd"},
            {"proto": "udp", "address": "*", "port": 5353, "process": None},
        ]

    IPv6 addresses lose their brackets, interface scopes (``%lo``) are dropped, ``*`` stays
    ``"*"``; ``process`` is ``None`` where ``ss`` may not show it (not root). ``None`` when
    ``ss`` is missing or fails: unknown, not "nothing listens".
    """

    def command(self) -> str:
        return f'command -v ss >/dev/null 2>&1 || exit 0; ss -Hltnup 2>/dev/null; echo "{_SS_EXIT}$?"'

    @staticmethod
    def default() -> None:
        return None

    def process(self, output: list[str]) -> list[dict[str, Any]] | None:
        status = next((line for line in reversed(output) if line.startswith(_SS_EXIT)), None)
        if status != f"{_SS_EXIT}0":
            return None
        sockets = (_parse_socket(line) for line in output if not line.startswith(_SS_EXIT))
        return [socket for socket in sockets if socket is not None]


_SECTION = "### pyinfra-section "
_IP_V4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")


class HostNetwork(FactBase[dict[str, Any]]):
    """
    Returns the host's Tailscale IPv4, every interface address and the IPv4 routes, in one command
    (``tailscale ip -4``, ``ip -o addr show``, ``ip -4 route show``):

    .. code:: python

        {
            "tailscale_ip": "100.64.0.10",   # `tailscale ip -4`, else tailscale0's IPv4, else None
            "addresses": {"lo": ["127.0.0.1/8", "::1/128"], "eth0": ["192.168.1.5/24"],
                          "tailscale0": ["100.64.0.10/32", "fd7a:115c:a1e0::a/128"]},
            "routes": ["192.168.1.0/24", "172.17.0.0/16"],   # as facts.system.Ipv4Routes
        }

    ``addresses`` / ``routes`` are ``None`` when ``ip`` is missing or fails: unknown, not empty.
    """

    def command(self) -> str:
        return (
            f"echo '{_SECTION}tailscale'; tailscale ip -4 2>/dev/null; "
            f"echo '{_SECTION}addresses'; ip -o addr show 2>/dev/null || echo '{_SECTION}failed'; "
            f"echo '{_SECTION}routes'; ip -4 route show 2>/dev/null || echo '{_SECTION}failed'"
        )

    @staticmethod
    def default() -> dict[str, Any]:
        return {"tailscale_ip": None, "addresses": None, "routes": None}

    def process(self, output: list[str]) -> dict[str, Any]:
        sections: dict[str, list[str] | None] = {}
        current: list[str] | None = None
        for line in output:
            if line.startswith(_SECTION):
                name = line[len(_SECTION):].strip()
                if name == "failed":
                    current = None
                    sections[list(sections)[-1]] = None
                    continue
                current = sections.setdefault(name, [])
                continue
            if current is not None:
                current.append(line)
        addresses = _addresses(sections["addresses"]) if sections.get("addresses") is not None else None
        routes = sections.get("routes")
        tailscale = _first_ipv4(sections.get("tailscale") or [])
        if tailscale is None and addresses:
            tailscale = _first_ipv4(address.split("/")[0] for address in addresses.get("tailscale0", []))
        return {
            "tailscale_ip": tailscale,
            "addresses": addresses,
            "routes": None if routes is None else Ipv4Routes().process(routes),
        }


def _first_ipv4(words: Any) -> str | None:
    return next((word.strip() for word in words if _IP_V4.match(word.strip())), None)


def _addresses(lines: list[str]) -> dict[str, list[str]]:
    """`ip -o addr show` lines: `2: eth0    inet 192.168.1.5/24 brd … scope global eth0\\ …`."""
    found: dict[str, list[str]] = {}
    for line in lines:
        words = line.split()
        if len(words) < 4 or words[2] not in ("inet", "inet6"):
            continue
        interface = words[1].split("@", 1)[0]
        found.setdefault(interface, []).append(words[3])
    return found


class HostResources(FactBase[dict[str, int] | None]):
    """
    Returns the host's memory (``MemTotal`` of ``/proc/meminfo``, in bytes) and its online CPUs, in one
    command (pyinfra's own ``Memory`` needs ``vmstat``, which minimal hosts lack):

    .. code:: python

        {"memory": 33377214464, "cpus": 16}

    ``None`` when either cannot be read.
    """

    def command(self) -> str:
        return "grep -m1 '^MemTotal:' /proc/meminfo 2>/dev/null; getconf _NPROCESSORS_ONLN 2>/dev/null"

    def process(self, output: list[str]) -> dict[str, int] | None:
        memory = cpus = None
        for line in output:
            words = line.split()
            if len(words) == 3 and words[0] == "MemTotal:" and words[1].isdigit() and words[2] == "kB":
                memory = int(words[1]) * 1024
            elif len(words) == 1 and words[0].isdigit():
                cpus = int(words[0])
        if not memory or not cpus:
            return None
        return {"memory": memory, "cpus": cpus}
