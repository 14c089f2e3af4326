"""The SSH guard's wiring: every firewall change the deploy plans keeps the deploy's own SSH path.

The connection is scripted as the host reports it (`SSH_CONNECTION`, found through the process
tree under sudo); firewalld's configuration comes from the lab host's recordings.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from harness import DEBIAN_12, ROOT, plan
from pyinfra.connectors.ssh import SSHConnector

from deploys.library import infra_steps
from deploys.library.context import DeployError

INFRA = "deploys/infrastructure.py"
FACTS = ROOT / "tests/facts/firewalld.FirewalldZones"


def zones_output(case: str, public_ports: str = "") -> list[str]:
    """A recorded FirewalldZones output, optionally with ports opened in the `public` zone."""
    lines, zone = [], None
    for line in json.loads((FACTS / f"{case}.json").read_text())["output"]:
        if line and not line[0].isspace():
            zone = line.split()[0]
        if public_ports and zone == "public" and line.strip().startswith("ports:"):
            line = f"  ports: {public_ports}"
        lines.append(line)
    return lines


def debian(ssh: str, zones: str | list[str],
           installed: tuple[str, ...] = ("firewalld 1.3.3-1", "nftables 1.0.6-2")):
    return {
        "ls -pdL *-release": DEBIAN_12,
        "uname -m": "x86_64",
        "dpkg-query": [f"{name.split()[0]}\t{name.split()[1]}" for name in installed],
        "SSH_CONNECTION": ssh,
        "firewall-cmd --get-default-zone": zones_output(zones) if isinstance(zones, str) else zones,
    }


GUARD = "firewalld | Admit SSH from 172.17.0.1 to port 2222 before firewalld starts"


def test_first_start_of_firewalld_opens_the_non_default_ssh_port_first():
    ops = plan(INFRA, debian("172.17.0.1 40000 172.17.0.3 2222", "recorded-debian12-lab-stopped-offline"))
    assert ops[GUARD] == ["firewall-offline-cmd --zone=public --add-port=2222/tcp"]
    names = list(ops)
    assert names.index(GUARD) < names.index("firewalld | firewalld running and enabled")


def test_first_start_on_port_22_needs_nothing():
    ops = plan(INFRA, debian("172.17.0.1 40000 172.17.0.3 22", "recorded-debian12-lab-stopped-offline"))
    assert ops["firewalld | Admit SSH from 172.17.0.1 to port 22 before firewalld starts"] == []


def test_a_session_whose_address_the_zone_takes_as_a_source_keeps_its_path_on_sshds_port():
    # the new zone takes the session's address as a source; it admits sshd's own port (2222) as well as
    # the ssh service, so the session stays admitted and the change is planned (the refusal itself, for a
    # zone that would not admit it: tests/operations/firewalld.zone/protect-ssh-custom-port.json)
    zones = zones_output("recorded-debian12-lab", public_ports="2222/tcp")
    ops = plan(INFRA, debian("172.17.0.1 40000 172.17.0.3 2222", zones),
               {"tailscale_allowed_ips": "100.64.0.0/10,172.17.0.1/32"})
    zone_ops = [commands for name, commands in ops.items() if name.startswith("Firewall zone self-hosted")]
    assert any("firewall-cmd --permanent --zone=self-hosted --add-port=2222/tcp" in c for c in zone_ops[0])


def test_ssh_path_unknown_over_ssh_refuses(monkeypatch):
    connector = object.__new__(SSHConnector)
    monkeypatch.setattr(infra_steps, "host", SimpleNamespace(name="server", connector=connector))
    with pytest.raises(DeployError, match="refusing to change the firewall"):
        infra_steps.ssh_path(SimpleNamespace(ssh=None))


def test_ssh_path_not_over_ssh_has_nothing_to_guard(monkeypatch):
    monkeypatch.setattr(infra_steps, "host", SimpleNamespace(name="server", connector=object()))
    assert infra_steps.ssh_path(SimpleNamespace(ssh=None)) is None
    found = SimpleNamespace(ssh={"client_address": "192.0.2.9", "server_port": 2222})
    assert infra_steps.ssh_path(found) == ("192.0.2.9", 2222)
