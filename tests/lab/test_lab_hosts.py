"""A lab host is a real host: SSH, systemd, firewalld, Docker, compose v2, tailscale0, and the lab
registry's CA and name (the registry itself: test_lab_registry.py)."""

from __future__ import annotations

import pytest

from lab import state
from lab.data import LAB_REGISTRY


@pytest.fixture(params=[0, 1], ids=["host1", "host2"])
def host(request, lab_hosts):
    if request.param >= len(lab_hosts):
        pytest.skip("fewer lab hosts")
    return lab_hosts[request.param]


def test_ssh_reaches_the_host(host, lab_ssh):
    assert lab_ssh(host, "hostname").stdout.strip() == host["name"]


def test_systemd_booted(host, lab_ssh):
    state = lab_ssh(host, "systemctl is-system-running", check=False).stdout.strip()
    if state != "running":
        failed = lab_ssh(host, "systemctl --failed --no-legend --plain", check=False).stdout
        assert state == "degraded", f"systemd is {state!r}"
        pytest.fail(f"systemd is degraded (undocumented): {failed}")


def test_firewalld_installed(host, lab_ssh):
    assert lab_ssh(host, "dpkg-query -W -f '${Status}' firewalld").stdout == "install ok installed"
    assert lab_ssh(host, "command -v firewall-cmd").returncode == 0


def test_docker_active_with_compose_v2(host, lab_ssh):
    assert lab_ssh(host, "systemctl is-active docker").stdout.strip() == "active"
    assert lab_ssh(host, "docker compose version --short").stdout.strip().startswith("2.")


def test_tailscale0_standin_holds_the_address(host, lab_ssh):
    out = lab_ssh(host, "ip -4 -o addr show dev tailscale0").stdout
    assert f"inet {host['tailscale_ip']}/32" in out


def test_cold_storage_writable(host, lab_ssh):
    lab_ssh(host, "touch /cold-storage/.lab-probe && rm /cold-storage/.lab-probe")


def test_the_host_trusts_the_lab_registry_and_resolves_its_name(host, lab_ssh):
    ca = lab_ssh(host, f"cat /etc/docker/certs.d/{LAB_REGISTRY}/ca.crt").stdout
    assert ca == (state.REGISTRY_DIR / "ca.crt").read_text()
    resolved = lab_ssh(host, f"getent ahostsv4 {LAB_REGISTRY}").stdout.split()
    assert resolved[0] == state.load_world()["address"]


def test_pyinfra_exec_reaches_every_host(run_pyinfra, lab_hosts):
    result = run_pyinfra("exec", "--", "uname", "-n")
    (op,) = result.results["operations"]
    assert sorted(op["success"]) == sorted(f"{h['name']}" for h in lab_hosts)
