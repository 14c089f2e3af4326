"""Multi-host placement end to end: the two lab hosts as the inventory groups `core` and `gpu`
(`LAB_GROUPS=core,gpu`, inventories/lab.py) over the simulated tailnet.

From the one-host-everything layout the other lab tests leave (made here when missing), a deploy with
the groups *moves* the services: NGINX Proxy Manager and Pi-hole stay on `core` (homelab-lab-1) and the
AI services leave it, their containers taken down and their data left in place; the AI services stay on
`gpu` (homelab-lab-2), which loses NPM and Pi-hole and publishes exactly the AI services' upstream
ports on its Tailscale address. The proxy on `core` forwards chat/ollama/comfy to the `gpu` host, Pi-hole
on `core` answers every subdomain with `core`'s address, a request through the proxy reaches the service
on the other host, a second run changes nothing, and tier 3 passes on both hosts.

This module re-places services on the shared lab hosts: the lab conftest runs it last.
"""

from __future__ import annotations

import json

import pytest
from labkit import npm_api, run_pyinfra_cli, ssh, verify

from lab.data import LAB_DATA

SERVER = "deploys/server.py"
DOMAIN = LAB_DATA["domain"]
CORE_SERVICES = ["nginx-proxy-manager", "pihole"]
AI_SERVICES = ["ollama", "comfyui", "open-webui"]
MARK = "/cold-storage/ai/ollama/models/placed-before.txt"


def _containers(host) -> list[str]:
    return sorted(ssh(host, "docker ps -a --format '{{.Names}}'").stdout.split())


def _zone_ports(host) -> list[str]:
    return sorted(ssh(host, "firewall-cmd --zone=self-hosted --list-ports").stdout.split())


@pytest.fixture(scope="module")
def placed(lab_hosts):
    if len(lab_hosts) < 2:
        pytest.skip("needs two lab hosts")
    core, gpu = lab_hosts[0], lab_hosts[1]
    names = f"{core['name']},{gpu['name']}"
    # one group per lab host (LAB_GROUPS): hosts beyond the first two, if the lab has them, are `spare`
    # (no service is placed there, and the runs are limited to the two)
    groups = {"LAB_GROUPS": ",".join(["core", "gpu"] + ["spare"] * (len(lab_hosts) - 2))}
    # the layout without groups (every service on both hosts): a no-change run when it is there already
    run_pyinfra_cli(SERVER, limit=names, timeout=1500)
    ssh(core, f"echo kept > {MARK}")
    moved = run_pyinfra_cli(SERVER, limit=names, env=groups, timeout=1500)
    again = run_pyinfra_cli(SERVER, limit=names, env=groups)
    return core, gpu, moved, again, groups


def test_services_move_to_their_groups_hosts_and_their_data_stays(placed):
    """(Checked on the hosts: pyinfra shows an operation run on several hosts under one host's name.)"""
    core, gpu, moved, _, _ = placed
    assert moved.changed > 0
    assert _containers(core) == sorted(CORE_SERVICES)
    assert _containers(gpu) == sorted(AI_SERVICES)
    assert ssh(core, f"cat {MARK}").stdout == "kept\n"
    # what was taken down keeps its project files, so placing it back brings it up on the same data
    assert ssh(core, "test -f /opt/homelab/ollama/compose.yaml", check=False).returncode == 0
    assert ssh(gpu, "test -d /cold-storage/services/nginx-proxy/data", check=False).returncode == 0


def test_the_second_run_changes_nothing(placed):
    _, _, _, again, _ = placed
    assert again.changed == 0, again.changed_operations()


def test_each_zone_opens_exactly_what_its_host_publishes(placed):
    core, gpu, _, _, _ = placed
    # the published ports, and sshd's own port (2222 in the lab) for the tailnet
    assert _zone_ports(core) == sorted(["80/tcp", "443/tcp", "81/tcp", "53/tcp", "53/udp", "2222/tcp"])
    assert _zone_ports(gpu) == sorted(["11434/tcp", "8188/tcp", "8080/tcp", "2222/tcp"])
    bound = ssh(gpu, "ss -Hltn | awk '{print $4}'").stdout.split()
    for port in ("11434", "8188", "8080"):
        assert [a for a in bound if a.endswith(f":{port}")] == [f"{gpu['tailscale_ip']}:{port}"]
    assert not [a for a in bound if a.rsplit(":", 1)[-1] in ("80", "443", "81", "53")]


def test_the_proxy_on_core_forwards_to_the_gpu_host(placed):
    core, gpu, _, _, _ = placed
    listed = json.loads(npm_api(core, "list"))
    hosts = {h["domain_names"][0]: (h["forward_host"], h["forward_port"]) for h in listed}
    subdomains = {f"{sub}.{DOMAIN}" for sub in ("chat", "ollama", "comfy", "hole")}
    assert {name: target for name, target in hosts.items() if name in subdomains} == {
        f"chat.{DOMAIN}": (gpu["tailscale_ip"], 8080),
        f"ollama.{DOMAIN}": (gpu["tailscale_ip"], 11434),
        f"comfy.{DOMAIN}": (gpu["tailscale_ip"], 8188),
        f"hole.{DOMAIN}": ("pihole", 80),
    }


def test_pihole_on_core_answers_every_subdomain_with_the_proxy(placed):
    core, _, _, _, _ = placed
    for sub in ("chat", "ollama", "comfy", "hole"):
        answer = ssh(core, f"docker exec pihole dig +short @{core['tailscale_ip']} {sub}.{DOMAIN}")
        assert answer.stdout.split() == [core["tailscale_ip"]], sub


def test_a_request_through_the_proxy_reaches_the_service_on_the_other_host(placed):
    core, gpu, _, _, _ = placed
    # from the gpu host as a tailnet client: the name resolves to core, core's proxy forwards back to gpu
    for client in (core, gpu):
        answer = ssh(client, f"curl -fsS --max-time 5 -H 'Host: chat.{DOMAIN}' http://{core['tailscale_ip']}/health")
        assert json.loads(answer.stdout) == {"status": True}, client["name"]
        tags = ssh(client, f"curl -fsS --max-time 5 -H 'Host: ollama.{DOMAIN}' "
                           f"http://{core['tailscale_ip']}/api/tags")
        assert json.loads(tags.stdout) == {"models": []}


def test_tier_3_passes_on_both_hosts(placed, tmp_path):
    core, gpu, _, _, groups = placed
    code, failed, _, output = verify(f"{core['name']},{gpu['name']}", tmp_path, env=groups)
    assert code == 0 and not failed, output
