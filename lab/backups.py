"""What a lab host's backups did, read from its journal: shared by the disaster-recovery lab test and
the benchmark (bench/run.py)."""

from __future__ import annotations

import re

# restic's summary line of each `restic backup` the backup unit ran ("Added to the repository: 95.4 MiB",
# "Added to the repo: 1.2 KiB" in older versions)
JOURNAL = "journalctl -u homelab-backup.service -o cat --no-pager | grep 'Added to the repo'"
_ADDED = re.compile(r"Added to the repo\w*: ([\d.]+) (B|KiB|MiB|GiB)")
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def added_bytes(journal: str) -> list[int]:
    """Bytes restic added to the repository, one figure per `restic backup` in ``journal`` (the
    output of :data:`JOURNAL`), oldest first."""
    return [int(float(number) * _UNITS[unit]) for number, unit in _ADDED.findall(journal)]
