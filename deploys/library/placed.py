"""Files, folders and units the deploy places, planned only where the host differs.

Each decision reads the host through the run's shared facts (facts/reads.py: ``FileDigest`` per file,
one ``Directories`` per set of folders, one ``ServiceStates`` per set of units), so that a host that
matches plans no operation and runs no remote command of pyinfra's own operations (``files.put``,
``files.directory``, ``systemd.service`` read the host themselves, each fact on its own).
"""

from __future__ import annotations

from io import StringIO
from typing import Any

from pyinfra import host
from pyinfra.api.util import get_file_sha1
from pyinfra.operations import files, systemd

from facts.reads import read_fact
from facts.system import Directories, FileDigest, ServiceStates


def sha1(content: str) -> str:
    return get_file_sha1(StringIO(content))


def file_differs(path: str, content: str, mode: str, user: str | None = "root",
                 group: str | None = "root") -> bool:
    """Whether ``path`` is missing, or differs in contents, mode, owner or group (an owner or group of
    None is not looked at)."""
    current = read_fact(FileDigest, path=path, host=host)
    if not current:
        return True
    wanted = {"user": user, "group": group, "mode": int(mode), "sha1": sha1(content)}
    return any(value is not None and current.get(key) != value for key, value in wanted.items())


def put_file(path: str, content: str, mode: str, label: str, user: str | None = "root",
             group: str | None = "root", create_remote_dir: bool = False) -> Any:
    """``files.put`` of ``content``, planned only where the file differs (None otherwise); an owner
    or group of None is left as the host has it."""
    if not file_differs(path, content, mode, user, group):
        return None
    return files.put(name=label, src=StringIO(content), dest=path, user=user, group=group, mode=mode,
                     create_remote_dir=create_remote_dir)


def folders(wanted: dict[str, tuple[str, str]], user: str = "root", group: str = "root") -> None:
    """``files.directory`` for each folder (path -> (mode, label)) that is missing or differs; one read."""
    current = read_fact(Directories, paths=list(wanted), host=host)
    for path, (mode, label) in wanted.items():
        found = current.get(path)
        if found and (found.get("user"), found.get("group"), found.get("mode")) == (user, group, int(mode)):
            continue
        files.directory(name=label, path=path, user=user, group=group, mode=mode)


def units_running(units: list[str], label: str, restarted: dict[str, bool] | None = None,
                  daemon_reload: bool = False) -> None:
    """``systemd.service`` (running, enabled) for each unit that is not both, or is to be restarted;
    the daemon reloaded first where asked. One read for all of them."""
    restarted = restarted or {}
    current = read_fact(ServiceStates, services=list(units), host=host)
    for unit in units:
        found = current.get(unit.removesuffix(".service")) or {}
        if not daemon_reload and not restarted.get(unit) and (found.get("active"), found.get("enabled")) == (
                "active", "enabled"):
            continue
        systemd.service(name=label.format(unit=unit), service=unit, running=True, enabled=True,
                        restarted=restarted.get(unit, False), daemon_reload=daemon_reload)
