"""What an API-backed operation would change, shown under ``--diff`` as pyinfra shows file diffs.

pyinfra's ``--diff`` prints a file's changed lines while planning; a proxy host or a DNS record has
no file, so its operation prints its field-level change instead (``forward_port: 8080 -> 9090``),
once per host, while planning: a ``--dry --diff`` run shows what a real run would change.
"""

from __future__ import annotations

from pyinfra import host, logger


def show(change: str) -> None:
    """Log ``change`` for the current host when pyinfra runs with ``--diff`` (planning only)."""
    if host.state.config.DIFF and not host.state.is_executing:
        logger.info(f"{host.print_prefix}Will change: {change}")
