"""deploys/validate.py wires the host's interfaces and routes into the preflight (one HostNetwork read)."""

from __future__ import annotations

import pytest
from harness import DEBIAN_12, plan

from deploys.library.context import DeployError

S = "### pyinfra-section "


def network(tailscale0: str, *routes: str) -> list[str]:
    return [S + "tailscale", S + "addresses",
            "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever",
            f"13: tailscale0    inet {tailscale0}/32 scope global tailscale0\\       valid_lft forever",
            S + "routes", *routes]


def host(tailscale0: str, *routes: str) -> dict:
    return {"ls -pdL *-release": DEBIAN_12, S: network(tailscale0, *routes)}


def test_configured_address_on_tailscale0_and_a_free_subnet_pass(capsys):
    assert plan("deploys/validate.py", host("100.101.102.103", "192.168.1.0/24 dev eth0"),
                {"docker_subnet": "172.30.0.0/16"}) == {}
    table = capsys.readouterr().err
    assert "tailscale ip   PASS    100.101.102.103 from HOMELAB_TAILSCALE_IP (also on the host)" in table
    assert "docker subnet  PASS    172.30.0.0/16 overlaps none of the host's routes" in table


def test_address_on_no_interface_and_a_subnet_on_a_route_fail_the_preflight(capsys):
    with pytest.raises(DeployError, match="preflight FAILED on @fake/server"):
        plan("deploys/validate.py", host("100.64.0.9", "172.18.0.0/16 dev docker0 proto kernel"),
             {"docker_subnet": "172.18.0.0/16"})
    table = capsys.readouterr().err
    assert "FAIL    100.101.102.103 from HOMELAB_TAILSCALE_IP is on none of the host's interfaces (lo, " \
           "tailscale0)" in table
    assert "FAIL    172.18.0.0/16 from HOMELAB_DOCKER_SUBNET overlaps the host's route 172.18.0.0/16" in table
