"""Open WebUI: the admin account the deploy owns, and public sign-up closed."""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import FunctionCommand, OperationValueError, StringCommand, operation

from operations.clients import Secret, ServiceUnreachable, read_while_planning, reveal
from operations.clients.openwebui import OpenWebUIClient, OpenWebUIError
from operations.failures import named, refuse, report
from operations.uploads import private_file_commands

ClientFactory = Callable[[], OpenWebUIClient]
# the script run inside the container (Open WebUI's own account code; operations/openwebui_account.py)
ACCOUNT_SCRIPT = Path(__file__).with_name("openwebui_account.py")


def account_command(container: str, payload_path: str) -> str:
    """``docker exec`` of the account script in ``container``, its input read from ``payload_path`` (a
    0600 file, removed whatever the outcome): the password is never on a command line. The script
    itself goes base64-encoded on the command line (it holds no secret)."""
    code = base64.b64encode(ACCOUNT_SCRIPT.read_bytes()).decode()
    program = f"import base64; exec(base64.b64decode('{code}'))"
    path = shlex.quote(payload_path)
    return (f"docker exec -i {shlex.quote(container)} python3 -c {shlex.quote(program)} < {path}; "
            f"status=$?; rm -f {path}; exit $status")


def _make_account(
    container: str, payload_path: str, email: str, display_name: str, password: Secret
) -> Iterator[Any]:
    payload = json.dumps({"email": email, "name": display_name, "password": reveal(password)})
    yield from private_file_commands(payload, payload_path)
    yield StringCommand(account_command(container, payload_path))


def _settle(client_factory: ClientFactory, email: str) -> Callable[[Any, Any], bool]:
    """When it runs: the account signs in as an admin (or the operation fails saying so), and sign-up
    is closed if it is open."""

    def settle(state: Any, host: Any) -> bool:  # pyinfra passes these two by name
        try:
            client = client_factory()
            found = client.state()
            if found["account"] != "admin":
                what = "does not sign in" if found["account"] == "refused" else f"is a {found['account']}"
                return report(host, f"open-webui: {email} {what} after the account was set")
            if found["signup"]:
                client.close_signup()
        except (OpenWebUIError, ServiceUnreachable) as error:
            return report(host, f"open-webui: {error}")
        return True

    return settle


@operation()
def admin(client_factory: ClientFactory, container: str, email: str, display_name: str, password: Secret,
          payload_path: str):
    """
    Make ``email`` Open WebUI's admin with ``password``, and public sign-up closed.

    + client_factory: callable returning an ``OpenWebUIClient`` for ``email`` / ``password``
    + container: the Open WebUI container (its own code creates the account or sets its password)
    + email, display_name, password: the account (the password never reaches a command line or a log)
    + payload_path: a path on the host for the account script's input (0600, removed after use)

    Read through the API: the account signs in as an admin, and ``/api/config`` says sign-up is off:
    nothing to do. Otherwise the account is created, or its password set and its role made admin,
    inside the container with Open WebUI's own account code (sign-up stays closed throughout:
    nobody else can make the first account), then sign-up is closed through the admin API if a
    stored setting opened it.

    **Example:**

    .. code:: python

        openwebui.admin(name="Open WebUI admin", client_factory=make_client, container="open-webui",
                        email="admin@home.example.com", display_name="Admin", password=password,
                        payload_path="/opt/homelab/open-webui/.admin-account.json")
    """
    if not payload_path.startswith("/"):
        raise OperationValueError(f"payload_path: {payload_path!r} is not an absolute path")
    try:
        reachable, found = read_while_planning(lambda: client_factory().state(), host.state.is_executing)
    # it answers, but not as it should (5xx, 429, not JSON); or, when the run gets here, it does not answer
    except (OpenWebUIError, ServiceUnreachable) as error:
        yield from refuse(f"open-webui: {error}")
        return
    if reachable and found["account"] == "admin" and not found["signup"]:
        host.noop(f"Open WebUI admin {email} signs in; sign-up is closed")
        return
    if not reachable or found["account"] != "admin":
        yield from _make_account(container, payload_path, email, display_name, password)
    yield FunctionCommand(named(_settle(client_factory, email),
                                "open-webui: the admin signs in; sign-up closed"), (), {})
