"""The homelab's SSH connector: pyinfra's own, plus two things every connection needs.

Use it by naming hosts ``@homelab/<address>`` in an inventory (it is registered as the
``homelab`` connector through the ``pyinfra.connectors`` entry point); all ``ssh_*`` host data
works as with ``@ssh``. A host is then named ``<address>``, as with ``@ssh``: output shows that
name and ``--limit <address>`` selects it.

1. **Settings first.** Before the first connection of a run, the settings of every host in the
   run are validated (inventory data, group data and ``--data`` merged over the environment).
   Any problem stops the run with one line per problem, and no host is contacted.
2. **No dead time.** paramiko sets no socket options, so every small command waits for Nagle's
   algorithm to meet the peer's delayed ACK (about 40 ms per command). The connector sets
   ``TCP_NODELAY`` on each connection's socket right after it is established.
"""

from __future__ import annotations

import socket
from typing import Any

from pyinfra.api.exceptions import ConnectError
from pyinfra.connectors.ssh import SSHConnector

from deploys.library.settings import SettingsError, settings_for_host


def _validate_run(state: Any) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    for host in state.inventory:
        if not state.is_host_in_limit(host):
            continue
        try:
            settings_for_host(host)
        except SettingsError as error:
            problems[host.name] = error.problems
    return problems


def enable_tcp_nodelay(transport: Any) -> None:
    sock = getattr(transport, "sock", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def tcp_nodelay_enabled(transport: Any) -> bool:
    sock = getattr(transport, "sock", None)
    return bool(
        isinstance(sock, socket.socket) and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    )


class HomelabConnector(SSHConnector):
    """``@homelab/<host>``: SSH with settings validated up front and ``TCP_NODELAY`` set."""

    @staticmethod
    def make_names_data(name):
        # the host keeps the name a person types (`--limit <name>`); the connector class is
        # pyinfra's choice from the `@homelab/` prefix, not from the name
        yield name, {"ssh_hostname": name}, []

    def connect(self) -> None:
        # gevent runs this without yielding until the first network call, so the whole
        # inventory is validated before any host's connection starts.
        # problems per host, computed once per run (kept on the run's state)
        problems = self.state.__dict__.get("homelab_settings_problems")
        if problems is None:
            problems = self.state.__dict__["homelab_settings_problems"] = _validate_run(self.state)
        if problems:
            own = problems.get(self.host.name)
            if own:
                raise ConnectError(
                    "not contacted: invalid settings:\n" + "\n".join(f"    - {line}" for line in own)
                )
            raise ConnectError("not contacted: the settings of another host in this run are invalid")
        super().connect()

    def _connect(self) -> None:
        super()._connect()
        assert self.client is not None
        enable_tcp_nodelay(self.client.get_transport())
