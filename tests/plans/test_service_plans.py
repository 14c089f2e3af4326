"""Service placement decided by the deploy layer, planned against a `@fake` host: the addresses the
ports bind to and the AI services left out on a host without a GPU when told to."""

from __future__ import annotations

from harness import DEBIAN_12, plan


def debian():
    return {"ls -pdL *-release": DEBIAN_12, "uname -m": "x86_64",
            "SSH_CONNECTION": "192.0.2.9 40000 192.0.2.1 22"}


def _compose(ops: dict[str, list[str]], service: str) -> str:
    (body,) = [c for c in ops[f"Compose services | {service}: compose project"] if "compose.yaml:" in c]
    return body


def test_host_ports_bind_the_tailscale_ip_and_nothing_else():
    ops = plan("deploys/services.py", debian())
    npm, pihole = _compose(ops, "nginx-proxy-manager"), _compose(ops, "pihole")
    for port in ("80:80/tcp", "443:443/tcp", "81:81/tcp"):
        assert f"100.101.102.103:{port}" in npm
    assert "100.101.102.103:53:53/tcp" in pihole and "100.101.102.103:53:53/udp" in pihole
    assert "0.0.0.0" not in npm + pihole


def test_ai_services_left_out_without_a_gpu_when_told_to_skip():
    skipped = plan("deploys/ai.py", debian(), {"ai_without_gpu": "skip"})
    assert not any("compose project" in name for name in skipped), list(skipped)
    on_cpu = plan("deploys/ai.py", debian(), {"ai_without_gpu": "cpu"})
    for service in ("ollama", "comfyui", "open-webui"):
        assert f"Compose services | {service}: compose project" in on_cpu
