"""A sixth service is a declaration: the toy (tests/toy_service.py) is placed, published, proxied,
resolved and rendered by the same code as the five, with no other change."""

import pytest
import yaml

from deploys.library.compose_files import render_compose
from deploys.library.plan import plan_host
from tests import toy_service
from tests.planning import WITH_GPU, inventory, settings


@pytest.fixture
def toy():
    toy_service.register()
    yield toy_service.TOY
    toy_service.unregister()


def test_the_toy_is_a_setting_and_a_default_service(toy):
    assert "toy" in settings().services
    assert settings(services="toy,pihole").services == ["pihole", "toy"]
    assert settings(image_ollama="ollama/ollama:0.12.6").image_for("toy") == toy.image


def test_without_the_declaration_the_toy_is_refused():
    with pytest.raises(Exception, match="unknown service"):
        settings(services="toy")


def test_the_toy_is_deployed_proxied_and_resolved_on_one_host(toy):
    plans = inventory(("server", (), settings()), addresses={"server": "100.64.0.10"})
    plan = plan_host(plans, "server", tailscale_ip="100.64.0.10", gpu=WITH_GPU)
    assert "toy" in plan.services
    routes = [(r.domain, r.forward_host, r.forward_port) for r in plan.routes]
    assert ("toy.home.example.com", "toy", 8080) in routes
    assert plan.dns_records["toy.home.example.com"] == "100.64.0.10"
    document = yaml.safe_load(render_compose(plan, "toy"))
    container = document["services"]["toy"]
    assert container["container_name"] == "toy"
    assert container["image"] == toy.image
    assert container["volumes"] == ["/srv/cold/ai/toy/data:/app/backend/data"]
    assert container["networks"] == ["self-hosted"] and "ports" not in container


def test_behind_a_remote_proxy_the_toy_publishes_its_upstream_port_and_is_routed_there(toy):
    s = settings()
    plans = inventory(("core-host", ("core",), s), ("gpu-host", ("gpu",), s),
                      addresses={"core-host": "100.64.0.1", "gpu-host": "100.64.0.2"})
    gpu = plan_host(plans, "gpu-host", tailscale_ip="100.64.0.2", gpu=WITH_GPU)
    assert [str(p.port) for p in gpu.published if p.service == "toy"] == ["8080/tcp"]
    assert "8080/tcp" in gpu.zone.ports
    core = plan_host(plans, "core-host", tailscale_ip="100.64.0.1", gpu=WITH_GPU)
    assert "toy" in core.absent
    assert ("toy.home.example.com", "100.64.0.2", 8080) in [
        (r.domain, r.forward_host, r.forward_port) for r in core.routes
    ]
    assert core.dns_records["toy.home.example.com"] == "100.64.0.1"


def test_the_settings_load_with_the_toy_declared_before_them():
    """As the lab's toy inventory does: the declaration comes first, then the settings module."""
    import subprocess
    import sys

    code = ("from tests.toy_service import register; register(); "
            "from deploys.library.settings import load_settings; "
            "print(load_settings({'domain': 'home.example.com', 'tailscale_allowed_ips': '100.64.0.0/10', "
            "'services': 'toy'}, env_file=None).image_for('toy'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "registry.world.lab.test/open-webui/open-webui:v0.6.34"
