"""
Hold packages at their installed versions: ``apt-mark hold`` (apt) or ``dnf versionlock add`` (dnf).

A held package is left out of every upgrade, an automatic one (unattended-upgrades, dnf-automatic)
and one run by hand, until it is released (``apt-mark unhold``, ``dnf versionlock delete``).
"""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import StringCommand, operation
from pyinfra.api.exceptions import OperationValueError

from facts.reads import read_fact
from facts.updates import AutomaticUpdates

# the installed ones among "$@", by name: only those are held (a lock on a package that is not
# installed would pin whatever version is available, or keep it from being installed)
_HOLD = {"apt": "apt-mark hold", "dnf": "dnf versionlock add"}


def hold_command(packages: list[str], manager: str) -> str:
    """Hold those of ``packages`` that are installed when it runs; nothing when none is."""
    names = " ".join(shlex.quote(name) for name in packages)
    if manager == "dnf":
        installed = f"rpm -q --qf '%{{NAME}}\\n' {names} 2>/dev/null | grep -v ' '"
    else:
        installed = (f"dpkg-query -W -f='${{db:Status-Abbrev}} ${{Package}}\\n' {names} 2>/dev/null "
                     "| awk '$1 == \"ii\" {print $2}'")
    return f"set -- $({installed}); [ $# -eq 0 ] || {_HOLD[manager]} \"$@\""


@operation()
def held(packages: list[str], manager: str, held_now: list[str] | None = None):
    """
    Hold packages at their installed versions (those not installed are left alone); planned only
    for the ones not held yet.

    + packages: package names to hold where installed
    + manager: ``apt`` (``apt-mark hold``) or ``dnf`` (``dnf versionlock add``: dnf5, or dnf4 with
      python3-dnf-plugin-versionlock)
    + held_now: what the host holds now, when the caller has read it already (facts.updates
      ``AutomaticUpdates``'s ``held``); read here otherwise

    **Example:**

    .. code:: python

        updates.held(name="Hold the Docker engine", packages=["docker.io", "containerd"], manager="apt")
    """
    if manager not in _HOLD:
        raise OperationValueError(f"manager: expected apt or dnf, got {manager!r}")
    if held_now is None:
        held_now = read_fact(AutomaticUpdates, manager=manager, host=host)["held"]
    missing = [name for name in packages if name not in set(held_now)]
    if not missing:
        host.noop(f"held already: {' '.join(packages) or 'nothing to hold'}")
        return
    yield StringCommand(hold_command(missing, manager))
