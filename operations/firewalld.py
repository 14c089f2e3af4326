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
from pyinfra.api import FunctionCommand, operation
from pyinfra.api.exceptions import ConnectError, OperationError, OperationValueError

from facts.firewalld import FirewalldZones, RemovedSshEntries
from facts.reads import read_fact
from operations.failures import named, refuse, report

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
    facts = read_fact(FirewalldZones, host=host)
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
    facts = read_fact(FirewalldZones, host=host)
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


# -- SSH over the tailnet only ------------------------------------------------------------------
# the transient systemd timer that puts removed SSH entries back unless a login over the tailnet confirms
TAILNET_REVERT_UNIT = "homelab-ssh-tailnet-revert"
# what was taken out: `configuration zone kind value` lines (confirmed; `.pending`: not confirmed yet)
TAILNET_STATE_FILE = "/etc/homelab/ssh-tailnet-only.removed"


def _networks(ranges: Iterable[str]) -> list[Any]:
    found = []
    for value in ranges:
        try:
            found.append(ip_network(str(value), strict=False))
        except ValueError:
            raise OperationValueError(f"tailnet range {value!r} is not an address or CIDR") from None
    return found


def _inside(value: str, networks: list[Any]) -> bool:
    """Whether the source ``value`` (an address or CIDR; a MAC or ipset is never) lies in ``networks``."""
    try:
        source = ip_network(value, strict=False)
    except ValueError:
        return False
    return any(source.version == n.version and source.subnet_of(n) for n in networks)


def handles_other_traffic(zone: Mapping[str, Any], networks: list[Any], default: bool) -> bool:
    """Whether ``zone`` handles traffic from outside ``networks``: it holds an interface, a source not
    inside them, or it is the default zone (traffic no other zone claims)."""
    if default or zone.get("default") or zone.get("interfaces"):
        return True
    return any(not _inside(source, networks) for source in zone.get("sources", []))


def ssh_entries(zones: Mapping[str, Mapping[str, Any]], default_zone: str | None, networks: list[Any],
                ssh_port: int, keep: Iterable[str]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The SSH entries of the zones that handle traffic from outside ``networks`` (but ``keep``):
    ``(zone, kind, value)`` for the ``ssh`` service, ``<ssh_port>/tcp`` and ``22/tcp``; and the
    problems that keep SSH from being limited (a zone with target ACCEPT, a port range holding the port)."""
    entries: list[tuple[str, str, str]] = []
    problems: list[str] = []
    ports = {ssh_port, 22}
    for name, zone in zones.items():
        if name in keep or not handles_other_traffic(zone, networks, name == default_zone):
            continue
        if zone.get("target") == "ACCEPT":
            problems.append(f"zone '{name}' has target ACCEPT: it admits everything, SSH included "
                            "(change its target or move its interfaces and sources to another zone)")
            continue
        if "ssh" in zone.get("services", []):
            entries.append((name, "service", "ssh"))
        for spec in zone.get("ports", []):
            match = _PORT.match(spec)
            if not match or match[3] != "tcp":
                continue
            low, high = int(match[1]), int(match[2] or match[1])
            held = sorted(port for port in ports if low <= port <= high)
            if held and low == high:
                entries.append((name, "port", spec))
            elif held:
                problems.append(f"zone '{name}' opens the port range {spec}, which holds SSH's port "
                                f"{held[0]}: narrow it")
    return entries, problems


def _entry_lines(entries: Iterable[tuple[str, str, str, str]]) -> str:
    return "".join(f"{' '.join(entry)}\n" for entry in entries)


def _restore_files(files: Iterable[str]) -> str:
    """Shell that puts back every entry listed in ``files`` (runtime and permanent) and removes the files
    once all are back (firewall-cmd answers an entry that is there already with success)."""
    names = " ".join(files)
    return (
        f"ok=1; for f in {names}; do [ -f \"$f\" ] || continue; "
        'while read -r c z k v; do case "$c" in permanent) p=--permanent;; runtime) p=;; *) continue;; esac; '
        'case "$k" in service|port) ;; *) continue;; esac; '
        'firewall-cmd $p --zone="$z" --add-"$k"="$v" >/dev/null || ok=; done < "$f"; done; '
        f'[ -n "$ok" ] && rm -f {names}'
    )


def tailnet_restore_command(state_file: str = TAILNET_STATE_FILE, pending_only: bool = True) -> str:
    """Shell that puts back what was removed: the unconfirmed entries (what the revert timer runs), or
    everything recorded (``pending_only=False``: turning the restriction off)."""
    files = [f"{state_file}.pending"] if pending_only else [state_file, f"{state_file}.pending"]
    return _restore_files(files)


def tailnet_apply_command(entries: list[tuple[str, str, str, str]], revert_after: int,
                          state_file: str = TAILNET_STATE_FILE) -> str:
    """Shell that records ``entries`` as unconfirmed, arms the revert timer and removes them (runtime and
    permanent). A removal that fails puts back what was removed and stops."""
    pending = f"{state_file}.pending"
    restore = tailnet_restore_command(state_file)
    removals = " && ".join(
        f"firewall-cmd{' --permanent' if conf == 'permanent' else ''} --zone={shlex.quote(zone)} "
        f"--remove-{kind}={shlex.quote(value)} >/dev/null"
        for conf, zone, kind, value in entries
    ) or "true"
    record = (f"printf %s {shlex.quote(_entry_lines(entries))} >> {pending} || exit 1; " if entries
              else f"touch {pending} || exit 1; ")
    return (
        "command -v systemd-run >/dev/null 2>&1 || { echo 'SSH tailnet-only: no systemd-run on this host, "
        "so the change could not be made revertible; nothing was changed' >&2; exit 1; }; "
        f"systemctl stop {TAILNET_REVERT_UNIT}.timer 2>/dev/null; "
        f"systemctl reset-failed {TAILNET_REVERT_UNIT}.service 2>/dev/null; "
        f"mkdir -p {shlex.quote(state_file.rsplit('/', 1)[0] or '/')} || exit 1; {record}"
        f"systemd-run --quiet --unit={TAILNET_REVERT_UNIT} --on-active={int(revert_after)} "
        f"--timer-property=AccuracySec=1s /bin/sh -c {shlex.quote(restore)} || {{ {restore}; exit 1; }}; "
        f"{removals} || {{ systemctl stop {TAILNET_REVERT_UNIT}.timer; {restore}; "
        "echo 'SSH tailnet-only: firewall-cmd refused a removal; what was removed is back' >&2; exit 1; }"
    )


def tailnet_confirm_command(state_file: str = TAILNET_STATE_FILE) -> str:
    """Shell that keeps the change: stops the revert timer and records the entries as confirmed; fails when
    the timer is no longer armed (it has put them back already)."""
    pending = f"{state_file}.pending"
    timer = f"{TAILNET_REVERT_UNIT}.timer"
    return (
        f"systemctl is-active --quiet {timer} || {{ echo 'SSH tailnet-only: the revert timer has already put "
        "SSH back in the other zones; run the deploy again' >&2; exit 1; }; "
        f"systemctl stop {timer} && {{ [ ! -f {pending} ] || cat {pending} >> {state_file}; }} "
        f"&& rm -f {pending}"
    )


class _TailnetLogin(FunctionCommand):
    """A second SSH login to the host's Tailscale address (the deploy's own login when ``address`` is
    ``None``), as the deploy's user with its key. ``proof``: before any change, a failure fails the
    operation with nothing changed; otherwise it confirms the change, and a failure puts it back at once
    (the revert timer does it if the deploy's own connection is gone too)."""

    def __init__(self, address: str | None, port: int, proof: bool, refusal: str, state_file: str):
        what = "proves the host is reached over the tailnet" if proof else "confirms SSH over the tailnet"
        where = f"{address}:{port}" if address else "the host"
        super().__init__(named(lambda *a: None, f"a second SSH login to {where} {what}"),
                         (address, port, proof, refusal, state_file), {})

    def execute(self, state: Any, host: Any, connector_arguments: Any) -> bool:
        from operations.sshd import _connect_again, _run  # the sshd guard's second login

        address, port, proof, refusal, state_file = self.args
        where = f"{address}:{port}" if address else "the host"
        try:
            second = _connect_again(state, host, address=address, port=port, settle=0)
        except (ConnectError, OSError) as error:
            reason = " ".join(str(error).split()) or type(error).__name__
            if proof:
                return report(host, refusal.replace("{reason}", reason))
            back = _run(host, f"systemctl stop {TAILNET_REVERT_UNIT}.timer 2>/dev/null; "
                              f"{tailnet_restore_command(state_file)}", connector_arguments)
            done = ("SSH is back in the other zones" if back
                    else f"putting it back failed: {TAILNET_REVERT_UNIT}.timer does it shortly")
            return report(host, f"SSH tailnet-only: a login to {where} failed after SSH was taken out of the "
                                f"other zones ({reason}), so {done}")
        client = getattr(second, "client", None)
        if client is not None:
            client.close()
        if proof:
            return True
        if not _run(host, tailnet_confirm_command(state_file), connector_arguments):
            return report(host, "SSH tailnet-only: the login over the tailnet worked, but the change could "
                                f"not be kept: its revert timer ({TAILNET_REVERT_UNIT}.timer) had fired or "
                                "could not be stopped; run the deploy again")
        return True


@operation()
def ssh_tailnet_only(
    zone: str,
    tailnet: list[str],
    ssh_port: int = 22,
    client_address: str | None = None,
    tailscale_ip: str | None = None,
    present: bool = True,
    keep: list[str] | None = None,
    revert_after: int = 120,
    state_file: str = TAILNET_STATE_FILE,
    remedy: str = "run it without this change",
):
    """
    Admit SSH over the tailnet only: take SSH out of every other zone that handles traffic from
    outside the tailnet; or (``present=False``) put back exactly what this took out.

    + zone: the tailnet's zone, which keeps SSH (it must admit ``ssh_port`` when the change is made)
    + tailnet: the tailnet's addresses/CIDRs (the sources of ``zone``)
    + ssh_port: the port sshd answers on
    + client_address: the address this deploy's SSH connection comes from (``None``: not over SSH)
    + tailscale_ip: the host's address in the tailnet, for the second logins
    + present: ``False`` puts back what was taken out (recorded in ``state_file``) and removes the record
    + keep: other zones left alone (Docker's ``docker`` zone, holding the container bridges only)
    + revert_after: seconds after which the change is put back unless a login over the tailnet confirmed it
    + state_file: where the entries taken out are recorded (``configuration zone kind value`` lines)
    + remedy: what the refusal suggests besides running the deploy over the tailnet

    A zone handles traffic from outside the tailnet when it holds an interface, a source not inside
    ``tailnet``, or is the default zone. Its ``ssh`` service, ``<ssh_port>/tcp`` and ``22/tcp`` are
    removed, runtime and permanent. Such a zone with target ACCEPT, or a port range holding the port,
    is refused: SSH cannot be limited while it is there.

    The change is made only when the deploy proves it reaches the host over the tailnet: its own
    connection comes from ``tailnet``, or a second login to ``tailscale_ip`` works. Then: the entries are
    recorded as unconfirmed, a transient systemd timer is armed to put them back, they are removed, and
    a second login over the tailnet (the deploy's own login when its session comes from the tailnet, else
    one to ``tailscale_ip``) confirms (the timer stops) or puts them back at once. Connections
    already open stay open (firewalld keeps established connections).

    **Example:**

    .. code:: python

        firewalld.ssh_tailnet_only(
            name="SSH over the tailnet only",
            zone="self-hosted",
            tailnet=["100.64.0.0/10"],
            ssh_port=22,
            client_address="192.0.2.10",
            tailscale_ip="100.101.102.103",
            keep=["docker"],
        )
    """
    if not _ZONE_NAME.match(zone):
        raise OperationValueError(
            f"firewalld zone name {zone!r} is invalid: use letters, digits, '_' and '-'")
    if not 1 <= int(ssh_port) <= 65535:
        raise OperationValueError(f"ssh_port: {ssh_port!r} is not a port")
    if not 10 <= revert_after <= 3600:
        raise OperationValueError(f"revert_after: {revert_after!r} must be 10 to 3600 seconds")
    if not state_file.startswith("/") or any(ch.isspace() or ch in "'\"$`;&|" for ch in state_file):
        raise OperationValueError(
            f"state_file: {state_file!r} must be an absolute path without shell characters")
    networks = _networks(tailnet)
    for address, label in ((client_address, "client_address"), (tailscale_ip, "tailscale_ip")):
        if address is not None:
            try:
                ip_address(address)
            except ValueError:
                raise OperationValueError(f"{label}: {address!r} is not an IP address") from None
    recorded = read_fact(RemovedSshEntries, path=state_file, unit=f"{TAILNET_REVERT_UNIT}.timer", host=host)

    if not present:
        if not recorded["removed"] and not recorded["pending"] and not recorded["timer"]:
            host.noop("SSH is not limited to the tailnet here: nothing to put back")
            return
        yield (f"systemctl stop {TAILNET_REVERT_UNIT}.timer 2>/dev/null; "
               f"{tailnet_restore_command(state_file, pending_only=False)} || {{ echo 'SSH tailnet-only: "
               f"firewall-cmd could not put back every entry of {state_file}; it is kept for the next "
               "run' >&2; exit 1; }")
        return

    facts = read_fact(FirewalldZones, host=host)
    if not facts["running"]:
        if host.state.is_executing:
            yield from refuse(f"SSH tailnet-only: firewalld is not running on this host, so SSH cannot be "
                              f"limited to zone '{zone}'")
            return
        # planning before an earlier operation starts firewalld: it will start with its permanent zones
        facts = {**facts, "zones": facts["permanent"]}
    keep_zones = {zone, *(keep or [])}
    entries: list[tuple[str, str, str, str]] = []
    problems: list[str] = []
    for conf, zones in (("permanent", facts["permanent"]), ("runtime", facts["zones"])):
        found, trouble = ssh_entries(zones, facts["default_zone"], networks, int(ssh_port), keep_zones)
        entries += [(conf, *entry) for entry in found]
        problems += [problem for problem in trouble if problem not in problems]
    if problems:
        yield from refuse("SSH tailnet-only: refused, SSH cannot be limited to the tailnet: "
                          + "; ".join(problems))
        return
    pending = bool(recorded["pending"] or recorded["timer"])
    if not entries and not pending:
        host.noop(f"SSH is admitted over the tailnet only (zone {zone})")
        return
    if host.state.is_executing:
        # the tailnet's own zone must keep SSH first (the zone step opens the port before this runs)
        for conf, zones in (("runtime", facts["zones"]), ("permanent", facts["permanent"])):
            if zone not in zones or not _zone_admits_ssh(zones[zone], int(ssh_port)):
                yield from refuse(f"SSH tailnet-only: refused, zone '{zone}' does not admit SSH on port "
                                  f"{ssh_port} ({conf}): the tailnet would lose SSH too")
                return

    over_ssh = (client_address is not None
                and hasattr(getattr(host, "connector", None), "make_paramiko_kwargs"))
    # a session from the tailnet is its own proof, and its own login (not over SSH: none) confirms; from
    # elsewhere, a login to the Tailscale IP proves the tailnet path first and confirms after
    from_tailnet = over_ssh and any(ip_address(client_address) in network for network in networks)
    login_to = None if from_tailnet else tailscale_ip
    if over_ssh and not from_tailnet:
        ranges = ", ".join(str(network) for network in networks)
        if tailscale_ip is None:
            yield from refuse(
                f"SSH tailnet-only: refused, this deploy comes from {client_address}, outside the tailnet "
                f"({ranges}), and the host has no Tailscale IP to log in to: join the tailnet first, run the "
                f"deploy over it, or {remedy}")
            return
        yield _TailnetLogin(
            tailscale_ip, int(ssh_port), True,
            f"SSH tailnet-only: refused, nothing changed: this deploy comes from {client_address}, outside "
            f"the tailnet ({ranges}), and a login to {tailscale_ip}:{ssh_port} failed ({{reason}}): run the "
            f"deploy over the tailnet (ssh_hostname {tailscale_ip}), or {remedy}",
            state_file,
        )
    yield tailnet_apply_command(entries, revert_after, state_file)
    if not over_ssh:
        # not over SSH (local, docker, @fake): there is no login to lose
        yield tailnet_confirm_command(state_file)
        return
    yield _TailnetLogin(login_to, int(ssh_port), False, "", state_file)
