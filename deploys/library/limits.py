"""``--limit`` that says when it matches nothing, and takes comma-separated names.

pyinfra's own ``--limit`` only warns when a name matches no host and then runs on no host at all, exit
code 0 ("No host matches found for --limit pattern"): a typo in a host name looks like a clean run that
changed nothing. It also takes one name per flag, so ``--limit a,b`` is one pattern that matches no
host. :func:`strict_limits` (called by ``config.py``, which pyinfra loads from the working folder before
the inventory) makes each name that matches no host or group an error that names it and the inventory's
hosts, before any host is contacted, and splits comma-separated names, as ``pytest tests/verify
--limit`` does. It wraps pyinfra 3's CLI function that matches the patterns; if a pyinfra release no
longer has it, pyinfra's own behaviour stays and a warning says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from pyinfra.api.exceptions import PyinfraError

logger = logging.getLogger("homelab")


class NoHostMatches(PyinfraError):
    """A ``--limit`` / ``--exclude`` name matches no host or group of the inventory."""


def strict_matches(original: Any):
    """``original`` (pyinfra's pattern matcher) with each comma-separated name required to match."""

    def matches(inventory: Any, patterns: Iterable[str], option_name: str) -> list[Any]:
        names = [name.strip() for pattern in patterns for name in str(pattern).split(",") if name.strip()]
        found: list[Any] = []
        for name in names:
            hosts = original(inventory, [name], option_name)
            if not hosts:
                known = ", ".join(sorted(host.name for host in inventory)) or "none"
                raise NoHostMatches(
                    f"{option_name} {name}: no host or group of the inventory is called that "
                    f"(hosts: {known}); nothing was run"
                )
            found += [host for host in hosts if host not in found]
        return found

    matches.homelab_strict = True  # type: ignore[attr-defined]
    return matches


def strict_limits() -> None:
    try:
        from pyinfra_cli import cli
    except ImportError:  # pyinfra used as a library: no CLI to guard
        return
    original = getattr(cli, "_get_inventory_pattern_matches", None)
    if original is None:
        logger.warning("this pyinfra has no _get_inventory_pattern_matches: --limit keeps its own rules")
        return
    if not getattr(original, "homelab_strict", False):
        cli._get_inventory_pattern_matches = strict_matches(original)
