"""Reach a host's private HTTP APIs (NPM on its Tailscale IP, Pi-hole on the Docker network)
through an SSH tunnel to that host, opened with the same SSH settings the deploy itself uses.

This works everywhere: in the lab the Tailscale address lives inside the lab host, and in real
life the operator's machine may not be on the tailnet. The tunnel is `sshtunnel`'s forwarder;
it pins the host key that pyinfra's own connection verified, so it talks to the same server.
One tunnel per (host, target) for the whole run (kept in ``run.py``); all close when the run ends.
A tunnel that cannot be opened is ``ServiceUnreachable``: the API behind it does not answer. An API that
does not answer through its tunnel is said in one line that tells which of the three failed: SSH to the
host, the tunnel to the port (nothing accepts connections there), or the service behind it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paramiko
import sshtunnel
from pyinfra import host as current_host

from deploys.library.catalog import NETWORK
from deploys.library.run import current_run
from facts.docker import DockerContainerAddresses
from facts.reads import read_fact
from operations.clients import ServiceUnreachable

logger = logging.getLogger("homelab.tunnel")
said = logging.getLogger("homelab")  # the deploy's own lines
SSH_CONFIG = Path("~/.ssh/config").expanduser()
# how long a client factory waits for its API while planning: an API that answers does so at once; one
# that does not is said in one line and waited for by the run (it may be started earlier in it), so a
# preview never waits long
PLANNING_WAIT = 2


def _ssh_target(host: Any) -> tuple[str, int]:
    data = host.data
    hostname = data.get("ssh_hostname") or host.name.split("/", 1)[-1]
    return hostname, int(data.get("ssh_port") or 22)


def _nodelay_socket(target: tuple[str, int]) -> socket.socket:
    family = socket.getaddrinfo(*target, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _pinned_key(host: Any) -> paramiko.PKey | None:
    client = getattr(getattr(host, "connector", None), "client", None)
    transport = client.get_transport() if client is not None else None
    return transport.get_remote_server_key() if transport is not None else None


# per host: the tunnels a client factory asked for while it made its client (answering_once)
_asked: dict[str, list[tuple[str, str, int]]] = {}


def local_url(host: Any, remote_address: str, remote_port: int) -> str:
    """``http://127.0.0.1:<port>`` forwarding to ``remote_address:remote_port`` as ``host`` sees it."""
    tunnels = current_run().tunnels
    key = (host.name, remote_address, remote_port)
    if host.name in _asked:
        _asked[host.name].append(key)
    tunnel = tunnels.get(key)
    if tunnel is None or not tunnel.is_active:
        data = host.data
        ssh_key = data.get("ssh_key")
        target = _ssh_target(host)
        tunnel = sshtunnel.SSHTunnelForwarder(
            target,
            # the tunnel's own SSH socket, with Nagle off like the deploy's connection
            # (sshtunnel connects a socket given as `ssh_proxy` itself)
            ssh_proxy=_nodelay_socket(target),
            ssh_username=data.get("ssh_user") or None,
            ssh_pkey=str(ssh_key) if ssh_key else None,
            ssh_private_key_password=data.get("ssh_key_password") or None,
            ssh_password=data.get("ssh_password") or None,
            allow_agent=not ssh_key,
            host_pkey_directories=[],
            ssh_host_key=_pinned_key(host),
            # read ~/.ssh/config only where there is one (sshtunnel warns on every tunnel otherwise)
            ssh_config_file=str(SSH_CONFIG) if SSH_CONFIG.is_file() else None,
            remote_bind_address=(remote_address, remote_port),
            local_bind_address=("127.0.0.1", 0),
            set_keepalive=15.0,
            logger=logger,
        )
        try:
            tunnel.start()
        except sshtunnel.BaseSSHTunnelForwarderError as error:
            hostname, port = target
            raise ServiceUnreachable(
                f"SSH to {host.name} ({hostname}:{port}) failed, so no tunnel to "
                f"{remote_address}:{remote_port} could be opened: {error}"
            ) from None
        tunnels[key] = tunnel
    return f"http://127.0.0.1:{tunnel.local_bind_port}"


def container_url(host: Any, container: str, label: str, port: int) -> str:
    """``http://127.0.0.1:<port>`` forwarding to ``container``'s address on the deploy's Docker network
    (which every service joins, published or not); ``ServiceUnreachable`` when it is not running there."""
    address = read_fact(DockerContainerAddresses, host=host).get(container, {}).get(NETWORK)
    if not address:
        raise ServiceUnreachable(
            f"no answer from {label}: its container is not running on the {NETWORK} network"
        )
    return local_url(host, address, port)


def which_failed(tunnel: Any, remote_address: str, remote_port: int, host_name: str, service: str) -> str:
    """Through an open tunnel the API did not answer: which part failed, in words. SSH (the tunnel's
    connection to the host is gone or stopped answering), the tunnel to the port (the host refuses to
    connect to it: nothing listens there), or the service behind it (the port accepts connections)."""
    transport = getattr(tunnel, "_transport", None)
    where = f"{remote_address}:{remote_port}"
    if transport is None or not transport.is_active():
        return f"SSH to {host_name} failed (the tunnel's connection is gone)"
    try:
        channel = transport.open_channel("direct-tcpip", (remote_address, remote_port), ("127.0.0.1", 0),
                                         timeout=5)
    except paramiko.ChannelException:
        return (f"SSH to {host_name} works, but the tunnel to {where} is refused there: nothing accepts "
                f"connections on that port ({service} not running or not listening there)")
    except (paramiko.SSHException, OSError, EOFError):
        return f"SSH to {host_name} stopped answering"
    channel.close()
    return f"SSH to {host_name} and the tunnel to {where} work, but {service} behind it does not answer"


def _explained(error: ServiceUnreachable, keys: list[tuple[str, str, int]], service: str) -> None:
    """Put in front of ``error``'s message which part failed, for the first tunnel it went through."""
    if not keys:  # no tunnel was opened (SSH failed, or no container address): the message says so
        return
    tunnels = current_run().tunnels
    message = error.args[0] if error.args else str(error)
    for host_name, address, port in keys:
        tunnel = tunnels.get((host_name, address, port))
        if tunnel is not None:
            part = which_failed(tunnel, address, port, host_name, service)
            error.args = (f"{part} ({message})", *error.args[1:])
            return
    # no tunnel could be opened: the message says SSH failed; this names what it was for
    error.args = (f"no answer from {service}: {message}", *error.args[1:])


def ready_wait(timeout: float) -> float:
    """How long a client factory waits for its API to answer: ``timeout`` when the run applies,
    ``PLANNING_WAIT`` while planning."""
    return timeout if current_host.state.is_executing else PLANNING_WAIT


def answering_once(make: Callable[[], Any], service: str) -> Callable[[], Any]:
    """``make`` (a client factory), but while planning an API that does not answer is asked once per
    host, not once per operation, and a line says so: the plan then treats it as holding nothing, and
    the run waits for it (the service may start earlier in the same run). An API that does not answer
    through a tunnel says which part failed: SSH, the tunnel to the port, or the service."""
    unreachable: list[ServiceUnreachable] = []

    def explaining() -> Any:
        name = current_host.name
        _asked[name] = []
        try:
            return make()
        except ServiceUnreachable as error:
            _explained(error, _asked[name], service)
            raise
        finally:
            del _asked[name]

    def wrapped() -> Any:
        if current_host.state.is_executing:
            return explaining()
        if unreachable:
            raise unreachable[0]
        try:
            return explaining()
        except ServiceUnreachable as error:
            unreachable.append(error)
            said.warning(
                f"{current_host.name}: {service} does not answer ({error}): planned as if it held nothing; "
                "the run waits for it (it starts earlier in the same run when it is not deployed yet)"
            )
            raise

    return wrapped
