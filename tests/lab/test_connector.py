"""The @homelab connector on real SSH connections: settings first, TCP_NODELAY on every socket."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from lab.hosts import ssh_command  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import sys
from pyinfra.api import Config, Inventory, State
from pyinfra.api.connect import connect_all
from deploys.library.connector import tcp_nodelay_enabled
import runpy
inventory = Inventory((runpy.run_path("inventories/lab.py")["lab_hosts"], {}))
state = State(inventory, Config())
connect_all(state)
hosts = list(inventory)
assert hosts and all(h.connected for h in hosts), [h.name for h in hosts if not h.connected]
for h in hosts:
    print(h.name, type(h.connector).__name__, tcp_nodelay_enabled(h.connector.client.get_transport()))
"""


def test_every_lab_connection_has_tcp_nodelay(lab_hosts):
    proc = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = {host["name"] for host in lab_hosts}
    lines = [words for words in map(str.split, proc.stdout.splitlines()) if words and words[0] in names]
    assert len(lines) == len(lab_hosts), proc.stdout
    assert all(kind == "HomelabConnector" and flag == "True" for _, kind, flag in lines), lines


def test_plain_paramiko_socket_has_no_tcp_nodelay_by_default(lab_hosts):
    """The control: what the connector changes (a fresh TCP socket has Nagle's algorithm on)."""
    host = lab_hosts[0]
    with socket.create_connection(("127.0.0.1", host["ssh_port"]), timeout=10) as sock:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0


@pytest.mark.parametrize(
    ("data", "setting", "shown"),
    [
        ("domain=Not_A_Domain", "HOMELAB_DOMAIN", "'Not_A_Domain'"),
        # a value that would weaken the server: every published port on every interface
        ("tailscale_ip=0.0.0.0", "HOMELAB_TAILSCALE_IP", "'0.0.0.0'"),
    ],
)
def test_invalid_setting_stops_the_run_before_any_host_is_contacted(lab_hosts, data, setting, shown):
    proc = subprocess.run(
        [
            str(ROOT / ".venv/bin/pyinfra"),
            "-y",
            "inventories/lab.py",
            "exec",
            "--data",
            data,
            "--",
            "touch /tmp/should-not-exist",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert setting in output and shown in output, output
    assert "not contacted" in output
    for host in lab_hosts:
        probe = subprocess.run(ssh_command(host, "test -e /tmp/should-not-exist"), capture_output=True)
        assert probe.returncode == 1, f"{host['name']} was touched"
