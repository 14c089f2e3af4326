"""`deploys/infrastructure.py` alone on bare lab hosts: firewalld first, Docker rebuilt, zone, network."""

from __future__ import annotations

import json

import pytest
from labkit import run_pyinfra_cli, ssh

from lab.data import LAB_IMAGES

INFRA = "deploys/infrastructure.py"
IMAGE = LAB_IMAGES["ollama"]  # a LAB STAND-IN, pulled from the lab registry

# as the lab image ships a host: firewalld installed but stopped and disabled (its default zone
# admitting SSH on 22 only), Docker running with no daemon.json, no zone, no network, no containers of ours
BARE = (
    'for d in /opt/homelab/*/; do [ -f "$d/compose.yaml" ] && docker compose --project-directory "$d" '
    "down --remove-orphans; done; rm -rf /opt/homelab; docker rm -f probe-a >/dev/null 2>&1; "
    "docker network rm self-hosted >/dev/null 2>&1; "
    "if systemctl is-active -q firewalld; then firewall-cmd --permanent --delete-zone=self-hosted; "
    "firewall-cmd --permanent --zone=public --remove-port=2222/tcp; fi; "
    "systemctl disable --now firewalld; rm -f /etc/docker/daemon.json; systemctl restart docker; true"
)


@pytest.fixture(scope="module")
def runs(lab_hosts):
    for host in lab_hosts:
        ssh(host, BARE, check=False)
    dry = run_pyinfra_cli(INFRA, "--dry")
    firewalld_after_dry = [
        ssh(host, "systemctl is-active firewalld", check=False).stdout for host in lab_hosts
    ]
    first = run_pyinfra_cli(INFRA)
    second = run_pyinfra_cli(INFRA)
    dry_again = run_pyinfra_cli(INFRA, "--dry")
    return {
        "dry": dry,
        "firewalld_after_dry": firewalld_after_dry,
        "first": first,
        "second": second,
        "dry_again": dry_again,
    }


def test_dry_run_on_a_bare_host_plans_and_changes_nothing(runs):
    planned = runs["dry"].planned_changes()
    assert "firewalld | firewalld running and enabled" in planned
    assert "Firewall zone self-hosted | Zone self-hosted: Tailscale peers only" in planned
    assert all(state.strip() == "inactive" for state in runs["firewalld_after_dry"])


def test_first_run_starts_firewalld_before_restarting_docker(runs, lab_hosts):
    changed = runs["first"].changed_operations()
    names = sorted(f"{h['name']}" for h in lab_hosts)
    # sshd answers on 2222: firewalld's default zone admits SSH on 22 only, so the port is opened
    # there before the first start (the run itself went on over that very connection)
    guards = [name for name in changed if name.startswith("firewalld | Admit SSH from ")]
    assert guards and all(name.endswith("to port 2222 before firewalld starts") for name in guards), changed
    assert sorted(host for name in guards for host in changed[name]) == names
    for host in lab_hosts:
        assert "2222/tcp" in ssh(host, "firewall-cmd --permanent --zone=public --list-ports").stdout.split()
    assert sorted(changed["firewalld | firewalld running and enabled"]) == names
    restart = "Docker engine | Restart Docker (daemon.json changed or firewalld started: rebuild its chains)"
    assert sorted(changed[restart]) == names
    order = [op["name"] for op in runs["first"].results["operations"]]
    assert order.index("firewalld | firewalld running and enabled") < order.index(restart)


def test_second_run_changes_nothing_and_dry_plans_nothing(runs):
    assert runs["second"].changed == 0, runs["second"].changed_operations()
    assert runs["dry_again"].planned_changes() == {}


def test_zone_holds_exactly_the_tailscale_ranges(runs, lab_hosts):
    for host in lab_hosts:
        info = ssh(host, "firewall-cmd --info-zone=self-hosted").stdout
        fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in info.splitlines()[1:])}
        # the Docker subnet stays in Docker's own zone: as a source here it would cut the containers' egress
        assert fields["sources"].split() == ["100.64.0.0/10"]
        # the published ports, and sshd's own port (2222 here) for the tailnet: the ssh service is port 22
        assert fields["ports"].split() == ["80/tcp", "443/tcp", "81/tcp", "53/tcp", "53/udp", "2222/tcp"]
        assert fields["services"] == "ssh" and fields["forward"] == "no"
        assert ssh(host, "firewall-cmd --get-default-zone").stdout.strip() == "public"
        assert "ssh" in ssh(host, "firewall-cmd --zone=public --list-services").stdout.split()
        bridge = ssh(host, "docker network inspect self-hosted -f '{{.Id}}'").stdout.strip()[:12]
        assert f"br-{bridge}" in ssh(host, "firewall-cmd --zone=docker --list-interfaces").stdout.split()


def test_containers_on_the_network_reach_each_other_by_name(runs, lab_hosts):
    for host in lab_hosts:
        ssh(host, f"docker run -d --name probe-a --network self-hosted {IMAGE}")
        try:
            answer = ssh(
                host,
                "for i in $(seq 30); do docker run --rm --network self-hosted --entrypoint curl "
                f"{IMAGE} -fsS http://probe-a:11434/api/tags && break; sleep 1; done",
            )
            assert json.loads(answer.stdout.strip().splitlines()[-1]) == {"models": []}
        finally:
            ssh(host, "docker rm -f probe-a", check=False)


def test_ssh_still_reaches_every_host(runs, lab_hosts):
    for host in lab_hosts:
        assert ssh(host, "echo still-here").stdout == "still-here\n"


def test_a_zone_change_that_would_cut_the_session_is_refused(runs, lab_hosts):
    """A zone taking the deploy's own address as a source, admitting no SSH, would move the session
    there and cut it: the run stops before the change, naming the source and the port."""
    host = lab_hosts[0]
    client = ssh(host, "echo $SSH_CONNECTION").stdout.split()[0]
    result = run_pyinfra_cli("tests/lab/deploys/zone_taking_the_session.py", "--data", f"client={client}",
                             limit=f"{host['name']}", check=False)
    assert result.returncode != 0
    assert f"SSH from {client} to port 2222" in result.stdout + result.stderr, result.explain()
    assert "lab-guard" not in ssh(host, "firewall-cmd --get-zones").stdout.split()


def test_the_tailnet_zone_taking_the_sessions_address_keeps_its_path(runs, lab_hosts):
    """The deploy's own zone admits sshd's port (2222) as well as the ssh service: taking the session's
    address as a source moves the session there and keeps it."""
    host = lab_hosts[0]
    client = ssh(host, "echo $SSH_CONNECTION").stdout.split()[0]
    try:
        run_pyinfra_cli(INFRA, "--data", f"tailscale_allowed_ips=100.64.0.0/10,{client}/32",
                        limit=f"{host['name']}")
        assert ssh(host, "true", check=False).returncode == 0
    finally:
        run_pyinfra_cli(INFRA, limit=f"{host['name']}", check=False)
    assert ssh(host, "firewall-cmd --zone=self-hosted --list-sources").stdout.split() == ["100.64.0.0/10"]
