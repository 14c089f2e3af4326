"""Memory and CPU limits of the containers: the catalog's defaults, ``HOMELAB_LIMITS``, and what they
come to on one host.

A limit is written the same way in the catalog and in the setting: memory as a size with a unit
(``512m``, ``24g``; k, m, g are KiB, MiB, GiB as Docker counts them) or a share of the host's memory
(``40%``); CPUs as a number (``0.5``, ``8``) or a share of the host's CPUs (``75%``); ``none`` (or ``0``)
for no limit. ``HOMELAB_LIMITS`` holds ``SERVICE=MEMORY[:CPUS]`` entries over the catalog's defaults; a
part left empty keeps the default (``ollama=:4`` limits only the CPUs).

The limits are cgroup limits on the host's RAM and CPU time: Docker does not limit GPU memory (VRAM).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deploys.library.catalog import CATALOG, Limits

NONE = "none"
UNITS = {"k": 2**10, "m": 2**20, "g": 2**30}
MIN_MEMORY = 6 * 2**20  # Docker refuses less ("Minimum memory limit allowed is 6MB")
MIN_CPUS = 0.01  # Docker's smallest CPU limit
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([kmg])b?$")
_SHARE = re.compile(r"^(\d+(?:\.\d+)?)%$")
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
MEMORY_FORM = "expected a size with a unit k, m or g (512m, 24g), a share of the host's memory (40%), or none"
CPUS_FORM = "expected a number of CPUs (0.5, 8), a share of the host's CPUs (75%), or none"
ENTRY_FORM = ("expected SERVICE=MEMORY[:CPUS] entries separated by commas, e.g. ollama=24g:8,pihole=256m:0.5 "
              "(none lifts a limit; an empty part keeps the default)")


def _share(text: str, what: str) -> str | None:
    found = _SHARE.match(text)
    if not found:
        return None
    if not 0 < float(found.group(1)) <= 100:
        raise ValueError(f"{what} {text!r}: expected a share above 0% and at most 100%")
    return f"{float(found.group(1)):g}%"


def normal_memory(text: Any) -> str:
    """A memory limit as written (``512m``, ``40%``, ``none``); ``ValueError`` naming what is wrong."""
    word = str(text).strip().lower()
    if word in (NONE, "0"):
        return NONE
    share = _share(word, "memory")
    if share:
        return share
    found = _SIZE.match(word)
    if not found:
        raise ValueError(f"memory {text!r}: {MEMORY_FORM}")
    size = float(found.group(1)) * UNITS[found.group(2)]
    if size < MIN_MEMORY:
        raise ValueError(f"memory {text!r}: Docker's smallest memory limit is 6m")
    return show_memory(math.floor(size / UNITS["k"]) * UNITS["k"])


def normal_cpus(text: Any) -> str:
    """A CPU limit as written (``0.5``, ``75%``, ``none``); ``ValueError`` naming what is wrong."""
    word = str(text).strip().lower()
    if word in (NONE, "0"):
        return NONE
    share = _share(word, "cpus")
    if share:
        return share
    if not _NUMBER.match(word):
        raise ValueError(f"cpus {text!r}: {CPUS_FORM}")
    if float(word) < MIN_CPUS:
        raise ValueError(f"cpus {text!r}: Docker's smallest CPU limit is 0.01")
    return f"{round(float(word), 2):g}"


def show_memory(size: int) -> str:
    """Bytes in the largest unit that holds them exactly (``512m``, ``2g``), as compose reads them."""
    for unit in ("g", "m", "k"):
        if size % UNITS[unit] == 0:
            return f"{size // UNITS[unit]}{unit}"
    return str(size)


def parse_limits(value: Any) -> dict[str, Limits]:
    """``HOMELAB_LIMITS``: ``SERVICE=MEMORY[:CPUS]`` entries (a string, or a mapping from host data),
    as ``{service: Limits}`` where an empty part is ``None`` (the catalog's default)."""
    if isinstance(value, Mapping):
        pairs = [(str(name), str(entry)) for name, entry in value.items()]
    else:
        pairs = []
        for entry in str(value).split(","):
            if not entry.strip():
                continue
            name, equals, given = entry.partition("=")
            if not equals:
                raise ValueError(f"{entry.strip()!r}: {ENTRY_FORM}")
            pairs.append((name, given))
    found: dict[str, Limits] = {}
    for name, given in pairs:
        name = name.strip()
        if name not in CATALOG:
            raise ValueError(f"{name!r} is no service; expected one of {', '.join(CATALOG)} ({ENTRY_FORM})")
        if name in found:
            raise ValueError(f"{name} is given twice")
        memory, _, cpus = given.strip().partition(":")
        if not memory.strip() and not cpus.strip():
            raise ValueError(f"{name}= gives no limit; {ENTRY_FORM}")
        try:
            found[name] = Limits(normal_memory(memory) if memory.strip() else None,
                                 normal_cpus(cpus) if cpus.strip() else None)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    return found


@dataclass(frozen=True)
class HostResources:
    """What the host has: its memory (MemTotal, bytes) and its online CPUs (facts.host.HostResources)."""

    memory: int
    cpus: int


@dataclass(frozen=True)
class Limit:
    """One service's limits on one host: as written, where from, and (the host known) in bytes / CPUs."""

    memory: str  # "512m", "40%", "none"
    cpus: str  # "1", "75%", "none"
    memory_from: str  # "default" or "HOMELAB_LIMITS"
    cpus_from: str
    host: HostResources | None

    @property
    def resolved(self) -> bool:
        """Whether the limits are known in bytes and CPUs (a share needs the host's resources)."""
        return self.host is not None or not (self.memory.endswith("%") or self.cpus.endswith("%"))

    @property
    def memory_bytes(self) -> int | None:
        """The memory limit in bytes; ``None``: no limit. A share is rounded down to whole GiB (MiB below
        1 GiB), so that the few MB by which MemTotal moves with a kernel update leave the compose file, and
        so the container, as they are."""
        if self.memory == NONE:
            return None
        if self.memory.endswith("%"):
            if self.host is None:
                raise ValueError(f"memory {self.memory} of the host: the host's memory is unknown")
            share = self.host.memory * float(self.memory[:-1]) / 100
            unit = UNITS["g"] if share >= UNITS["g"] else UNITS["m"]
            return max(MIN_MEMORY, math.floor(share / unit) * unit)
        number, unit = (self.memory[:-1], self.memory[-1]) if self.memory[-1] in UNITS else (self.memory, "")
        return int(number) * UNITS.get(unit, 1)

    @property
    def cpus_value(self) -> float | None:
        """The CPU limit (a share: rounded down to 0.01); ``None``: no limit."""
        if self.cpus == NONE:
            return None
        if self.cpus.endswith("%"):
            if self.host is None:
                raise ValueError(f"cpus {self.cpus} of the host: the host's CPU count is unknown")
            return max(MIN_CPUS, math.floor(self.host.cpus * float(self.cpus[:-1])) / 100)
        return float(self.cpus)

    @property
    def nano_cpus(self) -> int:
        """The CPU limit as Docker keeps it (HostConfig.NanoCpus; 0: no limit)."""
        value = self.cpus_value
        return round(value * 1e9) if value is not None else 0

    def describe(self) -> str:
        """``memory 40% (12.4g), cpus 2`` with where each comes from when it is not the default."""
        parts = []
        for label, written, source, value in (
            ("memory", self.memory, self.memory_from, lambda: show_memory(self.memory_bytes or 0)),
            ("cpus", self.cpus, self.cpus_from, lambda: f"{self.cpus_value:g}"),
        ):
            text = "no limit" if written == NONE else written
            if written.endswith("%"):
                text += f" of the host ({value()})" if self.host is not None else " of the host"
            parts.append(f"{label} {text}" + (f" ({source})" if source != "default" else ""))
        return ", ".join(parts)


def limit_for(service: str, overrides: Mapping[str, Limits], host: HostResources | None) -> Limit:
    """A service's limits: ``HOMELAB_LIMITS`` part by part over the catalog's defaults."""
    default = CATALOG[service].limits
    given = overrides.get(service, Limits())
    memory = given.memory or default.memory or NONE
    cpus = given.cpus or default.cpus or NONE
    return Limit(memory, cpus, "HOMELAB_LIMITS" if given.memory else "default",
                 "HOMELAB_LIMITS" if given.cpus else "default", host)
