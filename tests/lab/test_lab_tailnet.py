"""The simulated tailnet keeps lab traffic in the lab: a lab host reaches the other lab hosts at their
tailscale0 addresses, and any other tailnet address fails at once instead of leaving the machine
through the default route (../shared/LAB.md: "Traffic must stay on this machine")."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from labkit import ROOT

from lab.hosts import INNER_SSH_PORT

# connect from the lab host itself; print errno (0 = connected, with the first bytes read) and seconds
PROBE = r"""
import json, socket, sys, time
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
start = time.monotonic()
sock = socket.socket(family, socket.SOCK_STREAM)
sock.settimeout(5)
try:
    sock.connect((sys.argv[1], int(sys.argv[2])))
    answer = {"errno": 0, "read": sock.recv(16).decode(errors="replace")}
except OSError as error:
    answer = {"errno": error.errno or -1, "error": str(error)}
answer["seconds"] = time.monotonic() - start
print(json.dumps(answer))
"""


def probe(lab_ssh, host: dict, address: str, port: int) -> dict:
    out = lab_ssh(host, f"python3 -c '{PROBE}' {address} {port}").stdout
    return json.loads(out)


def assert_reaches(lab_ssh, source: dict, peer: dict) -> None:
    """``source`` reaches ``peer`` over the tailnet: the peer's tailscale0 answers ARP on the tailnet
    link (the neighbour entry, flushed first, holds the peer's tailscale0 address), and the peer's
    sshd answers, unless the peer's own firewall turns the connection away (after a deploy its zone
    admits tailnet sources to the service ports only: the deploy reaches sshd over 127.0.0.1)."""
    lab_ssh(source, "ip neigh flush dev tailscale0")
    answer = probe(lab_ssh, source, peer["tailscale_ip"], INNER_SSH_PORT)
    neighbour = lab_ssh(source, f"ip neigh show {peer['tailscale_ip']} dev tailscale0").stdout
    mac = lab_ssh(peer, "cat /sys/class/net/tailscale0/address").stdout.strip()
    assert f"lladdr {mac}" in neighbour, (neighbour, mac, answer)
    firewalled = lab_ssh(peer, "systemctl is-active firewalld", check=False).stdout.strip() == "active"
    if answer["errno"] == 0 or not firewalled:
        assert answer["errno"] == 0 and answer["read"].startswith("SSH-2.0-"), answer


@pytest.fixture
def two_hosts(lab_hosts):
    if len(lab_hosts) < 2:
        pytest.skip("needs two lab hosts")
    return lab_hosts[0], lab_hosts[1]


def test_a_lab_host_reaches_its_peer_over_the_tailnet(two_hosts, lab_ssh):
    for source, peer in (two_hosts, two_hosts[::-1]):
        assert_reaches(lab_ssh, source, peer)
        route = lab_ssh(source, f"ip route get {peer['tailscale_ip']}").stdout
        assert "dev tailscale0" in route, route


@pytest.mark.parametrize("address", ["100.64.0.99", "100.127.255.254", "fd7a:115c:a1e0::99"])
def test_a_tailnet_address_of_no_lab_host_fails_at_once(lab_hosts, lab_ssh, address):
    answer = probe(lab_ssh, lab_hosts[0], address, 80)
    assert answer["errno"] != 0, f"{address} answered from a lab host: {answer}"
    # "No route to host" (or "Network is unreachable" where IPv6 is off), not a timeout
    assert answer["seconds"] < 0.5, answer
    if ":" not in address:
        assert answer["errno"] == 113, answer  # EHOSTUNREACH: the `unreachable` route


def test_the_tailnet_ranges_are_unreachable_routes(lab_hosts, lab_ssh):
    routes = lab_ssh(lab_hosts[0], "ip -4 route show; ip -6 route show").stdout
    assert "unreachable 100.64.0.0/10" in routes, routes
    assert "unreachable fd7a:115c:a1e0::/48" in routes, routes


def test_up_gives_running_hosts_the_routes_to_their_peers(two_hosts, lab_ssh, lab_hosts):
    """A host that lost (or never had) its route to a peer, as a host running before the peer was
    added by `up --hosts N`, learns it from the next `up`."""
    first, second = two_hosts
    lab_ssh(first, f"ip route del {second['tailscale_ip']} dev tailscale0")
    assert probe(lab_ssh, first, second["tailscale_ip"], INNER_SSH_PORT)["errno"] == 113
    proc = subprocess.run(
        [sys.executable, "-m", "lab", "up", "--hosts", str(len(lab_hosts))],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert_reaches(lab_ssh, first, second)
