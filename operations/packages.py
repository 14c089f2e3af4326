"""
Install or remove system packages with apt or dnf, as pyinfra's own ``apt.packages`` /
``dnf.packages`` do, and a failure that ends with one line a person can act on.

The package manager's output is shown as pyinfra shows any failed command's; after it comes one
line naming the packages and the likely cause, read from that output: a lock held by another apt,
dpkg or dnf, no way to the package repository (network, DNS, proxy), packages the repositories do not
offer, or held or broken packages.
"""

from __future__ import annotations

import shlex
from typing import Literal

from pyinfra.api import StringCommand, operation
from pyinfra.api.exceptions import OperationValueError
from pyinfra.operations import apt, dnf

Manager = Literal["apt", "dnf"]

# (what the package manager prints, the cause in words): the first that matches names the cause
CAUSES: dict[str, tuple[tuple[str, str], ...]] = {
    "apt": (
        (
            r"Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock the administration"
            r"|is another process using it",
            "another apt or dpkg holds the package lock (an automatic update?): wait until it is done, "
            "then run again",
        ),
        (
            r"Temporary failure resolving|Could not resolve|Failed to fetch|Unable to connect to"
            r"|Could not connect to|Connection timed out|Network is unreachable|No route to host",
            "the package repository cannot be reached from the host (network, DNS or proxy): check that "
            "the host reaches it, then run again",
        ),
        (
            r"Unable to locate package|has no installation candidate",
            "the host's repositories do not offer them: check the repositories (`apt-cache policy`) and "
            "the release",
        ),
        (
            r"held broken packages|Unmet dependencies|dpkg was interrupted|--configure -a",
            "held or broken packages stand in the way: see `apt-mark showhold` and repair with "
            "`dpkg --configure -a` and `apt-get -f install` on the host",
        ),
    ),
    "dnf": (
        (
            r"Waiting for process with pid|currently holding|transaction lock|lock held by",
            "another dnf or rpm holds the package lock (an automatic update?): wait until it is done, "
            "then run again",
        ),
        (
            r"Failed to download metadata|Cannot download|Curl error|Could not resolve host"
            r"|Cannot find a valid baseurl|Errors during downloading|Timeout was reached",
            "the package repository cannot be reached from the host (network, DNS or proxy): check that "
            "the host reaches it, then run again",
        ),
        (
            r"No match for argument|Unable to find a match",
            "the host's repositories do not offer them: check the repositories (`dnf repolist`) and the "
            "release",
        ),
        (
            r"nothing provides|conflicting requests|conflicts with|cannot install the best candidate"
            r"|requires .* but none of the providers",
            "broken or conflicting packages stand in the way: see the problem dnf names above "
            "(`dnf check` on the host)",
        ),
    ),
}
UNKNOWN = "see the package manager's output above"
# `apt-get update` exits 0 when it could fetch nothing ("W: Failed to fetch …"): its first such line is
# kept here (/run: until the next boot), so that a later install failing on "Unable to locate package"
# names the repository it could not reach instead of blaming the repositories' content; a refresh that
# fetched everything removes it
APT_FETCH_FAILED = "/run/homelab-apt-fetch-failed"
_APT_NETWORK = CAUSES["apt"][1][0]
_APT_NOT_OFFERED = CAUSES["apt"][2][1]


class ExplainedCommand(StringCommand):
    """A package manager's ``command`` run by :func:`explained`; ``command`` keeps it as pyinfra's own
    operation wrote it (for plans that compare commands)."""

    def __init__(self, command: str, manager: Manager, packages: list[str], present: bool) -> None:
        super().__init__(explained(command, manager, packages, present))
        self.command = command


def explained(command: str, manager: Manager, packages: list[str], present: bool) -> str:
    """``command`` as a shell that shows its output and, when it fails, ends with one line on stderr:
    ``installing <packages> failed: <likely cause>``; its exit code is the command's."""
    doing = "installing" if present else "removing"
    head = f"{manager}: {doing} {' '.join(packages)} failed: "
    tests = "".join(
        f"if grep -qiE {shlex.quote(pattern)} \"$log\"; then why={shlex.quote(cause)}; el"
        for pattern, cause in CAUSES[manager]
    )
    remember = ""
    if manager == "apt":
        marker, network = shlex.quote(APT_FETCH_FAILED), shlex.quote(_APT_NETWORK)
        if command.lstrip().startswith("apt-get update"):
            remember = (f'if [ "$rc" -eq 0 ]; then if grep -qiE {network} "$log"; then '
                        f"{{ grep -E '^[WE]: Failed to fetch' \"$log\" || grep -iE {network} \"$log\"; }} "
                        f'| head -n 1 > {marker}; else rm -f {marker}; fi; fi; ')
        # "not offered" after a refresh that fetched nothing: the repository was not reached
        unreached = ("the package repository cannot be reached from the host: the last apt-get update "
                     f"fetched nothing ($(cut -c 1-200 {marker})); check the network, DNS or proxy, then "
                     "run again")
        tests = tests.replace(
            f"then why={shlex.quote(_APT_NOT_OFFERED)};",
            f'then if [ -s {marker} ]; then why="{unreached}"; else why={shlex.quote(_APT_NOT_OFFERED)}; fi;',
        )
    return (
        "log=$(mktemp) || exit 1; "
        f'{{ {command}; }} >"$log" 2>&1; rc=$?; cat "$log"; {remember}'
        f'if [ "$rc" -ne 0 ]; then {tests}se why={shlex.quote(UNKNOWN)}; fi; '
        f'echo {shlex.quote(head)}"$why" >&2; fi; '
        'rm -f "$log"; exit "$rc"'
    )


@operation()
def packages(packages: list[str], manager: Manager, present: bool = True, update: bool = False,
             cache_time: int | None = None, release_holds: bool = False):
    """
    Install or remove packages with apt or dnf (pyinfra's ``apt.packages`` / ``dnf.packages``); a
    failure ends with one line naming the packages and the likely cause.

    + packages: package names
    + manager: ``apt`` or ``dnf``
    + present: whether the packages should be installed
    + update: refresh the package lists first (apt, only when they are older than ``cache_time``)
    + cache_time: seconds the apt package lists count as fresh
    + release_holds: when removing, first release these packages (and only these) from a hold
      (``apt-mark unhold`` / ``dnf versionlock delete``): apt and dnf refuse to touch a held package

    **Example:**

    .. code:: python

        packages.packages(name="Install jq", packages=["jq"], manager="apt", update=True, cache_time=3600)
    """
    if manager not in CAUSES:
        raise OperationValueError(f"manager: expected one of {', '.join(CAUSES)}, got {manager!r}")
    if manager == "dnf":
        commands = list(dnf.packages._inner(packages=packages, present=present))
    else:
        commands = list(apt.packages._inner(packages=packages, present=present, update=update,
                                            cache_time=cache_time))
    if release_holds and not present and commands:
        names = " ".join(shlex.quote(name) for name in packages)
        yield (f"apt-mark unhold {names} >/dev/null" if manager == "apt"
               else f"dnf versionlock delete {names} >/dev/null 2>&1 || true")
    for command in commands:
        text = command if isinstance(command, str) else None
        if isinstance(command, StringCommand):
            text = command.get_raw_value()
        if text is None:  # nothing pyinfra's package operations yield today
            yield command
            continue
        if manager == "apt" and text.startswith("touch ") and text.endswith("update-success-stamp"):
            # pyinfra marks the lists fresh after every refresh; one that fetched nothing is not fresh
            text = f"[ -s {APT_FETCH_FAILED} ] || {text}"
        yield ExplainedCommand(text, manager, list(packages), present)
