"""Facts about firewalld: every zone, runtime and permanent, read in one command."""

from __future__ import annotations

import re
import shlex
from typing import Any

from pyinfra.api import FactBase

NOT_RUNNING = "firewalld: not running"
PERMANENT_MARKER = "firewalld: permanent"
OFFLINE_MARKER = "firewalld: offline"

# `--list-all-zones` keys whose value is a space-separated list.
_LIST_KEYS = {
    "interfaces": "interfaces",
    "sources": "sources",
    "services": "services",
    "ports": "ports",
    "protocols": "protocols",
    "source-ports": "source_ports",
    "icmp-blocks": "icmp_blocks",
}
# Keys whose entries follow on their own tab-indented lines.
_BLOCK_KEYS = {"forward-ports": "forward_ports", "rich rules": "rich_rules"}
_BOOL_KEYS = {
    "masquerade": "masquerade",
    "forward": "forward",
    "icmp-block-inversion": "icmp_block_inversion",
}
# firewall-cmd's three answers read by one process (FirewalldZones): nothing is printed unless all are
# read; the runtime listing as firewall-cmd --list-all-zones prints it, the permanent one as
# firewall-cmd --permanent --list-all-zones (with NetworkManager's interfaces), each with the
# arguments the installed version's print_zone_info takes
ONE_PROCESS = f"""
import inspect, io, sys
from firewall.client import FirewallClient
from firewall.command import FirewallCommand
fw = FirewallClient()
if not fw.connected:
    sys.exit(3)
try:
    from firewall.core.fw_nm import nm_get_interfaces_in_zone, nm_is_imported
except Exception:
    nm_is_imported = lambda: False
def nm_interfaces(zone):
    try:
        return nm_get_interfaces_in_zone(zone) if nm_is_imported() else []
    except Exception:
        return []
out, real = io.StringIO(), sys.stdout
sys.stdout = out
cmd = FirewallCommand(False, False)
takes = inspect.signature(cmd.print_zone_info).parameters
default = fw.getDefaultZone()
extra = {{"default_zone": default}} if "active_zones" in takes else {{}}
runtime = {{**extra, "active_zones": fw.getActiveZones()}} if "active_zones" in takes else {{}}
print(default)
for zone in fw.getZones():
    cmd.print_zone_info(zone, fw.getZoneSettings(zone), **runtime)
    cmd.print_msg("")
print("{PERMANENT_MARKER}")
for zone in sorted(fw.config().getZoneNames()):
    cmd.print_zone_info(zone, fw.config().getZoneByName(zone).getSettings(),
                        extra_interfaces=nm_interfaces(zone), **extra)
    cmd.print_msg("")
sys.stdout = real
real.write(out.getvalue())
"""
_HEADER = re.compile(r"^(?P<name>[^\s(]+)(?:\s+\((?P<flags>[^)]*)\))?$")


def _empty_zone(name: str, flags: set[str], default_zone: str | None) -> dict[str, Any]:
    zone: dict[str, Any] = {
        "target": None,
        "ingress_priority": None,
        "egress_priority": None,
        "icmp_block_inversion": False,
        "forward": None,
        "masquerade": False,
    }
    zone.update({key: [] for key in (*_LIST_KEYS.values(), *_BLOCK_KEYS.values())})
    zone["default"] = "default" in flags or name == default_zone
    zone["active"] = "active" in flags
    return zone


def _set_value(zone: dict[str, Any], key: str, value: str) -> str | None:
    """Store one `key: value` line; return the block key when entries follow on later lines."""
    if key in _LIST_KEYS:
        zone[_LIST_KEYS[key]] = value.split()
    elif key in _BOOL_KEYS:
        zone[_BOOL_KEYS[key]] = value == "yes"
    elif key in _BLOCK_KEYS:
        zone[_BLOCK_KEYS[key]] = value.split() if value else []
        return _BLOCK_KEYS[key]
    elif key in ("ingress-priority", "egress-priority"):
        zone[key.replace("-", "_")] = int(value)
    elif key == "target":
        zone["target"] = value
    return None


def parse_zones(lines: list[str], default_zone: str | None) -> dict[str, dict[str, Any]]:
    """Parse `firewall-cmd [--permanent] --list-all-zones` (1.x and 2.x forms) into zone dicts.

    Zones that have interfaces or sources are marked active even when the header does not say so
    (1.x prints no ``(default)`` marker and the permanent listing may omit ``(active)``).
    """
    zones: dict[str, dict[str, Any]] = {}
    zone: dict[str, Any] | None = None
    block: str | None = None
    for raw in lines:
        if not raw.strip():
            zone, block = None, None
            continue
        if raw.startswith("\t") and zone is not None and block:
            zone[block].append(raw.strip())
            continue
        if not raw[0].isspace():
            match = _HEADER.match(raw.strip())
            if not match:
                continue
            flags = {flag.strip() for flag in (match["flags"] or "").split(",")}
            zone = _empty_zone(match["name"], flags, default_zone)
            zones[match["name"]] = zone
            block = None
            continue
        if zone is None:
            continue
        key, _, value = raw.strip().partition(":")
        block = _set_value(zone, key.strip(), value.strip())
    for zone in zones.values():
        zone["active"] = zone["active"] or bool(zone["interfaces"] or zone["sources"])
    return zones


class FirewalldZones(FactBase[dict]):
    """
    Returns firewalld's state and every zone, runtime and permanent, from one command.

    .. code:: python

        {
            "running": True,
            "default_zone": "public",
            "zones": {            # runtime configuration
                "public": {
                    "target": "default", "interfaces": ["eth0"], "sources": [],
                    "services": ["ssh"], "ports": ["80/tcp"], "protocols": [],
                    "masquerade": False, "forward": True, "forward_ports": [],
                    "source_ports": [], "icmp_blocks": [], "rich_rules": [],
                    "icmp_block_inversion": False, "ingress_priority": None,
                    "egress_priority": None, "default": True, "active": True,
                },
            },
            "permanent": {...},   # the same shape, from --permanent
        }

    A stopped firewalld gives ``running: False``, no runtime zones, and the permanent configuration
    it would start with, read by ``firewall-offline-cmd`` (what the first start of firewalld will
    enforce: the deploy checks it admits its own SSH connection first). A host without
    ``firewall-cmd`` gives the default: not running, no zones at all.
    """

    requires_command = "firewall-cmd"
    # firewall-cmd's own three answers (default zone, --list-all-zones, --permanent --list-all-zones)
    # from one Python process: each firewall-cmd run costs a Python start and firewalld's modules
    # (about 0.4 s on a small host), and this prints them with firewall-cmd's own code
    # (FirewallCommand.print_zone_info). Where that fails (firewalld not running, other modules), the
    # firewall-cmd calls answer: the default-zone query doubles as the running check.
    command = (
        f"python3 -c {shlex.quote(ONE_PROCESS)} 2>/dev/null || {{ "
        f"zone=$(firewall-cmd --get-default-zone 2>/dev/null) || {{ echo '{NOT_RUNNING}'; "
        f"command -v firewall-offline-cmd >/dev/null 2>&1 && echo '{OFFLINE_MARKER}' && "
        "firewall-offline-cmd --get-default-zone && firewall-offline-cmd --list-all-zones; exit 0; }; "
        'echo "$zone" && firewall-cmd --list-all-zones && '
        f"echo '{PERMANENT_MARKER}' && firewall-cmd --permanent --list-all-zones; }}"
    )

    @staticmethod
    def default() -> dict[str, Any]:
        return {"running": False, "default_zone": None, "zones": {}, "permanent": {}}

    def process(self, output: list[str]) -> dict[str, Any]:
        if not output:
            return self.default()
        if output[0].strip() == NOT_RUNNING:
            offline = [line for line in output[1:]]
            if len(offline) < 2 or offline[0].strip() != OFFLINE_MARKER:
                return self.default()
            default_zone = offline[1].strip() or None
            return {**self.default(), "default_zone": default_zone,
                    "permanent": parse_zones(offline[2:], default_zone)}
        default_zone = output[0].strip() or None
        rest = output[1:]
        split = rest.index(PERMANENT_MARKER) if PERMANENT_MARKER in rest else len(rest)
        return {
            "running": True,
            "default_zone": default_zone,
            "zones": parse_zones(rest[:split], default_zone),
            "permanent": parse_zones(rest[split + 1 :], default_zone),
        }


_REMOVED_MARK = "### removed-ssh "


def parse_entries(lines: list[str]) -> list[tuple[str, str, str, str]]:
    """``configuration zone kind value`` lines (``runtime public service ssh``) as tuples; others skipped."""
    found = []
    for line in lines:
        words = line.split()
        if len(words) == 4 and words[0] in ("runtime", "permanent") and words[2] in ("service", "port"):
            found.append((words[0], words[1], words[2], words[3]))
    return found


class RemovedSshEntries(FactBase[dict]):
    """
    Returns the SSH entries (``service ssh``, ``<port>/tcp``) an operation took out of firewalld zones
    and recorded in ``path`` (confirmed) and ``<path>.pending`` (not confirmed yet), and whether the
    revert timer ``unit`` is armed. Lines are ``configuration zone kind value``.

    .. code:: python

        {
            "removed": [("runtime", "public", "service", "ssh"), ("permanent", "public", "service", "ssh")],
            "pending": [],
            "timer": False,
        }
    """

    @staticmethod
    def default() -> dict[str, Any]:
        return {"removed": [], "pending": [], "timer": False}

    def command(self, path: str, unit: str) -> str:
        return (
            f"echo '{_REMOVED_MARK}removed'; cat {path} 2>/dev/null; "
            f"echo '{_REMOVED_MARK}pending'; cat {path}.pending 2>/dev/null; "
            f"echo '{_REMOVED_MARK}timer'; "
            f"systemctl is-active --quiet {unit} 2>/dev/null && echo active; true"
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        sections: dict[str, list[str]] = {"removed": [], "pending": [], "timer": []}
        current = None
        for line in output:
            if line.startswith(_REMOVED_MARK):
                current = line[len(_REMOVED_MARK):].strip()
                continue
            if current in sections:
                sections[current].append(line)
        return {
            "removed": parse_entries(sections["removed"]),
            "pending": parse_entries(sections["pending"]),
            "timer": any(line.strip() == "active" for line in sections["timer"]),
        }
