"""
Bring a node onto its tailnet with ``tailscale up``, idempotently.

``tailscale up`` does not remember its flags, so the arguments are hashed and the hash kept on the
host; ``up --reset …`` runs again only when that hash changes or the node is not ``Running``.
The auth key never appears on a command line: it reaches the host as a 0600 file inside a 0700
directory, is passed as ``--auth-key=file:PATH`` and deleted right after, whatever ``up`` returns.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from typing import Any

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.exceptions import OperationError
from pyinfra.facts.files import FileContents

from facts.tailscale import TailscaleStatus
from operations.clients import reveal
from operations.uploads import private_file_commands

HASH_FILE = "up-args.sha256"
KEY_FILE = "auth-key"


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


def arguments_hash(args: list[str], auth_key: str | None) -> str:
    """SHA-256 over the ``up`` flags and a SHA-256 of the key (the key itself is never stored)."""
    key_digest = hashlib.sha256(auth_key.encode()).hexdigest() if auth_key else None
    payload = json.dumps({"args": args, "auth_key_sha256": key_digest}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _upload_key(auth_key: str, key_path: str):
    """Commands that land the key in ``key_path`` without it ever being readable by others."""
    yield from private_file_commands(auth_key, key_path, mode=0o600)


@operation()
def up(
    auth_key: Any = None,
    hostname: str | None = None,
    advertise_tags: list[str] | None = None,
    accept_dns: bool | None = None,
    accept_routes: bool | None = None,
    ssh: bool | None = None,
    extra_args: list[str] | None = None,
    state_dir: str = "/etc/tailscale-up",
    timeout: str = "120s",
):
    """
    Run ``tailscale up --reset`` with these settings when the node is not ``Running`` or the
    settings (or the auth key) changed since the last run.

    + auth_key: auth key, a string or a secret object with ``get_secret_value()``; needed only to
      log in (a node that is logged out and has no key raises an error)
    + hostname: ``--hostname``
    + advertise_tags: ``--advertise-tags`` (a list of ``tag:…``)
    + accept_dns: ``--accept-dns``
    + accept_routes: ``--accept-routes``
    + ssh: ``--ssh`` (Tailscale SSH)
    + extra_args: further ``tailscale up`` flags, passed as given
    + state_dir: root-only directory for the arguments hash and, briefly, the key file
    + timeout: ``--timeout`` for ``up`` (not part of the hash)

    A ``None`` setting leaves the flag out; since ``--reset`` is always passed, that means
    tailscale's default.

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
    digest = arguments_hash(args, key)
    hash_path = f"{state_dir}/{HASH_FILE}"

    status = host.get_fact(TailscaleStatus)
    stored = host.get_fact(FileContents, path=hash_path)
    running = status["backend_state"] == "Running"
    if running and stored and stored[0].strip() == digest:
        host.noop("tailscale is up with these settings")
        return
    if key is None and status["backend_state"] == "NeedsLogin":
        raise OperationError("Tailscale needs to log in and no auth key was given")

    command = ["tailscale", "up", "--reset", *args, f"--timeout={timeout}"]
    yield f"install -d -m 0700 {shlex.quote(state_dir)}"
    if key is None:
        yield shlex.join(command)
    else:
        key_path = f"{state_dir}/{KEY_FILE}"
        yield from _upload_key(key, key_path)
        up_command = shlex.join([*command, f"--auth-key=file:{key_path}"])
        yield f"{up_command}; rc=$?; rm -f {shlex.quote(key_path)}; exit $rc"
    yield f"echo {digest} > {shlex.quote(hash_path)}"
