"""
Manage Pi-hole's local DNS records through its v6 API.

``plan_dns_records`` is the pure desired-state logic; the ``dns_records`` operation reads the
current entries through a client while planning (read-only: ``--dry`` is honest) and applies the
plan at execute time. The operation takes a *client factory*, a callable returning a
``PiholeClient``; each use logs in and always logs out.

Pi-hole stores each entry as the exact string it was given and may hold entries made by hand in its
web interface: ``"10.1.1.1 Chat.Example.COM"``, a tab between address and name, several names on one
line (``"10.1.1.1 nas.lan chat.example.com"``). The plan reads them as DNS does (names without case,
any whitespace) and changes them as FTL matches them (the exact stored string): an entry that already
gives our names the right address is kept as it is; one that gives a wrong address is deleted by its
stored string; one that holds our name beside other names is deleted and stored again without ours,
the other names kept. A CNAME record for one of our names would keep answering instead of the local
record: it is a conflict, reported while planning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from pyinfra import host
from pyinfra.api import FunctionCommand, operation
from pyinfra.api.exceptions import OperationError, OperationValueError

from operations import diffs
from operations.clients import ServiceUnreachable, read_while_planning
from operations.clients.pihole import PiholeClient, PiholeError
from operations.failures import named, refuse, report

ClientFactory = Callable[[], PiholeClient]
Record = tuple[str, str]  # (ip, hostname)


@dataclass(frozen=True)
class Step:
    """One API call: ``delete`` an exact stored entry or ``add`` an entry; ``why`` says it for a person."""

    action: str
    entry: str
    why: str


@dataclass(frozen=True)
class DnsPlan:
    """The calls to make, in order (each old line deleted, then stored again without our names, then
    ours added), and conflicts that stop the operation."""

    steps: tuple[Step, ...] = ()
    conflicts: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        return bool(self.steps)

    @property
    def add(self) -> tuple[str, ...]:
        return tuple(step.entry for step in self.steps if step.action == "add")

    @property
    def delete(self) -> tuple[str, ...]:
        return tuple(step.entry for step in self.steps if step.action == "delete")

    def describe(self) -> str:
        parts = [step.why for step in self.steps]
        return "Pi-hole local DNS: " + ("; ".join(parts) if parts else "up to date")


def _normalise(records: Mapping[str, str] | Iterable[str], present: bool) -> dict[str, str]:
    """``{hostname: ip}`` with hostnames lower-cased; bad input raises OperationValueError.

    Removing (not ``present``) needs only the names: ``records`` may then be a list of hostnames, and
    the addresses of a mapping are not used (every entry of the name goes, whatever its address)."""
    if isinstance(records, str):
        raise OperationValueError(
            f"records: expected {{hostname: ip}} or a list of hostnames, got {records!r}"
        )
    if not present:
        return dict.fromkeys((_hostname(name) for name in records), "")
    if not isinstance(records, Mapping):
        raise OperationValueError(
            f"records: expected {{hostname: ip}} to add records, got {type(records).__name__}"
        )
    clean: dict[str, str] = {}
    for name, ip in records.items():
        try:
            address = ip_address(ip)
        except ValueError:
            raise OperationValueError(f"records[{name!r}]: expected an IP address, got {ip!r}") from None
        clean[_hostname(name)] = str(address)
    return clean


def _hostname(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or any(ch.isspace() for ch in name.strip()):
        raise OperationValueError(f"records: expected a hostname without spaces, got {name!r}")
    return name.strip().lower()


def parse_entry(entry: str) -> tuple[str, list[str]] | None:
    """``(ip, names)`` of a stored ``dns.hosts`` entry (any whitespace; names as written), or None."""
    parts = entry.split()
    if len(parts) < 2:
        return None
    return parts[0], parts[1:]


def _same_ip(a: str, b: str) -> bool:
    try:
        return ip_address(a) == ip_address(b)
    except ValueError:
        return a == b


def cname_aliases(entry: str) -> list[str]:
    """The names a stored ``dns.cnameRecords`` entry answers for (``ALIAS[,ALIAS…],TARGET[,TTL]``)."""
    parts = [part.strip() for part in entry.split(",")]
    if parts and parts[-1].isdigit():
        parts = parts[:-1]
    return [part for part in parts[:-1] if part]


def _shown(entry: str) -> str:
    """An entry as a person reads it: plain when it is ``IP NAME``, quoted (tabs visible) otherwise."""
    parsed = parse_entry(entry)
    if parsed and len(parsed[1]) == 1 and entry == f"{parsed[0]} {parsed[1][0]}":
        return f"{parsed[1][0]} -> {parsed[0]}"
    return repr(entry)


def plan_dns_records(
    existing: Iterable[str],
    records: Mapping[str, str] | Iterable[str],
    present: bool = True,
    cname_records: Iterable[str] = (),
) -> DnsPlan:
    """Make each hostname in ``records`` ({hostname: ip}) resolve to its IP only (``present``), or to
    nothing (not ``present``; hostnames alone are enough then), given Pi-hole's stored ``existing``
    entries and ``cname_records``. Names of other entries are never dropped."""
    wanted = _normalise(records, present)
    stored = list(existing)
    steps: list[Step] = []
    satisfied: set[str] = set()
    added: set[str] = set(stored)
    for entry in stored:
        parsed = parse_entry(entry)
        if parsed is None:
            continue
        ip, names = parsed
        ours = [name for name in names if name.lower() in wanted]
        if not ours:
            continue
        others = [name for name in names if name.lower() not in wanted]
        if present and not others and all(_same_ip(wanted[name.lower()], ip) for name in ours):
            satisfied.update(name.lower() for name in ours)
            continue
        if others:
            rewritten = f"{ip} {' '.join(others)}"
            steps.append(Step("delete", entry, f"rewrite {entry!r} without {', '.join(ours)}"))
            if rewritten not in added:
                added.add(rewritten)
                steps.append(Step("add", rewritten, f"keep {rewritten!r}"))
        else:
            steps.append(Step("delete", entry, f"remove {_shown(entry)}"))
    conflicts: list[str] = []
    if present:
        for entry in cname_records:
            for alias in cname_aliases(entry):
                if alias.lower() in wanted:
                    name = alias.lower()
                    conflicts.append(
                        f"Pi-hole's CNAME record {entry!r} answers for {name}, so the local DNS record "
                        f"{name} -> {wanted[name]} would never be used: delete that CNAME record in "
                        "Pi-hole (Local DNS > CNAME records) and run again"
                    )
        for name, ip in sorted(wanted.items()):
            if name not in satisfied:
                steps.append(Step("add", f"{ip} {name}", f"add {name} -> {ip}"))
    return DnsPlan(steps=tuple(steps), conflicts=tuple(conflicts))


def apply_dns_plan(client: PiholeClient, plan: DnsPlan) -> None:
    """Carry out ``plan`` with a logged-in client, step by step in its order."""
    for step in plan.steps:
        if step.action == "delete":
            client.delete_host(step.entry)
        else:
            client.add_host(step.entry)


def _apply(client_factory: ClientFactory, plan: DnsPlan) -> None:
    with client_factory() as client:
        apply_dns_plan(client, plan)


@operation()
def dns_records(
    client_factory: ClientFactory, records: Mapping[str, str] | Iterable[str], present: bool = True
):
    """
    Set Pi-hole local DNS records (A/AAAA through ``/api/config/dns/hosts``).

    + client_factory: callable returning a ``PiholeClient`` (not yet logged in)
    + records: ``{hostname: ip}``; each hostname ends up resolving to that IP only. With
      ``present=False`` a list of hostnames is enough: every entry for them goes, whatever its address
    + present: whether the records should exist

    Entries are matched as DNS reads them (names without case, any whitespace, several names on a
    line) and changed as Pi-hole stores them. A CNAME record for one of the names is an operation
    error while planning; so is a password Pi-hole refuses.

    **Example:**

    .. code:: python

        pihole.dns_records(
            name="Local DNS for the proxied services",
            client_factory=make_pihole_client,
            records={"chat.example.com": "100.64.0.1", "hole.example.com": "100.64.0.1"},
        )
        pihole.dns_records(
            name="No local DNS for a retired service",
            client_factory=make_pihole_client,
            records=["comfy.example.com"],
            present=False,
        )
    """

    def read() -> tuple[list[str], list[str]]:
        with client_factory() as client:
            return client.get_hosts(), client.get_cname_records()

    try:
        reachable, existing = read_while_planning(read, host.state.is_executing)
    except (PiholeError, ServiceUnreachable) as error:  # refused, or (when the run gets here) no answer
        yield from refuse(str(error))
        return
    hosts, cnames = existing if reachable else ([], [])
    plan = plan_dns_records(hosts, records, present, cnames)
    if plan.conflicts:
        yield from refuse("; ".join(plan.conflicts))
        return
    if not plan.changes:
        host.noop(plan.describe())
        return
    diffs.show(plan.describe())
    yield FunctionCommand(_named_apply(client_factory, plan), (), {})


def _named_apply(client_factory: ClientFactory, plan: DnsPlan) -> Callable[..., bool]:
    def apply(state: Any = None, host: Any = None) -> bool:
        """pyinfra passes ``state`` and ``host``: a refused call is then one red line on that host
        and a failed operation (no traceback); called without them, it raises."""
        try:
            _apply(client_factory, plan)
        except (PiholeError, ServiceUnreachable) as error:
            if host is None:
                raise OperationError(str(error)) from None
            return report(host, str(error))
        return True

    return named(apply, plan.describe())
