"""
Manage firewalld zones: their target, sources, interfaces, ports and services.

Changes go to both configurations firewalld keeps: ``--permanent`` (survives a restart) and the
runtime (what filters packets now). An existing zone is changed with permanent + runtime command
pairs and **no** ``--reload``: a reload drops the chains Docker keeps in the firewall, and older
Docker engines re-create them incompletely. Only what cannot be done at runtime triggers one
``--reload`` at the end: creating or deleting a zone, and changing a zone's target.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from ipaddress import ip_address, ip_network
from typing import Any

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.exceptions import OperationError, OperationValueError

from facts.firewalld import FirewalldZones

TARGETS = ("default", "ACCEPT", "DROP", "REJECT", "%%REJECT%%")
# setting -> (fact key, firewall-cmd flag stem): `--add-<stem>=` / `--remove-<stem>=`
LIST_SETTINGS = {
    "sources": "source",
    "interfaces": "interface",
    "ports": "port",
    "services": "service",
}
_ZONE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_PORT = re.compile(r"^(\d+)(?:-(\d+))?/(tcp|udp|sctp|dccp)$")
_EMPTY_ZONE: dict[str, Any] = {
    "target": "default",
    "sources": [],
    "interfaces": [],
    "ports": [],
    "services": [],
    "default": False,
}


def _admits_port(zone: Mapping[str, Any], port: int) -> bool:
    for spec in zone.get("ports", []):
        match = _PORT.match(spec)
        if match and match[3] == "tcp" and int(match[1]) <= port <= int(match[2] or match[1]):
            return True
    return False


def _zone_admits_ssh(zone: Mapping[str, Any], port: int) -> bool:
    if zone.get("target") == "ACCEPT":
        return True
    if port == 22 and "ssh" in zone.get("services", []):
        return True
    return _admits_port(zone, port)


def _source_contains(source: str, address: Any) -> bool:
    try:
        return address in ip_network(source, strict=False)
    except ValueError:  # a MAC address or an ipset: never matches an IP here
        return False


def ssh_allowed(zones: Mapping[str, Mapping[str, Any]], client_address: str, ssh_port: int = 22) -> bool:
    """Estimate whether firewalld, configured as ``zones``, admits SSH from ``client_address``.

    ``zones`` has the shape of ``FirewalldZones``'s ``zones``. Traffic from an address that a zone
    lists as a source is handled by that zone (firewalld ≥ 1.0 lets no source zone fall through);
    other traffic by the zone of the interface it arrives on, which this cannot know — so then
    every zone with interfaces, and the default zone, must admit it. A zone admits SSH with
    target ACCEPT, the ``ssh`` service (port 22) or an open ``<port>/tcp``; rich rules are not
    read, so the estimate errs towards "not admitted".
    """
    try:
        address = ip_address(client_address)
    except ValueError:
        raise OperationValueError(
            f"SSH client address {client_address!r} is not an IP address",
        ) from None
    by_source = [z for z in zones.values() if any(_source_contains(s, address) for s in z["sources"])]
    candidates = by_source or [z for z in zones.values() if z["interfaces"] or z.get("default")]
    return all(_zone_admits_ssh(zone, ssh_port) for zone in candidates)


def _check_ssh_path(
    before: Mapping[str, Mapping[str, Any]],
    after: Mapping[str, Mapping[str, Any]],
    zone: str,
    client_address: str,
    ssh_port: int,
) -> None:
    if ssh_allowed(before, client_address, ssh_port) and not ssh_allowed(after, client_address, ssh_port):
        raise OperationError(
            f"Refusing to change firewalld zone '{zone}': SSH from {client_address} to port {ssh_port} "
            "is admitted now and would not be afterwards, cutting this connection. Allow SSH in the "
            f"zone that will handle {client_address}, or keep that address out of its sources.",
        )


def _validate(
    zone: str,
    target: str | None,
    settings: Mapping[str, list[str]],
) -> None:
    if not _ZONE_NAME.match(zone):
        raise OperationValueError(
            f"firewalld zone name {zone!r} is invalid: use letters, digits, '_' and '-'",
        )
    if target is not None and target not in TARGETS:
        raise OperationValueError(f"firewalld target {target!r} is invalid: expected one of {TARGETS}")
    for port in settings.get("ports", []):
        if not _PORT.match(port):
            raise OperationValueError(
                f"firewalld port {port!r} is invalid: expected PORT/PROTO or FROM-TO/PROTO, e.g. 80/tcp",
            )
    for key, values in settings.items():
        for value in values:
            if not value or any(ch.isspace() for ch in value):
                raise OperationValueError(f"firewalld {key} entry {value!r} is invalid")


def _check_conflicts(
    zone: str,
    settings: Mapping[str, list[str]],
    configurations: Iterable[Mapping[str, Mapping[str, Any]]],
) -> None:
    """A source or interface belongs to one zone only: refuse to take it from another zone."""
    for key in ("sources", "interfaces"):
        for value in settings.get(key, []):
            for zones in configurations:
                for other, other_zone in zones.items():
                    if other != zone and value in other_zone.get(key, []):
                        raise OperationError(
                            f"Cannot add {key[:-1]} '{value}' to firewalld zone '{zone}': it is already "
                            f"bound to zone '{other}'. Remove it from '{other}' first.",
                        )


def _diff(
    current: Mapping[str, Any],
    target: str | None,
    settings: Mapping[str, list[str]],
    forward: bool | None = None,
) -> list[str]:
    """`firewall-cmd` arguments (after `--zone=`) that turn `current` into the wanted zone."""
    changes: list[str] = []
    if target is not None and current.get("target") != target:
        changes.append(f"--set-target={shlex.quote(target)}")
    if forward is not None and bool(current.get("forward")) != forward:
        changes.append("--add-forward" if forward else "--remove-forward")
    for key, values in settings.items():
        stem = LIST_SETTINGS[key]
        have = list(current.get(key, []))
        changes.extend(f"--add-{stem}={shlex.quote(v)}" for v in values if v not in have)
        changes.extend(f"--remove-{stem}={shlex.quote(v)}" for v in have if v not in values)
    return changes


def _apply(
    current: Mapping[str, Any],
    target: str | None,
    settings: Mapping[str, list[str]],
    forward: bool | None = None,
) -> dict:
    zone = dict(current)
    if target is not None:
        zone["target"] = target
    if forward is not None:
        zone["forward"] = forward
    zone.update({key: list(values) for key, values in settings.items()})
    return zone


def _absent(
    zone: str,
    facts: Mapping[str, Any],
    protect_ssh_from: str | None,
    ssh_port: int,
    after_reload: list[str],
) -> Iterator[str]:
    runtime, permanent = facts["zones"], facts["permanent"]
    if zone not in runtime and zone not in permanent:
        host.noop(f"firewalld zone {zone} does not exist")
        return
    if protect_ssh_from:
        after = {name: z for name, z in permanent.items() if name != zone}
        _check_ssh_path(runtime, after, zone, protect_ssh_from, ssh_port)
    if zone in permanent:
        yield f"firewall-cmd --permanent --delete-zone={zone}"
    yield "firewall-cmd --reload"
    yield from after_reload


@operation()
def zone(
    zone: str,
    present: bool = True,
    target: str | None = None,
    sources: list[str] | None = None,
    interfaces: list[str] | None = None,
    ports: list[str] | None = None,
    services: list[str] | None = None,
    forward: bool | None = None,
    protect_ssh_from: str | None = None,
    ssh_port: int = 22,
    after_reload: list[str] | None = None,
):
    """
    Create, change or delete a firewalld zone.

    + zone: zone name (letters, digits, ``_``, ``-``)
    + present: whether the zone should exist
    + target: ``default``, ``ACCEPT``, ``DROP``, ``REJECT`` or ``%%REJECT%%``; ``None`` leaves it
    + sources: exact list of source addresses/CIDRs; ``None`` leaves the zone's sources alone
    + interfaces: exact list of interfaces; ``None`` leaves them alone
    + ports: exact list of ``PORT/PROTO`` or ``FROM-TO/PROTO``; ``None`` leaves them alone
    + services: exact list of firewalld service names; ``None`` leaves them alone
    + forward: allow forwarding between the zone's own interfaces and sources (firewalld 0.9+), e.g.
      between containers of a Docker network whose subnet is a source; ``None`` leaves it alone
    + protect_ssh_from: the address this deploy's SSH connection comes from; the operation raises
      instead of making a change after which the zones would no longer admit SSH from it
    + ssh_port: the SSH port that ``protect_ssh_from`` checks
    + after_reload: commands to run right after a ``--reload`` this operation makes, for services
      whose own firewall rules a reload drops (``["systemctl restart docker"]``); never run otherwise

    A list given is the whole list: entries missing from it are removed. A source or interface
    already bound to another zone is **not** moved: the operation raises an error naming both
    zones, since taking it would silently change what that other zone admits.

    Existing zones are changed with ``--permanent`` and runtime command pairs, without a reload;
    creating or deleting a zone, or changing its target, ends with one ``firewall-cmd --reload``.
    firewalld must be running when the operation executes; while planning a run in which an
    earlier operation installs or starts it, the zone is planned as new.

    **Example:**

    .. code:: python

        from operations import firewalld

        firewalld.zone(
            name="Admit Tailscale peers and the Docker subnet",
            zone="self-hosted",
            sources=["100.64.0.0/10", "172.30.0.0/16"],
            ports=["80/tcp", "443/tcp", "53/tcp", "53/udp"],
            protect_ssh_from="100.101.102.103",
        )
    """
    settings = {
        key: list(values)
        for key, values in (
            ("sources", sources),
            ("interfaces", interfaces),
            ("ports", ports),
            ("services", services),
        )
        if values is not None
    }
    _validate(zone, target, settings)
    facts = host.get_fact(FirewalldZones)
    if not facts["running"]:
        if host.state.is_executing:
            raise OperationError(
                f"firewalld is not running on this host: start it before managing zone '{zone}'",
            )
        # Planning before an earlier operation installs or starts firewalld: plan from no zones.
        # The operation runs again at execution with the real zones (and the SSH check).
        facts, protect_ssh_from = FirewalldZones.default(), None

    if not present:
        yield from _absent(zone, facts, protect_ssh_from, ssh_port, after_reload or [])
        return

    runtime, permanent = facts["zones"], facts["permanent"]
    _check_conflicts(zone, settings, (runtime, permanent))

    exists = zone in permanent
    current_permanent = permanent[zone] if exists else _EMPTY_ZONE
    permanent_changes = _diff(current_permanent, target, settings, forward)
    reload = (
        not exists
        or zone not in runtime
        or (target is not None and runtime[zone].get("target") != target)
        or any(change.startswith("--set-target=") for change in permanent_changes)
    )
    runtime_changes = [] if reload else _diff(runtime[zone], None, settings, forward)

    if exists and not permanent_changes and not runtime_changes and not reload:
        host.noop(f"firewalld zone {zone} is up to date")
        return

    if protect_ssh_from:
        after_base = permanent if reload else runtime
        after = {**after_base, zone: _apply(after_base.get(zone, _EMPTY_ZONE), target, settings, forward)}
        _check_ssh_path(runtime, after, zone, protect_ssh_from, ssh_port)

    if not exists:
        yield f"firewall-cmd --permanent --new-zone={zone}"
    for change in permanent_changes:
        yield f"firewall-cmd --permanent --zone={zone} {change}"
    for change in runtime_changes:
        yield f"firewall-cmd --zone={zone} {change}"
    if reload:
        yield "firewall-cmd --reload"
        yield from after_reload or ()


def _handling_zones(zones: Mapping[str, Mapping[str, Any]], client_address: str) -> list[str]:
    """The zones that would handle traffic from ``client_address`` (see :func:`ssh_allowed`)."""
    address = ip_address(client_address)
    by_source = [name for name, z in zones.items() if any(_source_contains(s, address) for s in z["sources"])]
    return by_source or [name for name, z in zones.items() if z["interfaces"] or z.get("default")]


@operation()
def ssh_open_before_start(client_address: str, ssh_port: int = 22):
    """
    Before firewalld's first start, make its permanent configuration admit this SSH connection.

    + client_address: the address this deploy's SSH connection comes from
    + ssh_port: the port sshd answers it on

    A stopped firewalld starts with its permanent configuration, whose default zone usually admits
    the ``ssh`` service, port 22, only: a host whose sshd listens elsewhere would be cut off the
    moment firewalld starts. When the zones that would handle ``client_address`` do not admit
    ``<ssh_port>/tcp``, the port is added to them with ``firewall-offline-cmd`` (permanent; nothing
    else changes). A running firewalld is left to the zone changes, which check the path themselves.

    **Example:**

    .. code:: python

        firewalld.ssh_open_before_start(client_address="192.0.2.10", ssh_port=2222)
    """
    try:
        ip_address(client_address)
    except ValueError:
        raise OperationValueError(f"SSH client address {client_address!r} is not an IP address") from None
    facts = host.get_fact(FirewalldZones)
    if facts["running"]:
        host.noop("firewalld is running: its zone changes check the SSH path themselves")
        return
    permanent = facts["permanent"]
    if not permanent:
        if host.state.is_executing:
            raise OperationError(
                "cannot read firewalld's permanent configuration (firewall-offline-cmd): refusing to "
                f"start firewalld without knowing it admits SSH from {client_address} to port {ssh_port}",
            )
        # planning before an earlier operation installs firewalld: decided again at execution
        host.noop("firewalld is not installed yet: checked when it is, before it starts")
        return
    if ssh_allowed(permanent, client_address, ssh_port):
        host.noop(f"firewalld's permanent configuration admits SSH from {client_address} to port {ssh_port}")
        return
    for name in _handling_zones(permanent, client_address):
        if not _zone_admits_ssh(permanent[name], ssh_port):
            yield f"firewall-offline-cmd --zone={shlex.quote(name)} --add-port={int(ssh_port)}/tcp"
