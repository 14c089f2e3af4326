"""operations.firewalld: ssh_allowed (which zone handles the SSH client) and a stopped firewalld."""

import pytest
from pyinfra.api.exceptions import OperationError, OperationValueError
from pyinfra.context import ctx_host, ctx_state
from pyinfra_testing.util import FakeState, create_host

from operations import firewalld
from operations.firewalld import ssh_allowed


def zone(target="default", sources=(), interfaces=(), services=(), ports=(), default=False):
    return {
        "target": target,
        "sources": list(sources),
        "interfaces": list(interfaces),
        "services": list(services),
        "ports": list(ports),
        "default": default,
    }


PUBLIC = zone(interfaces=["eth0"], services=["ssh"], default=True)


def test_source_zone_decides_over_interface_zone():
    zones = {"public": PUBLIC, "tailnet": zone(sources=["100.64.0.0/10"], ports=["80/tcp"])}
    assert ssh_allowed(zones, "100.101.102.103") is False
    assert ssh_allowed(zones, "192.168.1.9") is True


def test_unmatched_client_needs_every_interface_zone_and_the_default_zone():
    zones = {"public": PUBLIC, "internal": zone(interfaces=["eth1"], target="DROP")}
    assert ssh_allowed(zones, "192.168.1.9") is False


def test_accept_target_port_range_and_custom_port():
    zones = {"public": PUBLIC, "lan": zone(sources=["10.0.0.0/8"], ports=["2200-2299/tcp"])}
    assert ssh_allowed(zones, "10.1.2.3", ssh_port=2222) is True
    assert ssh_allowed(zones, "10.1.2.3", ssh_port=22) is False
    zones["lan"] = zone(sources=["10.0.0.0/8"], target="ACCEPT")
    assert ssh_allowed(zones, "10.1.2.3") is True


def test_ssh_service_only_covers_port_22():
    zones = {"public": PUBLIC}
    assert ssh_allowed(zones, "192.168.1.9", ssh_port=2222) is False


def test_ipv6_client_and_non_ip_sources():
    zones = {
        "public": PUBLIC,
        "tailnet": zone(sources=["fd7a:115c:a1e0::/48", "ipset:blocked", "00:11:22:33:44:55"]),
    }
    assert ssh_allowed(zones, "fd7a:115c:a1e0::a") is False
    assert ssh_allowed(zones, "2001:db8::1") is True


def test_client_must_be_an_ip_address():
    with pytest.raises(OperationValueError, match="'lab-host' is not an IP address"):
        ssh_allowed({"public": PUBLIC}, "lab-host")


def test_zone_refuses_when_firewalld_is_not_running_at_execution():
    state = FakeState()
    state.is_executing = True
    stopped = {"running": False, "default_zone": None, "zones": {}, "permanent": {}}
    host = create_host(state, facts={"firewalld.FirewalldZones": stopped})
    with ctx_state.use(state), ctx_host.use(host):
        with pytest.raises(OperationError, match="firewalld is not running on this host"):
            list(firewalld.zone._inner("self-hosted", sources=["100.64.0.0/10"]))
