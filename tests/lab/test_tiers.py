"""Tier 1 (deploys/validate.py) and tier 3 (tests/verify) against the lab, as a user runs them.

Preflight: no FAIL on the lab hosts (WARNs are expected: no GPU there), and a broken setting stops
the run before any host is contacted. Verification: all pass after a full deploy, and a deliberate
breakage (one container stopped; one host port published on 0.0.0.0) fails exactly the test for
that property. Every breakage is undone in a `finally`, and the deploy then reports zero changes.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from labkit import ROOT, run_pyinfra_cli, ssh, verify

PYTHON = ROOT / ".venv" / "bin" / "python"
SERVER = "deploys/server.py"
VALIDATE = "deploys/validate.py"


@pytest.fixture(scope="module")
def deployed(lab_hosts):
    """The last lab host with the full stack (a no-change run when it is deployed already)."""
    host = lab_hosts[-1]
    run_pyinfra_cli(SERVER, limit=f"{host['name']}")
    return host


def run_verify(host: dict, tmp_path: Path) -> tuple[int, set[str], int, str]:
    """`pytest tests/verify --inventory inventories/lab.py --limit NAME` -> (exit, failed, passed, output)."""
    return verify(host["name"], tmp_path)


def wait_healthy(host: dict, container: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while True:
        state = ssh(host, f"docker inspect -f '{{{{.State.Health.Status}}}}' {container}", check=False)
        if state.stdout.strip() == "healthy":
            return
        assert time.monotonic() < deadline, f"{container} not healthy after {timeout}s: {state.stdout}"
        time.sleep(2)


def assert_no_changes(name: str) -> None:
    """The deploy finds the host as it left it: zero changed operations."""
    again = run_pyinfra_cli(SERVER, limit=f"{name}")
    assert again.changed == 0, again.changed_operations()


# -- tier 1 ------------------------------------------------------------------------------------
def test_validate_lab_hosts_warn_but_do_not_fail(lab_hosts):
    result = run_pyinfra_cli(VALIDATE, check=False)
    output = result.stderr
    assert result.returncode == 0, result.explain()
    for host in lab_hosts:
        assert f"Preflight for {host['name']}" in output
    assert "FAIL" not in output.replace("0 FAIL", ""), output
    assert "gpu           WARN    no NVIDIA GPU found: ollama, comfyui will run on the CPU" in output
    assert "tailscale     PASS    managed elsewhere" in output
    assert result.results is not None and result.results["operations"] == []  # nothing to change


def test_validate_with_a_broken_setting_fails_before_contacting_any_host(lab_hosts):
    result = run_pyinfra_cli(VALIDATE, "--data", "domain=BAD", check=False)
    assert result.returncode != 0
    assert "HOMELAB_DOMAIN" in result.stderr and "'BAD' is not valid" in result.stderr
    for host in lab_hosts:
        assert f"[{host['name']}] not contacted: invalid settings" in result.stderr
    assert "Connected" not in result.stderr and "Preflight for" not in result.stderr


def test_validate_fails_on_a_taken_port(deployed, lab_hosts):
    """Another program holding a host port is a FAIL, and the run exits non-zero.

    Pi-hole is stopped for the test (its stand-in keeps its records on disk, like the real image),
    a Python listener takes 53/tcp on the Tailscale IP, and Pi-hole is started again afterwards."""
    name, address = deployed["name"], deployed["tailscale_ip"]
    ssh(deployed, "docker stop pihole")
    holder = None
    try:
        holder = ssh(
            deployed,
            "nohup timeout 60 python3 -c 'import socket,time; s=socket.socket(); "
            f's.bind(("{address}", 53)); s.listen(); time.sleep(60)\' >/dev/null 2>&1 & echo $!',
        )
        time.sleep(0.5)
        result = run_pyinfra_cli(VALIDATE, limit=f"{name}", check=False)
        assert result.returncode != 0
        assert re.search(rf"port 53/tcp +FAIL +in use by python3 on {re.escape(address)}", result.stderr), (
            result.stderr
        )
        assert "preflight FAILED on " + name in result.stderr
    finally:
        if holder is not None:
            ssh(deployed, f"kill {holder.stdout.strip()} 2>/dev/null; true", check=False)
        ssh(deployed, "docker start pihole")
        wait_healthy(deployed, "pihole")
    assert_no_changes(name)


# -- tier 3 ------------------------------------------------------------------------------------
def test_verify_after_full_deploy_all_pass(deployed, tmp_path):
    code, failed, passed, output = run_verify(deployed, tmp_path)
    assert (code, failed) == (0, set()), output
    assert passed >= 40, output


def test_verify_with_a_stopped_container_fails_exactly_that(deployed, tmp_path):
    name = deployed["name"]
    ssh(deployed, "docker stop comfyui")
    try:
        code, failed, _, output = run_verify(deployed, tmp_path)
    finally:
        ssh(deployed, "docker start comfyui")
        wait_healthy(deployed, "comfyui")
    assert code == 1, output
    assert failed == {f"test_container_running_and_healthy[{name}-comfyui]"}, output
    assert_no_changes(name)


def test_verify_with_a_port_on_all_addresses_fails_exactly_that(deployed, tmp_path):
    """Pi-hole's 53/tcp published on 0.0.0.0 instead of the Tailscale IP (compose file edited by hand).

    Pi-hole, not NGINX Proxy Manager: the lab's NPM stand-in forgets its admin and proxy hosts when
    its container is recreated (the real image keeps them in /data), so the deploy afterwards would
    have work to do; the Pi-hole stand-in keeps its records under /etc/pihole like the real one."""
    name, address = deployed["name"], deployed["tailscale_ip"]
    project = "/opt/homelab/pihole"
    up = f"docker compose --project-directory {project} up -d --wait"
    ssh(deployed, f"cp {project}/compose.yaml /root/pihole-compose.yaml.orig")
    try:
        ssh(deployed, f"sed -i 's|{address}:53:53/tcp|0.0.0.0:53:53/tcp|' {project}/compose.yaml && {up}")
        assert "0.0.0.0:53" in ssh(deployed, "ss -Hltn 'sport = :53'").stdout
        code, failed, _, output = run_verify(deployed, tmp_path)
    finally:
        ssh(
            deployed,
            f"cp /root/pihole-compose.yaml.orig {project}/compose.yaml && {up} && "
            "rm /root/pihole-compose.yaml.orig",
        )
        wait_healthy(deployed, "pihole")
    assert code == 1, output
    # the port is not on the Tailscale IP only, and something other than sshd listens on every interface
    assert failed == {f"test_host_port_on_tailscale_ip_only[{name}-53-tcp]",
                      f"test_nothing_listens_on_every_interface_but_sshd[{name}]"}, output
    assert_no_changes(name)
