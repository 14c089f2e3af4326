"""Tier 3's rules for SSH over the tailnet only (tests/verify/host_rules.py), on canned zones."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "verify"))

from host_rules import expected_ssh_port, zones_admitting_ssh_elsewhere  # noqa: E402

TAILNET = ["100.64.0.0/10"]


def zone(target="default", sources=(), interfaces=(), services=(), ports=()):
    return {"target": target, "sources": list(sources), "interfaces": list(interfaces),
            "services": list(services), "ports": list(ports)}


def test_the_zone_opens_sshd_port_when_it_is_not_22():
    assert expected_ssh_port(2222) == ["2222/tcp"]
    assert expected_ssh_port(22) == []


def test_only_zones_handling_other_traffic_may_not_admit_ssh():
    zones = {
        "public": zone(interfaces=["eth0"], services=["dhcpv6-client"]),
        "self-hosted": zone(sources=TAILNET, services=["ssh"], ports=["2222/tcp"]),
        "docker": zone(target="ACCEPT", interfaces=["docker0"]),
        "dmz": zone(services=["ssh"]),  # handles nothing
        "admins": zone(sources=["100.100.0.0/16"], services=["ssh"]),  # inside the tailnet
        "trusted": zone(target="ACCEPT"),
    }
    assert zones_admitting_ssh_elsewhere(zones, "public", TAILNET, 2222) == []
    zones["public"] = zone(interfaces=["eth0"], services=["ssh"], ports=["2200-2299/tcp"])
    zones["lan"] = zone(sources=["192.168.1.0/24"], ports=["22/tcp"])
    zones["lab"] = zone(target="ACCEPT", interfaces=["eth1"])
    assert zones_admitting_ssh_elsewhere(zones, "public", TAILNET, 2222) == [
        "public (service ssh, 2200-2299/tcp)", "lan (22/tcp)", "lab (target ACCEPT)"]


def test_the_default_zone_counts_without_interfaces():
    zones = {"public": zone(services=["ssh"])}
    assert zones_admitting_ssh_elsewhere(zones, "public", TAILNET, 22) == ["public (service ssh)"]
    assert zones_admitting_ssh_elsewhere(zones, "home", TAILNET, 22) == []
