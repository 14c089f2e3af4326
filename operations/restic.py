"""restic repositories, and files whose content must never be readable by anyone but root."""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import OperationValueError, QuoteString, StringCommand, operation
from pyinfra.api.util import get_file_sha1

from facts.reads import read_fact
from facts.restic import ResticRepository
from facts.system import FileDigest
from operations.failures import refuse
from operations.uploads import private_file_commands


@operation()
def private_file(path: str, content: str, mode: int = 600):
    """
    Keep a root-owned file holding a secret, never readable by another user, even while it is written.

    + path: absolute path (its folder must exist)
    + content: the whole file
    + mode: octal digits as an integer, owner-only (``600`` or ``400``)

    The content is compared by digest: the secret is never part of a command, a diff or a log line.

    **Example:**

    .. code:: python

        restic.private_file(name="Backup password", path="/etc/homelab/backup/password", content=password)
    """
    if not path.startswith("/"):
        raise OperationValueError(f"path: {path!r} is not an absolute path")
    if mode not in (600, 400):
        raise OperationValueError(f"mode: {mode!r} is not an owner-only mode (600 or 400)")
    current = read_fact(FileDigest, path=path, host=host)
    wanted = {"user": "root", "group": "root", "mode": mode, "sha1": get_file_sha1(StringIO(content))}
    if current == wanted:
        host.noop(f"{path} is up to date (root:root, mode {mode})")
        return
    yield from private_file_commands(content, path, mode=int(str(mode), 8))
    yield StringCommand("chown", "root:root", QuoteString(path))


@operation()
def repository(env_file: str, script: str, recheck: bool = False):
    """
    A restic repository that opens with the configured password: made when there is none yet, never
    made again over one that exists.

    + env_file: the root-only environment file naming the repository and its password file
    + script: a command whose ``init`` subcommand opens the repository and makes it only when restic
      says there is none (exit 3 with one line when it exists and refuses the password)
    + recheck: the password or the repository changes in this run: check (and make) again when it runs

    A repository that refuses the password, or cannot be reached, fails the operation with restic's
    one-line reason, while planning (``--dry`` says it too).

    **Example:**

    .. code:: python

        restic.repository(
            name="restic repository",
            env_file="/etc/homelab/backup/restic.env",
            script="/usr/local/sbin/homelab-backup",
        )
    """
    if not env_file.startswith("/") or not script.startswith("/"):
        raise OperationValueError(f"env_file and script must be absolute paths: {env_file!r}, {script!r}")
    state = read_fact(ResticRepository, env_file=env_file, host=host)
    found = state.get("state")
    if found == "ok" and not recheck:
        host.noop(f"the restic repository configured in {env_file} opens with its password")
        return
    if found == "wrong-password" and not recheck:
        yield from refuse(
            f"the restic repository configured in {env_file} exists but refuses the password "
            "(HOMELAB_BACKUP_PASSWORD): set the password it was made with, or choose another repository"
        )
        return
    if found == "error" and not recheck:
        yield from refuse(f"cannot open the restic repository configured in {env_file}: {state.get('error')}")
        return
    # missing, or not readable yet (restic or the configuration arrives in this run): made if missing
    yield StringCommand(QuoteString(script), "init")
