"""Facts about the host's capacity: free disk space and listening sockets."""

from __future__ import annotations

import re
import shlex
from typing import Any

from pyinfra.api import FactBase

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
