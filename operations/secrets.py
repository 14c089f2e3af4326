"""Secrets generated on the host itself, so that they never travel over the deploy's connection."""

from __future__ import annotations

import re

from pyinfra import host
from pyinfra.api import OperationValueError, QuoteString, StringCommand, operation
from pyinfra.facts.files import File

from facts.reads import read_fact

_VARIABLE = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@operation()
def generated_env_file(path: str, variable: str, length: int = 48):
    """
    Create an env file holding one random secret, once: an existing file is never changed.

    + path: absolute path of the file (created with mode 0600, its folder must exist)
    + variable: the variable name written as ``VARIABLE=value``
    + length: number of random characters (letters and digits)

    The value comes from the host's ``/dev/urandom`` and never leaves the host: re-runs keep it.

    **Example:**

    .. code:: python

        secrets.generated_env_file(
            name="Open WebUI session secret",
            path="/opt/homelab/open-webui/webui-secret.env",
            variable="WEBUI_SECRET_KEY",
        )
    """
    if not path.startswith("/"):
        raise OperationValueError(f"path: {path!r} is not an absolute path")
    if not _VARIABLE.match(variable):
        raise OperationValueError(f"variable: {variable!r} is not an environment variable name")
    if not 16 <= length <= 256:
        raise OperationValueError(f"length: {length!r} must be between 16 and 256")
    if read_fact(File, path=path, host=host):
        host.noop(f"{path} exists: its secret is kept")
        return
    script = (
        f"umask 077 && value=$(tr -dc A-Za-z0-9 </dev/urandom | head -c {length}) && "
        f'[ "${{#value}}" -eq {length} ] && printf "{variable}=%s\\n" "$value" > "$1"'
    )
    yield StringCommand("sh", "-c", QuoteString(script), "generated_env_file", QuoteString(path))
