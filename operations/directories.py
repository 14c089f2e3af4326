"""Many directories at once, read with one fact: for trees of data folders."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import OperationError, OperationValueError, QuoteString, StringCommand, operation

from facts.reads import read_fact
from facts.system import Directories


@operation()
def present(
    paths: list[str], user: str = "root", group: str = "root", mode: int = 755, keep_existing: bool = False
):
    """
    Make each of ``paths`` a directory owned by ``user:group`` with ``mode``; their contents are
    never touched (no recursion), and nothing is ever removed.

    + paths: absolute paths; parents are created as needed (``mkdir -p``)
    + user/group: owner of each directory itself
    + mode: octal digits as an integer, e.g. ``755``
    + keep_existing: a directory that already exists keeps its owner and mode (reported, never
      changed); only a missing one is created with ``user:group`` and ``mode``. For a folder that
      belongs to the user, such as a data disk's mount point.

    One command reads every path (pyinfra's ``files.directory`` reads one per path).

    **Example:**

    .. code:: python

        directories.present(
            name="Data folders",
            paths=["/cold-storage", "/cold-storage/ai/ollama/models"],
        )
        directories.present(name="Data root", paths=["/mnt/disk/ai"], keep_existing=True)
    """
    if not paths or any(not path.startswith("/") for path in paths):
        raise OperationValueError(f"paths: expected absolute paths, got {paths!r}")
    if not 0 <= mode <= 7777 or any(digit not in "01234567" for digit in str(mode)):
        raise OperationValueError(f"mode: {mode!r} is not an octal mode such as 755")
    current = read_fact(Directories, paths=list(paths), host=host)
    commands: list[StringCommand] = []
    kept: list[str] = []
    for path in paths:
        state = current.get(path)
        if state and state.get("not_a_directory"):
            raise OperationError(f"{path} exists and is not a directory: refusing to touch it")
        if state is not None and keep_existing:
            kept.append(f"{path} ({state['user']}:{state['group']}, mode {state['mode']})")
            continue
        if state is None:
            commands.append(StringCommand("mkdir", "-p", QuoteString(path)))
        if state is None or not _owned_by(state, user, group):
            commands.append(StringCommand("chown", f"{user}:{group}", QuoteString(path)))
        if state is None or state["mode"] != mode:
            commands.append(StringCommand("chmod", str(mode), QuoteString(path)))
    if not commands and kept:
        host.noop(f"{', '.join(kept)} exists: owner and mode left as they are")
        return
    if not commands:
        host.noop(f"{len(paths)} directories exist with owner {user}:{group} and mode {mode}")
        return
    yield from commands


def _owned_by(state: dict, user: str, group: str) -> bool:
    """Whether the directory belongs to ``user:group``, each given by name or by number (``65534``)."""
    return user in (state["user"], str(state.get("uid"))) and group in (state["group"], str(state.get("gid")))
