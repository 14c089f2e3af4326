"""
Bring a node onto its tailnet with ``tailscale up``, and keep an already-joined node's own settings.

The node's prefs are read (``tailscale debug prefs``) and compared, as ``tailscale up`` flags, with
the flags asked for. Tailscale keeps every pref between runs, and ``tailscale up`` refuses to change
settings unless every non-default flag is mentioned again ("changing settings via 'tailscale up'
requires mentioning all non-default flags"); ``--reset`` would silently turn those flags off
(cmd/tailscale/cli/up.go, checkForAccidentalSettingReverts). So:

- a joined node gets ``tailscale set`` for exactly the flags that differ (set changes the prefs it is
  given and nothing else, without reconnecting); flags set on the node that are not asked for are kept;
- ``tailscale up`` runs only to log in (or for a flag ``set`` cannot change, such as
  ``--advertise-tags``); it gets ``--reset`` only when ``reset=True`` and only when the node has flags
  it would turn off; without ``reset`` the operation refuses and names those flags;
- a joined node that was taken down (``tailscale down``) is brought up with a bare ``tailscale up``,
  which keeps every pref.

The auth key never appears on a command line: it reaches the host as a 0600 file inside a 0700
directory, is passed as ``--auth-key=file:PATH`` and deleted right after, whatever ``up`` returns.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from pyinfra import host, logger
from pyinfra.api import operation
from pyinfra.api.exceptions import OperationError

from facts.reads import read_fact
from facts.tailscale import TailscalePrefs, TailscaleStatus
from operations.clients import reveal
from operations.uploads import private_file_commands

KEY_FILE = "auth-key"

# `tailscale up`'s flag defaults on Linux (cmd/tailscale/cli/up.go, newUpFlagSet): what --reset puts back
FLAG_DEFAULTS: dict[str, Any] = {
    "login-server": "https://controlplane.tailscale.com",
    "accept-routes": False,
    "accept-dns": True,
    "shields-up": False,
    "exit-node": "",
    "exit-node-allow-lan-access": False,
    "advertise-tags": "",
    "hostname": "",
    "operator": "",
    "advertise-routes": "",
    "advertise-exit-node": False,
    "advertise-connector": False,
    "snat-subnet-routes": True,
    "netfilter-mode": "on",
    "ssh": False,
    "webclient": False,
    "report-posture": False,
}
BOOLEAN_FLAGS = {name for name, value in FLAG_DEFAULTS.items() if isinstance(value, bool)}
# the two names of Tailscale's own control server count as one (ipn.IsLoginServerSynonym)
LOGIN_SERVER_SYNONYMS = {"https://login.tailscale.com", "https://controlplane.tailscale.com"}
# what `tailscale set` can change (cmd/tailscale/cli/set.go, newSetFlagSet); tags need `tailscale up`
SET_FLAGS = set(FLAG_DEFAULTS) - {"advertise-tags", "login-server"}
# backend states of a node that has no login yet (ipn.State)
NOT_JOINED = {None, "NoState", "NeedsLogin"}


def up_arguments(
    hostname: str | None = None,
    advertise_tags: list[str] | None = None,
    accept_dns: bool | None = None,
    accept_routes: bool | None = None,
    ssh: bool | None = None,
    extra_args: list[str] | None = None,
) -> list[str]:
    """The ``tailscale up`` flags for these settings (no ``--reset``, no auth key)."""

    def flag(name: str, value: bool | None) -> list[str]:
        return [] if value is None else [f"--{name}={'true' if value else 'false'}"]

    args: list[str] = []
    if hostname is not None:
        args.append(f"--hostname={hostname}")
    if advertise_tags is not None:
        args.append(f"--advertise-tags={','.join(advertise_tags)}")
    args += flag("accept-dns", accept_dns) + flag("accept-routes", accept_routes) + flag("ssh", ssh)
    return args + list(extra_args or [])


def _upload_key(auth_key: str, key_path: str):
    """Commands that land the key in ``key_path`` without it ever being readable by others."""
    yield from private_file_commands(auth_key, key_path, mode=0o600)


def wanted_flags(args: list[str]) -> dict[str, Any]:
    """``--name=value`` / ``--name`` arguments as {flag: value}, booleans as bool (the last one wins)."""
    found: dict[str, Any] = {}
    for arg in args:
        if not arg.startswith("--"):
            continue
        name, equals, value = arg[2:].partition("=")
        if name in BOOLEAN_FLAGS:
            found[name] = (value.lower() in ("true", "1", "t")) if equals else True
        else:
            found[name] = value
    return found


def _same(name: str, current: Any, wanted: Any) -> bool:
    if name == "login-server" and {current, wanted} <= LOGIN_SERVER_SYNONYMS:
        return True
    return current == wanted


def render_flag(name: str, value: Any) -> str:
    """A flag as a command-line argument: ``--ssh=true``, ``--hostname=nas``, ``--advertise-tags=``."""
    if isinstance(value, bool):
        return f"--{name}={'true' if value else 'false'}"
    return f"--{name}={value}"


@dataclass
class FlagPlan:
    """What ``up`` does to a node: how it compares with the flags asked for."""

    joined: bool  # logged in: flags are changed in place, never by logging in again
    known: bool  # the node's prefs could be read
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # flag -> (now, asked for)
    kept: dict[str, Any] = field(default_factory=dict)  # non-default flags on the node not asked for

    @property
    def needs_up(self) -> bool:
        """Logging in, or a change ``tailscale set`` cannot make (``--advertise-tags``)."""
        return not self.joined or any(name not in SET_FLAGS for name in self.changes)

    @property
    def needs_reset(self) -> bool:
        """``tailscale up`` would have to turn off (``--reset``) flags the node has and nobody asked for."""
        return self.needs_up and bool(self.kept)

    def describe_changes(self) -> str:
        def shown(name: str, value: Any) -> str:
            return repr(render_flag(name, value).partition("=")[2])

        return ", ".join(
            f"--{name} {shown(name, now)} -> {shown(name, new)}"
            for name, (now, new) in sorted(self.changes.items())
        )

    def describe_kept(self) -> str:
        return " ".join(render_flag(name, value) for name, value in sorted(self.kept.items()))


def plan_flags(status: dict[str, Any], prefs: dict[str, Any], args: list[str]) -> FlagPlan:
    """Compare the node (``TailscaleStatus``, ``TailscalePrefs``) with the ``up`` arguments asked for."""
    joined = status.get("backend_state") not in NOT_JOINED and bool(prefs["logged_in"])
    if not prefs["known"]:
        # unknown prefs: a node that answers and is not waiting for a login is left as it is
        return FlagPlan(joined=status.get("backend_state") not in NOT_JOINED, known=False)
    if not prefs["control_url"]:
        # never logged in: tailscale itself skips its "mentioning all non-default flags" check
        return FlagPlan(joined=joined, known=True)
    current = prefs["flags"]
    wanted = wanted_flags(args)
    changes = {
        name: (current.get(name, FLAG_DEFAULTS.get(name)), value)
        for name, value in wanted.items()
        if not _same(name, current.get(name, FLAG_DEFAULTS.get(name)), value)
    }
    kept = {
        name: value for name, value in current.items()
        if name not in wanted and name in FLAG_DEFAULTS and not _same(name, value, FLAG_DEFAULTS[name])
    }
    return FlagPlan(joined=joined, known=True, changes=changes, kept=kept)


_LOGGED: set[tuple[int, str, str]] = set()


def _say_once(message: str) -> None:
    """Log a plan line once per run and host (the body runs at prepare and again at execute)."""
    token = (id(host.state), host.name, message)
    if token not in _LOGGED:
        _LOGGED.add(token)
        logger.warning(f"[{host.name}] {message}")


@operation()
def up(
    auth_key: Any = None,
    hostname: str | None = None,
    advertise_tags: list[str] | None = None,
    accept_dns: bool | None = None,
    accept_routes: bool | None = None,
    ssh: bool | None = None,
    extra_args: list[str] | None = None,
    reset: bool = False,
    state_dir: str = "/etc/tailscale-up",
    timeout: str = "120s",
):
    """
    Join the tailnet with these flags, or bring an already-joined node to them without touching
    the flags it has that are not asked for.

    + auth_key: auth key, a string or a secret object with ``get_secret_value()``; needed only to
      log in (a node that is logged out and has no key raises an error)
    + hostname: ``--hostname``
    + advertise_tags: ``--advertise-tags`` (a list of ``tag:…``)
    + accept_dns: ``--accept-dns``
    + accept_routes: ``--accept-routes``
    + ssh: ``--ssh`` (Tailscale SSH)
    + extra_args: further ``tailscale up`` flags, passed as given
    + reset: allow ``tailscale up --reset``, which turns off the node's flags that are not asked for;
      without it, a change that needs ``tailscale up`` on a node with such flags raises an error
      that names them
    + state_dir: root-only directory for the key file, for the moment ``up`` runs
    + timeout: ``--timeout`` for ``up``

    A ``None`` setting leaves the flag out: a joined node keeps its value.

    **Example:**

    .. code:: python

        from operations import tailscale

        tailscale.up(
            name="Join the tailnet",
            auth_key=settings.tailscale_auth_key,
            hostname="homelab",
            accept_dns=False,
        )
    """
    key = reveal(auth_key) if auth_key is not None else None
    args = up_arguments(hostname, advertise_tags, accept_dns, accept_routes, ssh, extra_args)
    status = read_fact(TailscaleStatus, host=host)
    prefs = read_fact(TailscalePrefs, host=host)
    plan = plan_flags(status, prefs, args)
    state = status["backend_state"]
    kept = f"; flags set on the node and kept: {plan.describe_kept()}" if plan.kept else ""

    if plan.joined and not plan.known:
        host.noop(f"tailscale is {state}; its prefs could not be read (`tailscale debug prefs`): "
                  "its flags are left as they are")
        return
    if plan.needs_reset and not reset:
        what = (f"to change {plan.describe_changes()}" if plan.joined else "to log in")
        raise OperationError(
            f"`tailscale up` {what} would need --reset, which turns off flags set on this node: "
            f"{plan.describe_kept()}; pass them in extra_args to keep them, or reset=True to drop them"
        )
    if plan.joined and not plan.needs_up:
        if plan.changes:
            _say_once(f"tailscale: changing {plan.describe_changes()} with `tailscale set`{kept}")
            flags = [render_flag(name, new) for name, (_, new) in sorted(plan.changes.items())]
            yield shlex.join(["tailscale", "set", *flags])
        if not prefs["want_running"]:
            # a bare `tailscale up` brings a logged-in node up and changes no pref (up.go: simpleUp)
            yield f"timeout {shlex.quote(timeout)} tailscale up"
        elif not plan.changes:
            host.noop(f"tailscale is {state} with these settings{kept}")
        return

    if key is None and not plan.joined:
        raise OperationError("Tailscale needs to log in and no auth key was given")
    resetting = plan.needs_reset and reset
    if plan.joined:
        _say_once(f"tailscale: changing {plan.describe_changes()} with `tailscale up`"
                  + (f"; --reset turns off: {plan.describe_kept()}" if resetting else ""))
    elif resetting:
        _say_once(f"tailscale: logging in with --reset turns off: {plan.describe_kept()}")
    command = ["tailscale", "up", *(["--reset"] if resetting else []), *args, f"--timeout={timeout}"]
    if key is None:
        yield shlex.join(command)
        return
    key_path = f"{state_dir}/{KEY_FILE}"
    yield f"install -d -m 0700 {shlex.quote(state_dir)}"
    yield from _upload_key(key, key_path)
    up_command = shlex.join([*command, f"--auth-key=file:{key_path}"])
    yield f"{up_command}; rc=$?; rm -f {shlex.quote(key_path)}; exit $rc"
