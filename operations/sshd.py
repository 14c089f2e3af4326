"""sshd configuration changed without locking anyone out: one drop-in, tested, reloaded, confirmed
by a second login, and put back by itself when the confirmation does not come."""

from __future__ import annotations

import logging
import re
import shlex
import time
from typing import Any

import gevent
from pyinfra import host
from pyinfra.api import FunctionCommand, StringCommand, operation
from pyinfra.api.exceptions import ConnectError, OperationValueError

from facts.reads import read_fact
from facts.sshd import KEYS, SshdSettings
from operations.failures import named, refuse, report

DROP_IN_DIR = "/etc/ssh/sshd_config.d"
# the transient systemd timer that puts the configuration back unless the deploy confirms
REVERT_UNIT = "homelab-sshd-revert"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.conf$")
_LINE = re.compile(r"^[A-Za-z][A-Za-z0-9]* [^\n']+$")


def expected_values(lines: list[str]) -> dict[str, str]:
    """What ``sshd -T`` prints for the managed keys these lines set (``prohibit-password`` is printed
    ``without-password``)."""
    found = {}
    for line in lines:
        key, _, value = line.partition(" ")
        key = key.lower()
        if key in KEYS and key not in found:
            value = value.strip().lower()
            found[key] = "without-password" if value == "prohibit-password" else value
    return found


HEADER = "# Managed by homelab-pyinfra: sshd settings (changed only with a second login confirming them)"


def drop_in_text(lines: list[str]) -> str | None:
    """The drop-in's text for ``lines`` (``None``: no drop-in)."""
    return "".join(f"{line}\n" for line in (HEADER, *lines)) if lines else None


def drop_in_path(name: str) -> str:
    return f"{DROP_IN_DIR}/{name}"


def _paths(name: str) -> tuple[str, str]:
    path = drop_in_path(name)
    return path, f"/etc/ssh/{name}.before-homelab"  # outside the folder sshd includes


def _restore(name: str) -> str:
    path, kept = _paths(name)
    return f"if [ -f {kept} ]; then mv -f {kept} {path}; else rm -f {path}; fi; rm -f {kept}.none"


def restore_command(name: str) -> str:
    """Shell that puts the drop-in back as it was before the change (or removes it) and reloads sshd."""
    return (
        f"{_restore(name)}; "
        "systemctl reload ssh.service 2>/dev/null || systemctl reload sshd.service"
    )


def apply_command(name: str, lines: list[str], revert_after: int) -> str:
    """Shell that writes the drop-in (or removes it, with no ``lines``), refuses what ``sshd -t``
    refuses or what another file overrides (putting the old one back), arms the revert timer and
    reloads sshd. Connections already open stay open through a reload."""
    path, kept = _paths(name)
    restore = _restore(name)
    text = drop_in_text(lines)
    if text is not None:
        write = (f"printf %s {shlex.quote(text)} > {path}.new && chmod 644 {path}.new "
                 f"&& mv -f {path}.new {path}")
    else:
        write = f"rm -f {path}"
    checks = " ".join(
        f'v=$(printf "%s\\n" "$now" | sed -n "s/^{key} //p" | head -n 1); w={shlex.quote(value)}; '
        f'[ "$v" = "$w" ] || bad="$bad {key} is ${{v:-unset}} (wanted $w);";'
        for key, value in expected_values(lines).items()
    )
    return (
        "command -v systemd-run >/dev/null 2>&1 || { echo 'sshd: no systemd-run on this host, so the "
        "change could not be made revertible; nothing was changed' >&2; exit 1; }; "
        f"systemctl stop {REVERT_UNIT}.timer 2>/dev/null; systemctl reset-failed {REVERT_UNIT}.service "
        "2>/dev/null; "
        # the state before the change: a copy of the file, or a mark that there was none; one that a run
        # left unconfirmed is kept, so that going back goes back to before that run
        f"if [ -f {kept} ] || [ -f {kept}.none ]; then :; elif [ -f {path} ]; then cp -p {path} {kept} "
        f"|| exit 1; else : > {kept}.none || exit 1; fi; "
        f"{write} || exit 1; "
        "sshd=$(command -v sshd || echo /usr/sbin/sshd); "
        f'if ! out=$("$sshd" -t 2>&1); then {restore}; '
        'echo "sshd refuses the new configuration, so it was not applied (the one before is back): '
        '$(printf "%s" "$out" | tr -s "\\n" " ")" >&2; exit 1; fi; '
        'now=$("$sshd" -T 2>/dev/null); bad=; '
        f"{checks} "
        f'if [ -n "$bad" ]; then {restore}; '
        f'echo "sshd does not use {path}:$bad an earlier file in {DROP_IN_DIR} or /etc/ssh/sshd_config '
        'sets it first (sshd takes the first value it reads); the one before is back" >&2; exit 1; fi; '
        f"systemd-run --quiet --unit={REVERT_UNIT} --on-active={revert_after} "
        "--timer-property=AccuracySec=1s "
        f"/bin/sh -c {shlex.quote(restore_command(name))} || {{ {restore}; exit 1; }}; "
        "systemctl reload ssh.service 2>/dev/null || systemctl reload sshd.service"
    )


def confirm_command(name: str) -> str:
    """Shell that keeps the change: stops the revert timer and drops the copy of the file before; fails
    when the timer is no longer armed (it has put the file before back already)."""
    _, kept = _paths(name)
    timer = f"{REVERT_UNIT}.timer"
    return (
        f"systemctl is-active --quiet {timer} || {{ echo 'sshd: the revert timer has already put the "
        "configuration before back; run the deploy again' >&2; exit 1; }; "
        f"systemctl stop {timer} && rm -f {kept} {kept}.none"
    )


# sshd re-executes itself on a reload: a connection in that moment is reset, so a login that fails
# for anything but authentication is tried again for this long
RELOAD_SETTLE = 15.0


class _QuietParamiko:
    """paramiko's logger silenced while any host's second login runs (hosts run at once, in greenlets:
    the level before is put back by the last one out)."""

    def __init__(self) -> None:
        self.inside = 0
        self.level = logging.NOTSET

    def enter(self) -> None:
        logger = logging.getLogger("paramiko")
        if self.inside == 0:
            self.level = logger.level
            logger.setLevel(logging.CRITICAL)
        self.inside += 1

    def leave(self) -> None:
        self.inside -= 1
        if self.inside == 0:
            logging.getLogger("paramiko").setLevel(self.level)


_QUIET = _QuietParamiko()


def _redirect(connector: Any, address: str, port: int | None) -> None:
    """Make ``connector`` log in to ``address`` (and ``port``) instead of the host's own address: the same
    user, key and options otherwise (pyinfra's SSH connector connects with ``make_paramiko_kwargs()``)."""
    made = connector.make_paramiko_kwargs

    def redirected() -> dict[str, Any]:
        kwargs = dict(made())
        kwargs["hostname"] = address
        if port is not None:
            kwargs["port"] = int(port)
        return kwargs

    connector.make_paramiko_kwargs = redirected


def _connect_again(state: Any, host: Any, address: str | None = None, port: int | None = None,
                   settle: float = RELOAD_SETTLE) -> Any:
    """A new connection made exactly as the deploy's own (its connector, its host data); with ``address``
    (and ``port``), to that address instead of the host's own, as the same user with the same key.
    A failure other than authentication is tried again for ``settle`` seconds."""
    deadline = time.monotonic() + settle
    _QUIET.enter()  # paramiko logs each reset with a traceback
    try:
        while True:
            second = type(host.connector)(state, host)
            if address is not None:
                _redirect(second, address, port)
            try:
                second.connect()
                return second
            except ConnectError as error:
                if str(error).startswith("Authentication error") or time.monotonic() > deadline:
                    raise
            gevent.sleep(0.5)
    finally:
        _QUIET.leave()


def _run(host: Any, command: str, connector_arguments: Any) -> bool:
    """Run over the deploy's own connection; ``False`` when it fails or the connection is gone."""
    try:
        status, _ = host.run_shell_command(StringCommand(command), **connector_arguments)
    except Exception:  # noqa: BLE001 - a lost connection: the revert timer does the rest
        return False
    return bool(status)


class _SecondLogin(FunctionCommand):
    """Log in again, as the deploy does, over a new connection; keep the change if that works, put it
    back at once if it does not (the revert timer does it if the deploy's own connection is gone too).
    Runs its shell with the operation's own arguments (``sudo`` and its password)."""

    def __init__(self, name: str):
        super().__init__(named(lambda name: None, "a second SSH login confirms the sshd change"), (name,), {})

    def execute(self, state: Any, host: Any, connector_arguments: Any) -> bool:
        (name,) = self.args
        login = host.data.get("ssh_user") or "the deploy's user"
        try:
            second = _connect_again(state, host)
        except ConnectError as error:
            reason = " ".join(str(error).split()) or type(error).__name__
            back = _run(host, f"systemctl stop {REVERT_UNIT}.timer 2>/dev/null; {restore_command(name)}",
                        connector_arguments)
            done = ("it was put back" if back
                    else f"putting it back failed: {REVERT_UNIT}.timer does it shortly")
            return report(host,
                          f"sshd: a second login as {login} failed after the change ({reason}), so {done}")
        client = getattr(second, "client", None)
        if client is not None:
            client.close()
        kept = _run(host, confirm_command(name), connector_arguments)
        if not kept:
            return report(host, "sshd: the second login worked, but the change could not be kept: its revert "
                                f"timer ({REVERT_UNIT}.timer) had fired or could not be stopped; run the "
                                "deploy again")
        return True


@operation()
def drop_in(file: str, lines: list[str], revert_after: int = 120):
    """
    Keep one sshd drop-in in ``/etc/ssh/sshd_config.d`` as ``lines`` (none: no such file), without
    ever locking the deploy out.

    + file: the file name (``*.conf``); sshd takes the first value it reads, and reads the folder's
      files in name order before ``sshd_config`` itself, so a low number wins (``00-homelab.conf``)
    + lines: sshd settings, one ``Keyword value`` per line
    + revert_after: seconds after which the change is put back unless a second login confirmed it

    A change is made in this order: the file before is kept; the new one written; ``sshd -t`` must
    accept the whole configuration and ``sshd -T`` must show the values set here (otherwise the file
    before is back and the operation fails naming why); a transient systemd timer is armed to put the
    file before back; sshd is reloaded (open connections stay); then the deploy logs in again over a
    new SSH connection, exactly as it logged in first. If that login works the timer is stopped; if it
    fails, the file before is put back at once and the operation fails; if the deploy's own connection
    is gone, the timer puts it back.

    **Example:**

    .. code:: python

        sshd.drop_in(name="No password logins", file="00-homelab.conf", lines=["PasswordAuthentication no"])
    """
    if not _NAME.match(file):
        raise OperationValueError(f"file: {file!r} is not a file name ending in .conf")
    for line in lines:
        if not _LINE.match(line):
            raise OperationValueError(f"lines: {line!r} is not one sshd setting (`Keyword value`)")
    if not 10 <= revert_after <= 3600:
        raise OperationValueError(f"revert_after: {revert_after!r} must be 10 to 3600 seconds")
    path, kept = _paths(file)
    current = read_fact(SshdSettings, drop_in=path, kept=kept, unit=f"{REVERT_UNIT}.timer", host=host)
    if current is None:
        if lines:
            yield from refuse("sshd: not installed on this host, so it cannot be configured")
            return
        host.noop("no sshd on this host")
        return
    # a change a run left unconfirmed (its copy of the file before, or its timer, still there) is made
    # again: its timer would put it back, or sshd would load it unproven at its next start
    if current["drop_in"] == drop_in_text(lines) and not current.get("pending"):
        host.noop(f"{path} is as wanted" if lines else f"no {path}")
        return
    yield apply_command(file, lines, revert_after)
    if not hasattr(getattr(host, "connector", None), "make_paramiko_kwargs"):
        # not over SSH (local, docker, @fake): there is no login to lose
        yield confirm_command(file)
        return
    yield _SecondLogin(file)
