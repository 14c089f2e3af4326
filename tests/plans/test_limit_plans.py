"""Resource limits planned against a `@fake` host: the host's memory and CPUs (facts.host.HostResources)
size the AI services' share in the compose files, and the preflight FAILs a limit above the host."""

from __future__ import annotations

import pytest
from harness import DEBIAN_12, plan

from deploys.library.context import DeployError

S = "### pyinfra-section "


def debian(memory_kib: int = 33554432, cpus: int = 16) -> dict:
    return {"ls -pdL *-release": DEBIAN_12, "uname -m": "x86_64",
            "SSH_CONNECTION": "192.0.2.9 40000 192.0.2.1 22",
            "/proc/meminfo": [f"MemTotal:       {memory_kib} kB", str(cpus)]}


def _compose(ops: dict[str, list[str]], service: str) -> str:
    (body,) = [c for c in ops[f"Compose services | {service}: compose project"] if "compose.yaml:" in c]
    return body


def test_the_ai_share_is_of_the_host_the_deploy_reads():
    ops = plan("deploys/ai.py", debian(memory_kib=64 * 2**20, cpus=8), {"limits": "open-webui=:50%"})
    assert "    mem_limit: 25g\n    memswap_limit: 25g\n" in _compose(ops, "ollama")  # 40% of 64 GiB
    webui = _compose(ops, "open-webui")
    assert "    mem_limit: 2g\n    memswap_limit: 2g\n    cpus: 4.0\n" in webui


def test_a_second_plan_renders_the_same_files():
    for deploy, services in (("deploys/services.py", ("nginx-proxy-manager", "pihole")),
                             ("deploys/ai.py", ("ollama", "comfyui", "open-webui"))):
        first, again = plan(deploy, debian()), plan(deploy, debian())
        for service in services:
            assert "mem_limit: " in _compose(first, service)
            assert _compose(first, service) == _compose(again, service)


def test_preflight_passes_the_defaults_on_the_host(capsys):
    network = {S: [S + "tailscale", S + "addresses",
                   "13: tailscale0    inet 100.101.102.103/32 scope global tailscale0", S + "routes"]}
    assert plan("deploys/validate.py", {**debian(), **network}) == {}
    table = capsys.readouterr().err
    assert "PASS    the memory limits add up to 27.5 GiB of the host's 32.0 GiB" in table


def test_preflight_fails_a_limit_above_the_host_and_warns_on_the_sum(capsys):
    with pytest.raises(DeployError, match="preflight FAILED on @fake/server"):
        plan("deploys/validate.py", debian(memory_kib=8 * 2**20, cpus=2), {"limits": "ollama=12g"})
    table = capsys.readouterr().err
    assert ("FAIL    ollama: memory limit 12g (HOMELAB_LIMITS) is above the host's 8.0 GiB of memory; "
            "lower it with HOMELAB_LIMITS=ollama=… (or none to lift it)") in table
    plan("deploys/validate.py", debian(memory_kib=8 * 2**20, cpus=2))
    table = capsys.readouterr().err
    assert "WARN    the memory limits add up to 9.5 GiB, more than the host's 8.0 GiB of memory" in table
