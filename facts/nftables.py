"""Facts about nftables tables that a systemd unit loads from a file at boot."""

from __future__ import annotations

import re
import shlex
from typing import Any

from pyinfra.api import FactBase

from facts.sections import split_sections

_MARK = "### pyinfra-nft "
_COMMENT = re.compile(r'^\s*comment "(.*)"\s*$')
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


class NftablesTable(FactBase[dict[str, Any]]):
    """
    Returns the state of one nftables table kept by a file and a systemd unit, in one command:
    ``{"nft": bool, "loaded": bool, "comment": str | None, "file_sha1": str | None,
    "unit_sha1": str | None, "enabled": str | None, "active": str | None}``.

    ``loaded`` says whether the kernel holds the table now; ``comment`` is its comment (the
    operation writes the digest of its definition there, so a table changed or reloaded from
    elsewhere shows as drift). ``enabled``/``active`` are ``systemctl is-enabled``/``is-active``
    answers (``None`` when systemd does not know the unit).
    """

    def command(self, family: str, table: str, path: str, unit_path: str) -> str:
        unit = shlex.quote(unit_path.rsplit("/", 1)[-1])
        return "; ".join([
            f"echo '{_MARK}nft'; command -v nft || true",
            f"echo '{_MARK}table'; nft list table {shlex.quote(family)} {shlex.quote(table)} 2>/dev/null "
            "| head -n 3 || true",
            f"echo '{_MARK}file'; sha1sum {shlex.quote(path)} 2>/dev/null || true",
            f"echo '{_MARK}unit'; sha1sum {shlex.quote(unit_path)} 2>/dev/null || true",
            f"echo '{_MARK}enabled'; systemctl is-enabled {unit} 2>/dev/null || true",
            f"echo '{_MARK}active'; systemctl is-active {unit} 2>/dev/null || true",
        ])

    @staticmethod
    def default() -> dict[str, Any]:
        return {"nft": False, "loaded": False, "comment": None, "file_sha1": None, "unit_sha1": None,
                "enabled": None, "active": None}

    def process(self, output: list[str]) -> dict[str, Any]:
        sections = split_sections(output, _MARK, skip_blank=True)
        table = sections.get("table", [])
        comment = None
        for line in table[1:2]:
            match = _COMMENT.match(line)
            if match:
                comment = match.group(1)
        return {
            "nft": bool(sections.get("nft")),
            "loaded": bool(table) and table[0].startswith("table "),
            "comment": comment,
            "file_sha1": _digest(sections.get("file", [])),
            "unit_sha1": _digest(sections.get("unit", [])),
            "enabled": _word(sections.get("enabled", [])),
            "active": _word(sections.get("active", [])),
        }


def _digest(lines: list[str]) -> str | None:
    for line in lines:
        word = line.split()[0] if line.split() else ""
        if _SHA1.match(word):
            return word
    return None


def _word(lines: list[str]) -> str | None:
    for line in lines:
        if line.strip():
            return line.strip()
    return None
