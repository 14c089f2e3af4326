"""Facts about the deploy's own session and the container tooling present on the host."""

from __future__ import annotations

import re
import shlex
from typing import Any

from pyinfra.api import FactBase

_VERSION = re.compile(r"v?(\d+\.\d+(?:\.\d+)?)")
_NETWORK = re.compile(r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")


class SshConnection(FactBase[dict[str, Any] | None]):
    """
    Returns the SSH connection this deploy runs over, as the host sees it, or ``None`` when not
    over SSH: ``{"client_address", "client_port", "server_address", "server_port"}``.

    Deploys use it to refuse firewall changes that would cut their own path. sshd puts the
    connection in ``SSH_CONNECTION``, but ``sudo`` runs commands in a cleaned environment (and
    ``sudo -i`` in a new login shell), so when the variable is not in the command's own environment
    it is read from the environment of the nearest ancestor process that has it (the login user's
    shell, or sudo itself): ``/proc/<pid>/environ``, readable by the same user and by root.
    """

    command = (
        'c="$SSH_CONNECTION"; p=$$; '
        'while [ -z "$c" ] && [ "${p:-0}" -gt 1 ]; do '
        "p=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$p/status 2>/dev/null); "
        "[ -n \"$p\" ] || break; "
        "c=$(tr '\\000' '\\n' 2>/dev/null < /proc/$p/environ | sed -n 's/^SSH_CONNECTION=//p'); "
        'done; echo "$c"'
    )

    @staticmethod
    def default() -> None:
        return None

    def process(self, output: list[str]) -> dict[str, Any] | None:
        parts = " ".join(output).split()
        if len(parts) != 4 or not parts[1].isdigit() or not parts[3].isdigit():
            return None
        return {
            "client_address": parts[0],
            "client_port": int(parts[1]),
            "server_address": parts[2],
            "server_port": int(parts[3]),
        }


class ComposeVersion(FactBase[str | None]):
    """
    Returns the version of the Docker Compose v2 plugin (``docker compose``), or ``None`` when
    Docker or the plugin is missing (compose v1's separate ``docker-compose`` does not count).
    """

    requires_command = "docker"
    command = "docker compose version --short 2>/dev/null || true"

    @staticmethod
    def default() -> None:
        return None

    def process(self, output: list[str]) -> str | None:
        for line in output:
            match = _VERSION.match(line.strip())
            if match and int(match.group(1).split(".")[0]) >= 2:
                return match.group(1)
        return None


class Ipv4Routes(FactBase[list[str]]):
    """
    Returns the destination networks of the host's IPv4 routes (``ip -4 route show``), without
    the default route: the subnets a new Docker network must not overlap.
    """

    requires_command = "ip"
    command = "ip -4 route show"

    @staticmethod
    def default() -> list[str]:
        return []

    def process(self, output: list[str]) -> list[str]:
        found: list[str] = []
        for line in output:
            words = line.split()
            if not words or words[0] in ("default", "unreachable", "blackhole", "prohibit"):
                continue
            destination = words[0] if "/" in words[0] else words[0] + "/32"
            if _NETWORK.match(destination) and destination not in found:
                found.append(destination)
        return found


class Directories(FactBase[dict[str, dict[str, Any] | None]]):
    """
    Returns, for each of ``paths`` in one command, the directory's owner and group (by name, and by
    number as ``uid`` and ``gid``) and mode, or ``None`` when it does not exist, or
    ``{"not_a_directory": True}`` when something else is there:
    ``{"/srv/a": {"user": "root", "group": "root", "uid": 0, "gid": 0, "mode": 755}, "/srv/b": None}``.
    """

    def command(self, paths: list[str]) -> str:
        quoted = " ".join(shlex.quote(path) for path in paths)
        return (
            f"for p in {quoted}; do if [ -d \"$p\" ]; then stat -c 'dir %U %G %a %u %g %n' \"$p\"; "
            'elif [ -e "$p" ] || [ -L "$p" ]; then echo "other $p"; else echo "missing $p"; fi; done'
        )

    @staticmethod
    def default() -> dict[str, Any]:
        return {}

    def process(self, output: list[str]) -> dict[str, dict[str, Any] | None]:
        found: dict[str, dict[str, Any] | None] = {}
        for line in output:
            kind, _, rest = line.partition(" ")
            if kind == "dir":
                user, group, mode, uid, gid, path = rest.split(" ", 5)
                found[path] = {"user": user, "group": group, "uid": int(uid), "gid": int(gid),
                               "mode": int(mode)}
            elif kind == "other":
                found[rest] = {"not_a_directory": True}
            elif kind == "missing":
                found[rest] = None
        return found


_UNIT_TYPES = (".service", ".timer", ".socket", ".path", ".mount", ".target")


def _unit(name: str) -> str:
    return name if name.endswith(_UNIT_TYPES) else f"{name}.service"


class ServiceStates(FactBase[dict[str, dict[str, str]]]):
    """
    Returns whether each systemd service is active and enabled, for all of them in one command:
    ``{"docker": {"active": "active", "enabled": "enabled"}, "firewalld": {"active": "inactive",
    "enabled": "disabled"}}``. A unit systemd does not know reads ``not-found``; no systemd: ``{}``.
    A name with a unit type (``homelab-backup.timer``) is that unit, and keeps its type in the answer.
    """

    requires_command = "systemctl"

    def command(self, services: list[str]) -> str:
        units = " ".join(shlex.quote(_unit(service)) for service in services)
        return f"systemctl show --property Id,ActiveState,UnitFileState,LoadState {units}"

    @staticmethod
    def default() -> dict[str, dict[str, str]]:
        return {}

    def process(self, output: list[str]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        unit: dict[str, str] = {}
        for line in [*output, ""]:
            if not line.strip():
                if unit.get("Id"):
                    loaded = unit.get("LoadState") != "not-found"
                    found[unit["Id"].removesuffix(".service")] = {
                        "active": unit.get("ActiveState", "unknown"),
                        "enabled": unit.get("UnitFileState") or ("not-found" if not loaded else "unknown"),
                    }
                unit = {}
                continue
            key, _, value = line.partition("=")
            unit[key.strip()] = value.strip()
        return found


class FileDigest(FactBase[dict[str, Any] | None]):
    """
    Returns a file's owner, group, mode and SHA-1 in one command, or ``None`` when it is missing:
    ``{"user": "root", "group": "root", "mode": 644, "sha1": "5661b8…"}``.
    """

    def command(self, path: str) -> str:
        quoted = shlex.quote(path)
        return (
            f"[ -f {quoted} ] || exit 0; "
            f"echo \"$(stat -c '%U %G %a' {quoted}) $(sha1sum < {quoted} | cut -c1-40)\""
        )

    @staticmethod
    def default() -> None:
        return None

    def process(self, output: list[str]) -> dict[str, Any] | None:
        words = " ".join(output).split()
        if len(words) != 4 or not words[2].isdigit():
            return None
        return {"user": words[0], "group": words[1], "mode": int(words[2]), "sha1": words[3]}



_NO_FILE = "### pyinfra-no-file"
_VARIABLE = "### pyinfra-variable "


class EnvironmentFileFlags(FactBase[list[str] | None]):
    """
    Returns the command-line words a systemd ``EnvironmentFile`` passes in ``variable`` (e.g.
    Fedora's ``/etc/sysconfig/docker``, whose ``OPTIONS`` ``docker.service`` hands to dockerd), or
    ``None`` when the file does not exist:
    ``["--selinux-enabled", "--log-driver=journald", "--live-restore", …]``.

    Quotes and backslash-continued lines are read as systemd reads them, the last assignment
    wins, ``#`` starts a comment; the file is read, never sourced.
    """

    def command(self, path: str, variable: str) -> str:
        quoted = shlex.quote(path)
        return (
            f"echo {shlex.quote(_VARIABLE + variable)}; "
            f"if [ -f {quoted} ]; then cat {quoted}; else echo '{_NO_FILE}'; fi"
        )

    @staticmethod
    def default() -> None:
        return None

    def process(self, output: list[str]) -> list[str] | None:
        if not output or not output[0].startswith(_VARIABLE) or _NO_FILE in output:
            return None
        variable = output[0][len(_VARIABLE) :].strip()
        text = re.sub(r"\\\n", " ", "\n".join(output[1:]))
        words: list[str] = []
        for line in text.splitlines():
            match = re.match(rf"^\s*(?:export\s+)?{re.escape(variable)}=(.*)$", line)
            if not match:
                continue
            try:
                words = shlex.split(" ".join(shlex.split(match.group(1), comments=True)))
            except ValueError:  # an unclosed quote: systemd ignores the line too
                continue
        return words


class FileSha256s(FactBase[dict[str, str | None]]):
    """
    Returns the SHA-256 of each of ``paths`` in one command, ``None`` for a path with no regular file:
    ``{"/srv/models/a.safetensors": "31e35c80fc…", "/srv/models/b.safetensors": None}``.

    Every file is read in full (a checkpoint of several GB takes seconds).
    """

    def command(self, paths: list[str]) -> str:
        quoted = " ".join(shlex.quote(path) for path in paths)
        return (
            f"for p in {quoted}; do if [ -f \"$p\" ]; then "
            "echo \"$(sha256sum < \"$p\" | cut -c1-64) $p\"; else echo \"missing $p\"; fi; done"
        )

    @staticmethod
    def default() -> dict[str, str | None]:
        return {}

    def process(self, output: list[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for line in output:
            digest, _, path = line.partition(" ")
            if digest == "missing":
                found[path] = None
            elif re.fullmatch(r"[0-9a-f]{64}", digest):
                found[path] = digest
        return found
