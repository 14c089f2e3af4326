"""Facts about restic backups: the repository as the host's configuration opens it, its snapshots, and
the state a backup script leaves behind (last success, last check, the timer).

The repository's location and password never appear in a command: the commands source an environment
file on the host (``RESTIC_REPOSITORY``, ``RESTIC_PASSWORD_FILE``, and ``HOMELAB_SFTP_COMMAND``, the
ssh command of an ``sftp:`` repository), readable by root only.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from pyinfra.api import FactBase

_MISSING = "### restic-missing"
_UNCONFIGURED = "### no-config"
_EXIT = "### exit "
# how long a repository may take to answer (an sftp host that does not answer must not hang the run)
TIMEOUT_S = 60


def _restic(env_file: str, arguments: str) -> str:
    """A shell command running ``restic ARGUMENTS`` with the configuration of ``env_file``, then its
    exit status on a line of its own; ``### restic-missing`` / ``### no-config`` when it cannot run."""
    quoted = shlex.quote(env_file)
    return (
        f"command -v restic >/dev/null 2>&1 || {{ echo '{_MISSING}'; exit 0; }}; "
        f"[ -r {quoted} ] || {{ echo '{_UNCONFIGURED}'; exit 0; }}; "
        f"( set -a; . {quoted}; set +a; "
        'if [ -n "${HOMELAB_SFTP_COMMAND:-}" ]; then set -- -o "sftp.command=$HOMELAB_SFTP_COMMAND"; fi; '
        f'timeout {TIMEOUT_S} restic "$@" {arguments} ) 2>&1; echo "{_EXIT}$?"'
    )


def _split(output: list[str]) -> tuple[str | None, int | None, list[str]]:
    """(marker, exit status, the other lines) of a :func:`_restic` command's output."""
    if _MISSING in output:
        return "restic-missing", None, []
    if _UNCONFIGURED in output:
        return "no-config", None, []
    status = None
    lines = []
    for line in output:
        if line.startswith(_EXIT) and line[len(_EXIT):].strip().isdigit():
            status = int(line[len(_EXIT):])
        else:
            lines.append(line)
    return None, status, lines


def _error_line(lines: list[str]) -> str:
    """restic's own one-line reason: its ``Fatal:`` line, else the last line it printed."""
    for line in lines:
        if line.startswith("Fatal:"):
            return line.removeprefix("Fatal:").strip()
    return lines[-1].strip() if lines else "no output"


class ResticRepository(FactBase[dict[str, Any]]):
    """
    Returns whether the repository configured in ``env_file`` opens with its password file
    (``restic cat config``):

    ``{"state": "ok", "id": "7b24…", "version": 2}``; ``{"state": "missing"}`` (no repository there
    yet); ``{"state": "wrong-password", "error": …}``; ``{"state": "error", "error": "unable to open
    repository at sftp:…"}`` (unreachable, no permission); ``{"state": "restic-missing"}``;
    ``{"state": "no-config"}`` (``env_file`` is not there yet).
    """

    def command(self, env_file: str) -> str:
        return _restic(env_file, "cat config")

    @staticmethod
    def default() -> dict[str, Any]:
        return {"state": "restic-missing"}

    def process(self, output: list[str]) -> dict[str, Any]:
        marker, status, lines = _split(output)
        if marker:
            return {"state": marker}
        text = "\n".join(lines)
        if status == 0:
            try:
                config = json.loads(text)
            except ValueError:
                return {"state": "error", "error": f"restic cat config printed no JSON: {_error_line(lines)}"}
            return {"state": "ok", "id": config.get("id"), "version": config.get("version")}
        if "wrong password" in text:
            return {"state": "wrong-password", "error": _error_line(lines)}
        if "unable to open config file" in text or "Is there a repository at the following location" in text:
            return {"state": "missing"}
        if status == 124:
            return {"state": "error", "error": f"no answer within {TIMEOUT_S} s"}
        return {"state": "error", "error": _error_line(lines)}


class ResticSnapshots(FactBase[dict[str, Any]]):
    """
    Returns the snapshots of the repository configured in ``env_file`` (``restic snapshots --json``),
    oldest first: ``{"snapshots": [{"id", "short_id", "time", "hostname", "tags", "paths"}, …],
    "error": None}``; ``{"snapshots": [], "error": "wrong password or no key found"}`` when restic
    fails, ``"restic-missing"`` / ``"no-config"`` as the error when it cannot run.
    """

    def command(self, env_file: str) -> str:
        return _restic(env_file, "snapshots --json")

    @staticmethod
    def default() -> dict[str, Any]:
        return {"snapshots": [], "error": "restic-missing"}

    def process(self, output: list[str]) -> dict[str, Any]:
        marker, status, lines = _split(output)
        if marker:
            return {"snapshots": [], "error": marker}
        if status != 0:
            return {"snapshots": [], "error": _error_line(lines)}
        for line in lines:
            if line.startswith("["):
                found = json.loads(line)
                keys = ("id", "short_id", "time", "hostname", "tags", "paths")
                snapshots = [{key: item.get(key) for key in keys} for item in found]
                for item in snapshots:
                    item["tags"] = item["tags"] or []
                return {"snapshots": sorted(snapshots, key=lambda item: item["time"]), "error": None}
        return {"snapshots": [], "error": f"restic snapshots printed no JSON: {_error_line(lines)}"}


class BackupStatus(FactBase[dict[str, Any]]):
    """
    Returns what a backup script leaves in ``state_dir`` and the state of its timer, with the host's
    clock: ``{"now": 1796145160, "last_success": 1796145154, "last_check": None,
    "timer": {"active": "active", "enabled": "enabled"}, "service_result": "success"}``
    (``last_*`` are epoch seconds, ``None`` when it never happened; a unit systemd does not know reads
    ``not-found``).
    """

    def command(self, state_dir: str, timer: str, service: str) -> str:
        directory = shlex.quote(state_dir.rstrip("/"))
        return (
            'echo "now $(date +%s)"; '
            f"for f in last-success last-check; do "
            f'if [ -r {directory}/"$f" ]; then echo "$f $(head -c 32 {directory}/"$f")"; '
            'else echo "$f never"; fi; done; '
            f"systemctl show --property Id,ActiveState,UnitFileState,LoadState,Result "
            f"{shlex.quote(timer)} {shlex.quote(service)} 2>/dev/null || true"
        )

    @staticmethod
    def default() -> dict[str, Any]:
        return {"now": None, "last_success": None, "last_check": None,
                "timer": {"active": "unknown", "enabled": "unknown"}, "service_result": None}

    def process(self, output: list[str]) -> dict[str, Any]:
        found = self.default()
        units: list[dict[str, str]] = []
        unit: dict[str, str] = {}
        for line in [*output, ""]:
            key, _, value = line.strip().partition(" ")
            if key in ("now", "last-success", "last-check"):
                field = key.replace("-", "_")
                found[field] = int(value) if value.strip().isdigit() else None
                continue
            if not line.strip():
                if unit:
                    units.append(unit)
                unit = {}
                continue
            name, _, value = line.partition("=")
            unit[name.strip()] = value.strip()
        for each in units:
            loaded = each.get("LoadState") != "not-found"
            if each.get("Id", "").endswith(".timer"):
                found["timer"] = {
                    "active": each.get("ActiveState", "unknown"),
                    "enabled": each.get("UnitFileState") or ("not-found" if not loaded else "unknown"),
                }
            elif loaded:
                found["service_result"] = each.get("Result") or None
        return found
