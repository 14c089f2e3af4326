"""Placement by inventory group: `core` gets NPM and Pi-hole, `gpu` gets the AI services."""

from deploys.library.context import placed_services
from deploys.library.settings import Service, load_settings

SETTINGS = load_settings(
    {
        "domain": "home.example.com",
        "tailscale_allowed_ips": "100.64.0.0/10",
        "pihole_password": "pihole-secret",
        "npm_admin_email": "admin@home.example.com",
        "npm_admin_password": "npm-secret-1",
    },
    env_file=None,
)
AI = [Service.OLLAMA, Service.COMFYUI, Service.OPEN_WEBUI]


def test_without_groups_every_enabled_service_goes_everywhere():
    assert placed_services(SETTINGS, ["lab_hosts"], uses_groups=False) == list(Service)


def test_core_and_gpu_groups_split_the_services():
    core = [Service.NGINX_PROXY_MANAGER, Service.PIHOLE]
    assert placed_services(SETTINGS, ["core"], uses_groups=True) == core
    assert placed_services(SETTINGS, ["gpu"], uses_groups=True) == AI
    assert placed_services(SETTINGS, ["core", "gpu"], uses_groups=True) == list(Service)
    assert placed_services(SETTINGS, ["storage"], uses_groups=True) == []


def test_settings_still_leave_services_out():
    settings = SETTINGS.model_copy(update={"services": [Service.OLLAMA, Service.PIHOLE]})
    assert placed_services(settings, ["gpu"], uses_groups=True) == [Service.OLLAMA]
    assert placed_services(settings, ["core"], uses_groups=True) == [Service.PIHOLE]
