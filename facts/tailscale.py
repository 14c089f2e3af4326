"""Facts about Tailscale: the node's status and its IPv4 address."""

from __future__ import annotations

import json
import re
from typing import Any

from pyinfra.api import FactBase

_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_INET = re.compile(r"\binet (\d{1,3}(?:\.\d{1,3}){3})/")


class TailscaleStatus(FactBase[dict]):
    """
    Returns the node's state from ``tailscale status --json``.

    .. code:: python

        {
            "installed": True,
            "backend_state": "Running",   # NoState, NeedsLogin, NeedsMachineAuth, Stopped, Starting,
                                          # or None when tailscaled cannot be reached
            "ips": ["100.64.0.10", "fd7a:115c:a1e0::a"],
            "hostname": "homelab",
            "dns_name": "homelab.tail1234.ts.net",   # without the trailing dot
            "online": True,
            "tags": ["tag:server"],
            "tailnet": "example.com",
            "version": "1.80.2-t…",
        }

    Without the ``tailscale`` binary: the default, ``installed: False`` and everything else empty.
    A daemon that does not answer gives ``installed: True`` and ``backend_state: None``.
    """

    requires_command = "tailscale"
    # `|| true`: a stopped tailscaled must not fail the host; it shows as empty output.
    command = "tailscale status --json 2>/dev/null || true"

    @staticmethod
    def default() -> dict[str, Any]:
        return {
            "installed": False,
            "backend_state": None,
            "ips": [],
            "hostname": None,
            "dns_name": None,
            "online": False,
            "tags": [],
            "tailnet": None,
            "version": None,
        }

    def process(self, output: list[str]) -> dict[str, Any]:
        status = {**self.default(), "installed": True}
        text = "\n".join(output).strip()
        if not text:
            return status
        data = json.loads(text)
        me = data.get("Self") or {}
        tailnet = data.get("CurrentTailnet") or {}
        status.update(
            backend_state=data.get("BackendState"),
            ips=data.get("TailscaleIPs") or me.get("TailscaleIPs") or [],
            hostname=me.get("HostName"),
            dns_name=(me.get("DNSName") or "").rstrip(".") or None,
            online=bool(me.get("Online")),
            tags=me.get("Tags") or [],
            tailnet=tailnet.get("Name"),
            version=data.get("Version"),
        )
        return status


class TailscaleIP(FactBase[str]):
    """
    Returns the node's Tailscale IPv4 address, or ``None``.

    Asks ``tailscale ip -4`` first; when the CLI is missing or knows no address, falls back to
    the address on the ``tailscale0`` interface (``ip -4 -o addr show dev tailscale0``).
    """

    command = (
        "tailscale ip -4 2>/dev/null || ip -4 -o addr show dev tailscale0 2>/dev/null || true"
    )

    @staticmethod
    def default() -> None:
        return None

    def process(self, output: list[str]) -> str | None:
        for line in output:
            text = line.strip()
            if _IPV4.match(text):
                return text
            match = _INET.search(text)
            if match:
                return match.group(1)
        return None
