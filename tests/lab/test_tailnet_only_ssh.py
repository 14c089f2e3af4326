"""SSH over the tailnet only (HOMELAB_SSH_TAILNET_ONLY), for real, on the second lab host.

This machine is a tailnet peer in the lab (100.64.0.254, lab/hosts.py join_tailnet), as an owner's laptop
in the tailnet is, and also reaches each host from outside the tailnet, through the port published on
127.0.0.1 (the lab network: the host's `public` zone). The deploy runs from outside first: it may take
SSH out of the other zones only after a second login over the tailnet proves that path, and it refuses
when that login fails. Afterwards only the tailnet reaches sshd; a deploy over the tailnet changes nothing
on its second run, and turning the setting off there puts back exactly what was taken out.

Checks of the host's firewall go through `docker exec` (the lab's own way in, whatever the firewall
says); reachability is tried with a plain ssh client over each path. No lab host is ever left without
SSH from the lab network: the fixture puts `public` back through `docker exec` whatever happened.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from labkit import assert_clean, run_pyinfra_cli

from lab.docker import docker

INFRA = "deploys/infrastructure.py"
ON = ("--data", "ssh_tailnet_only=true")
OFF = ("--data", "ssh_tailnet_only=false")
OVER_TAILNET = {"LAB_SSH_OVER": "tailnet"}
CONTROLLER = "100.64.0.254"
INNER_PORT = 2222
STATE = "/etc/homelab/ssh-tailnet-only.removed"
TIMER = "homelab-ssh-tailnet-revert.timer"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def inside(host, command: str) -> str:
    return docker("exec", host["name"], "sh", "-c", command, capture=True, check=False).stdout


def zone(host, name: str, permanent: bool = False) -> tuple[list[str], list[str]]:
    flag = "--permanent " if permanent else ""
    services = inside(host, f"firewall-cmd {flag}--zone={name} --list-services").split()
    ports = inside(host, f"firewall-cmd {flag}--zone={name} --list-ports").split()
    return services, ports


def reaches(host, address: str, port: int) -> bool:
    """A plain ssh login as root (the lab's key) over one path: does sshd answer there?"""
    proc = subprocess.run(
        ["ssh", "-i", host["ssh_key"], "-p", str(port), "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
         "-o", "ConnectTimeout=5", f"root@{address}", "true"],
        capture_output=True, text=True, timeout=30,
    )
    return proc.returncode == 0


def _route(host, reachable: bool) -> None:
    """This machine's route to the host's tailnet address: the lab's, or `unreachable` (fails at once,
    never leaves the machine) to make the proving login fail."""
    bridge = subprocess.run(["ip", "-o", "addr", "show", "to", f"{CONTROLLER}/32"], capture_output=True,
                            text=True, check=True).stdout.split()[1]
    route = (["ip", "route", "replace", f"{host['tailscale_ip']}/32", "dev", bridge, "src", CONTROLLER]
             if reachable else ["ip", "route", "replace", "unreachable", f"{host['tailscale_ip']}/32"])
    subprocess.run(route, check=True, capture_output=True)


@pytest.fixture(scope="module")
def host(lab_hosts):
    import json

    from labkit import ROOT

    world = json.loads((ROOT / ".lab" / "hosts.json").read_text())["world"]
    if not world.get("controller_tailnet_ip"):
        pytest.skip("this machine could not join the lab tailnet (see `python -m lab up`)")
    host = lab_hosts[1]
    name = host["name"]
    run_pyinfra_cli(INFRA, limit=name, timeout=1500)  # the infrastructure tier as a user has it first
    before = {kind: zone(host, "public", kind == "permanent") for kind in ("runtime", "permanent")}
    yield host, before
    _route(host, True)
    # whatever happened: SSH back in `public` (runtime and permanent), nothing left pending
    inside(host, f"systemctl stop {TIMER} 2>/dev/null; "
                 "for p in '' '--permanent'; do firewall-cmd $p --zone=public --add-service=ssh; "
                 f"firewall-cmd $p --zone=public --add-port={INNER_PORT}/tcp; done; "
                 f"rm -f {STATE} {STATE}.pending")
    run_pyinfra_cli(INFRA, *OFF, limit=name, check=False)


def test_without_a_tailnet_path_it_is_refused_and_nothing_changes(host):
    host, before = host
    _route(host, False)
    try:
        result = run_pyinfra_cli(INFRA, *ON, limit=host["name"], check=False)
    finally:
        _route(host, True)
    output = ANSI.sub("", result.stdout + result.stderr)
    assert result.returncode != 0, result.explain()
    assert_clean(result)
    said = [line for line in output.splitlines() if "SSH tailnet-only: refused, nothing changed" in line]
    assert said, result.explain()
    assert f"a login to {host['tailscale_ip']}:{INNER_PORT} failed" in said[0], said[0]
    assert "run the deploy over the tailnet" in said[0], said[0]
    assert {kind: zone(host, "public", kind == "permanent") for kind in before} == before
    assert inside(host, f"ls {STATE} {STATE}.pending 2>/dev/null") == ""
    assert reaches(host, "127.0.0.1", host["ssh_port"])


def test_proven_by_a_login_over_the_tailnet_only_the_tailnet_reaches_sshd(host):
    host, before = host
    result = run_pyinfra_cli(INFRA, *ON, limit=host["name"])
    assert result.changed > 0
    for permanent in (False, True):
        services, ports = zone(host, "public", permanent)
        assert "ssh" not in services and f"{INNER_PORT}/tcp" not in ports, (permanent, services, ports)
        assert f"{INNER_PORT}/tcp" in zone(host, "self-hosted", permanent)[1]
    recorded = inside(host, f"cat {STATE}").splitlines()
    assert "runtime public service ssh" in recorded and "permanent public service ssh" in recorded, recorded
    assert inside(host, f"systemctl is-active {TIMER}").strip() != "active"  # confirmed: no revert pending
    assert reaches(host, host["tailscale_ip"], INNER_PORT)
    assert not reaches(host, "127.0.0.1", host["ssh_port"])  # the lab network is outside the tailnet


def test_over_the_tailnet_a_second_run_changes_nothing_and_tier3_agrees(host, tmp_path):
    host, _ = host
    result = run_pyinfra_cli(INFRA, *ON, limit=host["name"], env=OVER_TAILNET)
    assert result.changed == 0, result.changed_operations()
    from labkit import verify

    env = {**OVER_TAILNET, "HOMELAB_SSH_TAILNET_ONLY": "true"}
    code, failed, passed, tail = verify(host["name"], tmp_path, env=env, keyword="tailnet or zone")
    assert (code, failed) == (0, set()) and passed >= 3, tail


def test_turned_off_over_the_tailnet_it_puts_back_exactly_what_it_took(host):
    host, before = host
    run_pyinfra_cli(INFRA, *OFF, limit=host["name"], env=OVER_TAILNET)
    assert {kind: zone(host, "public", kind == "permanent") for kind in before} == before
    assert inside(host, f"ls {STATE} {STATE}.pending 2>/dev/null") == ""
    assert reaches(host, "127.0.0.1", host["ssh_port"])
    assert run_pyinfra_cli(INFRA, *OFF, limit=host["name"]).changed == 0
