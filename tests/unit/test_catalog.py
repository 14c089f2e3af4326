"""The service catalog and the compose documents rendered from it and a host's plan."""

import yaml

from deploys.library.catalog import CATALOG, Service
from deploys.library.compose_files import compose_document, env_file, render_compose
from tests.planning import WITHOUT_GPU, one_host

GPU = one_host()
CPU = one_host(gpu=WITHOUT_GPU)
SETTINGS = GPU.settings


def service_of(service, plan=GPU):
    return compose_document(plan, service)["services"][service]


def test_every_service_keeps_the_original_container_name():
    for service in Service:
        assert service_of(service)["container_name"] == service.value


def test_only_npm_and_pihole_publish_and_only_on_the_tailscale_ip():
    published = {s: service_of(s).get("ports", []) for s in Service}
    assert published[Service.NGINX_PROXY_MANAGER] == [
        "100.64.0.10:80:80/tcp",
        "100.64.0.10:443:443/tcp",
        "100.64.0.10:81:81/tcp",
    ]
    assert published[Service.PIHOLE] == ["100.64.0.10:53:53/tcp", "100.64.0.10:53:53/udp"]
    for service in (Service.OLLAMA, Service.COMFYUI, Service.OPEN_WEBUI):
        assert published[service] == []
    for service in Service:
        text = render_compose(GPU, service)
        assert "0.0.0.0" not in text


def test_open_webui_listens_on_8080_and_finds_ollama():
    item = service_of(Service.OPEN_WEBUI)
    assert CATALOG[Service.OPEN_WEBUI].upstream_port == 8080
    assert item["environment"]["OLLAMA_BASE_URL"] == "http://ollama:11434"
    assert "8080" in " ".join(item["healthcheck"]["test"])


def test_gpu_reservation_only_for_gpu_services_on_gpu_hosts():
    for service in Service:
        reserved = "deploy" in service_of(service, GPU)
        assert reserved == CATALOG[service].gpu
        assert "deploy" not in service_of(service, CPU)
    devices = service_of(Service.OLLAMA)["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert service_of(Service.COMFYUI, CPU)["environment"]["CLI_ARGS"] == "--cpu"


def test_data_lives_under_cold_storage_in_the_documented_layout():
    mounts = {s: service_of(s)["volumes"] for s in Service}
    assert mounts[Service.NGINX_PROXY_MANAGER] == [
        "/srv/cold/services/nginx-proxy/data:/data",
        "/srv/cold/services/nginx-proxy/certificates/letsencrypt:/etc/letsencrypt",
    ]
    assert mounts[Service.OLLAMA] == ["/srv/cold/ai/ollama/models:/root/.ollama/models"]
    assert mounts[Service.OPEN_WEBUI] == ["/srv/cold/ai/open-webui/data:/app/backend/data"]
    assert {m.split(":")[0].removeprefix("/srv/cold/") for m in mounts[Service.COMFYUI]} == {
        "ai/comfyui/data",
        "ai/comfyui/models",
        "ai/comfyui/output",
        "ai/comfyui/input",
    }
    # the original mounted one Pi-hole folder at two paths: every source is distinct now
    sources = [m.split(":")[0] for m in mounts[Service.PIHOLE]]
    assert len(sources) == len(set(sources))


def test_secrets_only_in_env_file_never_in_the_compose_document():
    for service in Service:
        text = render_compose(GPU, service)
        for secret in ("pihole-secret-value", "npm-secret-value", "webui-secret-value"):
            assert secret not in text
    assert service_of(Service.PIHOLE)["environment"]["FTLCONF_webserver_api_password"] == "${PIHOLE_PASSWORD}"
    assert env_file(GPU, Service.PIHOLE) == {"PIHOLE_PASSWORD": "pihole-secret-value"}
    assert env_file(GPU, Service.OPEN_WEBUI) == {"WEBUI_SECRET_KEY": "webui-secret-value"}
    assert env_file(GPU, Service.NGINX_PROXY_MANAGER) == {}
    # NPM's first admin is made through the API: no INITIAL_ADMIN_* in the container
    assert not any("INITIAL_ADMIN" in key for key in service_of(Service.NGINX_PROXY_MANAGER)["environment"])


def test_generated_webui_secret_comes_from_a_host_file():
    item = service_of(Service.OPEN_WEBUI, one_host(open_webui_secret_key=None))
    assert item["env_file"] == ["webui-secret.env"]
    assert "WEBUI_SECRET_KEY" not in item["environment"]


def test_pihole_v6_environment():
    env = service_of(Service.PIHOLE)["environment"]
    assert env["FTLCONF_dns_upstreams"] == "1.1.1.1;1.0.0.1"
    assert env["FTLCONF_dns_listeningMode"] == "all"
    assert "FTLCONF_dns_hosts" not in env  # would lock the local DNS list


def test_images_pinned_from_settings_and_rendering_is_stable():
    assert service_of(Service.OLLAMA)["image"] == SETTINGS.image_ollama
    first = render_compose(GPU, Service.COMFYUI)
    assert first == render_compose(GPU, Service.COMFYUI)
    document = yaml.safe_load(first)
    assert document["networks"] == {"self-hosted": {"external": True}}
    assert document["services"]["comfyui"]["pull_policy"] == "missing"
