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


# The Linux `tailscale up` flags that stand for a pref, with the value each pref means as a flag
# (cmd/tailscale/cli/up.go, prefsToFlags). --stateful-filtering is left out: on Linux `tailscale up`
# never counts it as a changed setting (tailscale#12307).
_EXIT_ROUTES = {"0.0.0.0/0", "::/0"}
_NETFILTER_MODES = {0: "off", 1: "nodivert", 2: "on"}


def _prefs_flags(prefs: dict[str, Any]) -> dict[str, Any]:
    routes = [str(route) for route in prefs.get("AdvertiseRoutes") or []]
    exit_node = prefs.get("ExitNodeIP") or prefs.get("ExitNodeID") or ""
    return {
        "login-server": prefs.get("ControlURL") or "",
        "accept-routes": bool(prefs.get("RouteAll")),
        "accept-dns": bool(prefs.get("CorpDNS")),
        "shields-up": bool(prefs.get("ShieldsUp")),
        "exit-node": str(exit_node),
        "exit-node-allow-lan-access": bool(prefs.get("ExitNodeAllowLANAccess")),
        "advertise-tags": ",".join(prefs.get("AdvertiseTags") or []),
        "hostname": prefs.get("Hostname") or "",
        "operator": prefs.get("OperatorUser") or "",
        "advertise-routes": ",".join(route for route in routes if route not in _EXIT_ROUTES),
        "advertise-exit-node": _EXIT_ROUTES <= set(routes),
        "advertise-connector": bool((prefs.get("AppConnector") or {}).get("Advertise")),
        "snat-subnet-routes": not prefs.get("NoSNAT"),
        "netfilter-mode": _NETFILTER_MODES.get(prefs.get("NetfilterMode"), str(prefs.get("NetfilterMode"))),
        "ssh": bool(prefs.get("RunSSH")),
        "webclient": bool(prefs.get("RunWebClient")),
        "report-posture": bool(prefs.get("PostureChecking")),
    }


class TailscalePrefs(FactBase[dict]):
    """
    Returns the node's preferences from ``tailscale debug prefs`` (the daemon's prefs as JSON,
    private keys stripped), as the ``tailscale up`` flags they stand for.

    .. code:: python

        {
            "known": True,           # False: no tailscale binary, or tailscaled does not answer
            "control_url": "https://controlplane.tailscale.com",
            "logged_in": True,       # a login is stored (ControlURL set, not logged out, a login name)
            "want_running": True,    # False after `tailscale down`
            "flags": {"hostname": "nas", "ssh": True, "advertise-exit-node": True, "accept-dns": True, …},
        }

    Without the ``tailscale`` binary, or when tailscaled does not answer, ``known`` is False: the
    prefs are unknown, not the defaults. Older releases spell the command ``tailscale debug -prefs``.
    """

    requires_command = "tailscale"
    command = "tailscale debug prefs 2>/dev/null || tailscale debug -prefs 2>/dev/null || true"

    @staticmethod
    def default() -> dict[str, Any]:
        return {"known": False, "control_url": None, "logged_in": False, "want_running": False, "flags": {}}

    def process(self, output: list[str]) -> dict[str, Any]:
        text = "\n".join(output).strip()
        if not text.startswith("{"):
            return self.default()
        prefs = json.loads(text)
        config = prefs.get("Config") or {}
        # the login name moved from Config.LoginName (2021) to Config.UserProfile.LoginName
        login = (config.get("UserProfile") or {}).get("LoginName") or config.get("LoginName")
        control_url = prefs.get("ControlURL") or None
        return {
            "known": True,
            "control_url": control_url,
            "logged_in": bool(control_url and login and not prefs.get("LoggedOut")),
            "want_running": bool(prefs.get("WantRunning")),
            "flags": _prefs_flags(prefs),
        }
