"""
Manage one nftables table, loaded now and at every boot by a systemd unit of its own.

The table lives in a file (``nft -f`` syntax) that replaces it atomically: the file creates the
table, deletes it and defines it again in one transaction, so loading it twice never duplicates a
rule and a half-loaded table never exists. A oneshot unit loads the file at boot (before the units
named in ``before``) and deletes the table when stopped. The table carries the digest of its
definition as its comment: a table changed or deleted by hand shows as drift and is loaded again.

firewalld leaves foreign tables alone (its nftables backend replaces only its own ``firewalld``
tables on start and reload), so such a table keeps filtering across firewalld reloads.
"""

from __future__ import annotations

import re
from io import StringIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, QuoteString, StringCommand, operation
from pyinfra.api.exceptions import OperationError, OperationValueError
from pyinfra.api.util import get_file_sha1

from facts.nftables import NftablesTable
from facts.reads import read_fact

FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")
NFT = "/usr/sbin/nft"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_UNIT = re.compile(r"^[A-Za-z0-9_.@-]+\.service$")


def _sha1(text: str) -> str:
    return get_file_sha1(StringIO(text))


def render_file(family: str, table: str, definition: str, description: str = "") -> str:
    """The file: the table replaced as a whole, its comment the digest of ``definition``."""
    body = "\n".join(f"\t{line}" if line.strip() else "" for line in definition.strip("\n").splitlines())
    header = f"# {description}\n" if description else ""
    return (
        f"#!{NFT} -f\n{header}"
        f"table {family} {table}\n"
        f"delete table {family} {table}\n"
        f"table {family} {table} {{\n"
        f'\tcomment "sha1:{_sha1(definition)}"\n'
        f"{body}\n"
        "}\n"
    )


def render_unit(family: str, table: str, path: str, description: str, before: list[str]) -> str:
    order = " ".join(before)
    ordering = f"Before={order}\n" if order else ""
    return (
        "[Unit]\n"
        f"Description={description or f'nftables table {family} {table}'}\n"
        f"{ordering}"
        "\n[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        f"ExecStart={NFT} -f {path}\n"
        f"ExecReload={NFT} -f {path}\n"
        f"ExecStop={NFT} delete table {family} {table}\n"
        "\n[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def _validate(family: str, table: str, path: str, unit: str) -> None:
    if family not in FAMILIES:
        raise OperationValueError(f"nftables family {family!r} is invalid: expected one of {FAMILIES}")
    if not _NAME.match(table):
        raise OperationValueError(
            f"nftables table name {table!r} is invalid: a letter, then letters, digits and '_'",
        )
    if not path.startswith("/") or any(ch.isspace() for ch in path):
        raise OperationValueError(f"nftables file path {path!r} must be absolute, without spaces")
    if not _UNIT.match(unit):
        raise OperationValueError(f"systemd unit name {unit!r} is invalid: expected NAME.service")


@operation()
def table(
    table: str,
    definition: str = "",
    family: str = "inet",
    present: bool = True,
    path: str | None = None,
    unit: str | None = None,
    before: list[str] | None = None,
    description: str = "",
):
    """
    Keep an nftables table loaded, from a file, at runtime and across reboots.

    + table: table name (letters, digits, ``_``)
    + definition: the table's contents in ``nft -f`` syntax (sets, chains), without the
      ``table … { }`` around them
    + family: ``inet`` (IPv4 and IPv6), ``ip``, ``ip6``, …
    + present: ``False`` stops and removes the unit, the file and the table
    + path: the file holding the table (default ``/etc/nftables.d/<table>.nft``)
    + unit: the systemd unit that loads it (default ``nftables-table-<table>.service``)
    + before: units the table must be loaded before at boot, e.g. ``["docker.service"]``
    + description: one line for the unit and the file's header

    The ``nft`` command must be installed when the operation executes; while planning a run in
    which an earlier operation installs it, the table is planned as new.

    **Example:**

    .. code:: python

        from operations import nftables

        nftables.table(
            name="Published ports answer the tailnet only",
            table="tailnet_ports",
            definition='chain guard {\\n  type filter hook prerouting priority dstnat - 10; policy accept;\\n'
                       '  iifname != "tailscale0" ip daddr 100.64.0.10 tcp dport 443 drop\\n}',
            before=["docker.service"],
        )
    """
    path = path or f"/etc/nftables.d/{table}.nft"
    unit = unit or f"nftables-table-{table}.service"
    before = list(before or [])
    _validate(family, table, path, unit)
    unit_path = f"/etc/systemd/system/{unit}"
    state = read_fact(NftablesTable, family=family, table=table, path=path, unit_path=unit_path, host=host)

    if not present:
        if state["unit_sha1"] is None and state["file_sha1"] is None and not state["loaded"]:
            host.noop(f"nftables table {family} {table} is absent")
            return
        if state["unit_sha1"] is not None:
            yield StringCommand("systemctl", "disable", "--now", QuoteString(unit))
            yield StringCommand("rm", "-f", QuoteString(unit_path))
            yield "systemctl daemon-reload"
        if state["file_sha1"] is not None:
            yield StringCommand("rm", "-f", QuoteString(path))
        if state["loaded"]:
            yield StringCommand(NFT, "delete", "table", family, table)
        return

    if not state["nft"] and host.state.is_executing:
        raise OperationError(
            f"the nft command is not installed on this host: install nftables before managing table {table}",
        )
    content = render_file(family, table, definition, description)
    unit_content = render_unit(family, table, path, description, before)
    file_ok = state["file_sha1"] == _sha1(content)
    unit_ok = state["unit_sha1"] == _sha1(unit_content)
    loaded = state["loaded"] and state["comment"] == f"sha1:{_sha1(definition)}"
    enabled = state["enabled"] == "enabled"
    active = state["active"] == "active"
    if file_ok and unit_ok and loaded and enabled and active:
        host.noop(f"nftables table {family} {table} is loaded and kept by {unit}")
        return

    if not file_ok:
        directory = path.rsplit("/", 1)[0] or "/"
        yield StringCommand("mkdir", "-p", QuoteString(directory))
        yield FileUploadCommand(StringIO(content), path, remote_temp_filename=host.get_temp_filename(path))
        yield StringCommand("chmod", "644", QuoteString(path))
        # a syntax error is reported now, naming the file, before the running table is replaced
        yield StringCommand(NFT, "--check", "-f", QuoteString(path))
    if not unit_ok:
        yield FileUploadCommand(
            StringIO(unit_content), unit_path, remote_temp_filename=host.get_temp_filename(unit_path),
        )
        yield StringCommand("chmod", "644", QuoteString(unit_path))
        yield "systemctl daemon-reload"
    if not enabled:
        yield StringCommand("systemctl", "enable", QuoteString(unit))
    if not (file_ok and unit_ok and loaded and active):
        # (re)loads the file: the unit's ExecStart replaces the table in one transaction
        yield StringCommand("systemctl", "restart", QuoteString(unit))
