"""Uploads of files that hold secrets: never readable by another user, for any length of time."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

from pyinfra import host
from pyinfra.api import FileUploadCommand, QuoteString, StringCommand


def private_file_commands(content: str, dest: str, mode: int = 0o600) -> Iterator[Any]:
    """Commands that write ``content`` to ``dest`` (owner-only ``mode``) without a readable copy.

    ``dest`` is first (re)created empty with ``mode``, so the upload writes into a file nobody else
    can open. A login with sudo cannot write ``dest`` over SFTP: pyinfra writes a file of the login
    user and copies it into place. That file is put in a fresh 0700 folder of the login user (made
    with ``mkdir``, which fails rather than reuse a folder someone else made), not in ``/tmp`` itself
    where it would be created 0644; the folder is removed right after, and again before the next
    upload to the same destination, should a failed copy have left it behind.
    """
    staging = QuoteString(host.get_temp_filename(f"private-upload:{dest}"))
    target = QuoteString(dest)
    yield StringCommand("rm", "-rf", staging, "&&", "mkdir", "-m", "0700", staging, _sudo=False)
    yield StringCommand("umask", "077", "&&", "install", "-m", f"{mode:o}", "/dev/null", target)
    yield FileUploadCommand(
        StringIO(content), dest, remote_temp_filename=f"{staging.obj}/upload",
    )
    yield StringCommand("rm", "-rf", staging, _sudo=False)
