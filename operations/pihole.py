"""
Manage Pi-hole's local DNS records through its v6 API.

``plan_dns_records`` is the pure desired-state logic; the ``dns_records`` operation reads the
current records through a client while planning (read-only: ``--dry`` is honest) and applies the
plan at execute time. The operation takes a *client factory*, a callable returning a
``PiholeClient``; each use logs in and always logs out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from ipaddress import ip_address

from pyinfra import host
from pyinfra.api import FunctionCommand, operation
from pyinfra.api.exceptions import OperationValueError

from operations.clients import read_while_planning
from operations.clients.pihole import PiholeClient, Record

ClientFactory = Callable[[], PiholeClient]


@dataclass(frozen=True)
class DnsPlan:
    """Records to add and to remove, each as (ip, hostname)."""

    add: tuple[Record, ...] = ()
    remove: tuple[Record, ...] = ()

    @property
    def changes(self) -> bool:
        return bool(self.add or self.remove)

    def describe(self) -> str:
        parts = [f"add {name} -> {ip}" for ip, name in self.add]
        parts += [f"remove {name} -> {ip}" for ip, name in self.remove]
        return "Pi-hole local DNS: " + ("; ".join(parts) if parts else "up to date")


def _normalise(records: Mapping[str, str]) -> dict[str, str]:
    """``{hostname: ip}`` with hostnames lower-cased; bad input raises OperationValueError."""
    clean: dict[str, str] = {}
    for name, ip in records.items():
        try:
            ip_address(ip)
        except ValueError:
            raise OperationValueError(f"records[{name!r}]: expected an IP address, got {ip!r}") from None
        if not name or any(ch.isspace() for ch in name):
            raise OperationValueError(f"records: expected a hostname without spaces, got {name!r}")
        clean[name.strip().lower()] = ip
    return clean


def plan_dns_records(existing: Iterable[Record], records: Mapping[str, str], present: bool = True) -> DnsPlan:
    """Make each hostname in ``records`` ({hostname: ip}) resolve to its IP only (``present``), or to
    nothing (not ``present``). Records for other hostnames are never touched."""
    wanted = _normalise(records)
    current = set(existing)
    ours = sorted(record for record in current if record[1] in wanted)
    if not present:
        return DnsPlan(remove=tuple(ours))
    add = tuple(sorted((ip, name) for name, ip in wanted.items() if (ip, name) not in current))
    stale = tuple(record for record in ours if wanted[record[1]] != record[0])
    return DnsPlan(add=add, remove=stale)


def apply_dns_plan(client: PiholeClient, plan: DnsPlan) -> None:
    """Carry out ``plan`` with a logged-in client (removals first, so a moved name never has two IPs)."""
    for record in plan.remove:
        client.remove_record(record)
    for record in plan.add:
        client.add_record(record)


def _apply(client_factory: ClientFactory, plan: DnsPlan) -> None:
    with client_factory() as client:
        apply_dns_plan(client, plan)


@operation()
def dns_records(client_factory: ClientFactory, records: Mapping[str, str], present: bool = True):
    """
    Set Pi-hole local DNS records (A/AAAA through ``/api/config/dns/hosts``).

    + client_factory: callable returning a ``PiholeClient`` (not yet logged in)
    + records: ``{hostname: ip}``; each hostname ends up resolving to that IP only
    + present: whether the records should exist

    **Example:**

    .. code:: python

        pihole.dns_records(
            name="Local DNS for the proxied services",
            client_factory=make_pihole_client,
            records={"chat.example.com": "100.64.0.1", "hole.example.com": "100.64.0.1"},
        )
    """
    def read() -> set[Record]:
        with client_factory() as client:
            return client.get_local_dns()

    reachable, existing = read_while_planning(read, host.state.is_executing)
    plan = plan_dns_records(existing if reachable else set(), records, present)
    if not plan.changes:
        host.noop(plan.describe())
        return
    yield FunctionCommand(_named_apply(client_factory, plan), (), {})


def _named_apply(client_factory: ClientFactory, plan: DnsPlan) -> Callable[[], None]:
    def apply() -> None:
        _apply(client_factory, plan)

    apply.__name__ = plan.describe()
    return apply
