"""Settings that make a deploy work against the lab hosts: LAB-ONLY values, never used elsewhere.

The lab deploys pull for real, from the lab's own image registry (Debian's `docker-registry`, the
Distribution registry, run by the world stand-in, lab/world.py) under the LAB-ONLY name
`registry.world.lab.test`. It holds the LAB STAND-IN service images (lab/images/standin) under the
same repository paths and tags as the real defaults, which stay the defaults everywhere else.
"""

# the lab registry's name: a LAB-ONLY name that each lab host resolves through /etc/hosts and whose
# TLS certificate it trusts from /etc/docker/certs.d/<name>/ca.crt (both written by `python -m lab up`)
LAB_REGISTRY = "registry.world.lab.test"

# service role -> the stand-in's reference in the lab registry: the real default's repository path and
# tag, without a registry host (ghcr.io/open-webui/open-webui as open-webui/open-webui)
LAB_IMAGES = {
    "nginx-proxy-manager": f"{LAB_REGISTRY}/jc21/nginx-proxy-manager:2.15.1",
    "pihole": f"{LAB_REGISTRY}/pihole/pihole:2025.08.0",
    "ollama": f"{LAB_REGISTRY}/ollama/ollama:0.12.6",
    "comfyui": f"{LAB_REGISTRY}/yanwk/comfyui-boot:cu128-slim",
    "open-webui": f"{LAB_REGISTRY}/open-webui/open-webui:v0.6.34",
    # the monitoring stack (lab/images/monitoring; gcr.io's and nvcr.io's paths without the host)
    "prometheus": f"{LAB_REGISTRY}/prom/prometheus:v2.55.1",
    "alertmanager": f"{LAB_REGISTRY}/prom/alertmanager:v0.28.1",
    "blackbox-exporter": f"{LAB_REGISTRY}/prom/blackbox-exporter:v0.27.0",
    "grafana": f"{LAB_REGISTRY}/grafana/grafana:12.2.1",
    "node-exporter": f"{LAB_REGISTRY}/prom/node-exporter:v1.9.1",
    "cadvisor": f"{LAB_REGISTRY}/cadvisor/cadvisor:v0.52.1",
    "dcgm-exporter": f"{LAB_REGISTRY}/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04",
}

# further Ollama versions in the lab registry, for the update tests (the same stand-in): another
# healthy version with its own digest, and one whose health check (`ollama list`) fails. Ollama's: the
# shortest start period of the catalog's health checks (60 s) before Docker may call a failing one
# unhealthy (ComfyUI's is 180 s)
OLLAMA_LAB_V2 = f"{LAB_REGISTRY}/ollama/ollama:lab-v2"
OLLAMA_LAB_V3_UNHEALTHY = f"{LAB_REGISTRY}/ollama/ollama:lab-v3-unhealthy"

# Settings for the lab (names as in the settings model, lower-case, no prefix). LAB-ONLY values.
# No pull_policy: the default (`missing`) applies, and the first deploy pulls every image.
LAB_DATA = {
    "domain": "lab.home.arpa",
    "tailscale_allowed_ips": "100.64.0.0/10",
    "tailscale_install": False,  # tailscaled cannot be installed here: tailscale0 is a stand-in
    "cold_storage_path": "/cold-storage",
    "min_free_disk_gb": 1,
    "docker_source": "distro",
    "pihole_password": "lab-only-pihole-password",
    "npm_admin_email": "admin@lab.home.arpa",
    "npm_admin_password": "lab-only-npm-password",
    "open_webui_admin_email": "admin@lab.home.arpa",
    "open_webui_admin_password": "lab-only-webui-password",
    "open_webui_secret_key": "lab-only-open-webui-secret-key",
    # the lab's own plumbing (lab/hosts.py, the tests' checks) logs in as root with the lab key, so
    # root keeps key logins here; the default for a deploy through a sudo login is `no`
    "ssh_root_login": "prohibit-password",
    # LAB STAND-IN images, from the lab registry; the real image references stay the defaults
    "image_nginx_proxy_manager": LAB_IMAGES["nginx-proxy-manager"],
    "image_pihole": LAB_IMAGES["pihole"],
    "image_ollama": LAB_IMAGES["ollama"],
    "image_comfyui": LAB_IMAGES["comfyui"],
    "image_open_webui": LAB_IMAGES["open-webui"],
    **{f"image_{service.replace('-', '_')}": LAB_IMAGES[service] for service in (
        "prometheus", "alertmanager", "blackbox-exporter", "grafana", "node-exporter", "cadvisor",
        "dcgm-exporter",
    )},
}

# LAB_MONITORING=on (inventories/lab.py): the monitoring set with timings short enough that an alert
# fires and resolves within a test (a container stopped is noticed by the next homelab-metrics run, 15 s,
# the next scrape, and 10 s of the condition holding). LAB-ONLY values.
LAB_MONITORING_DATA = {
    "monitoring": True,
    "grafana_admin_password": "lab-only-grafana-password",
    "monitoring_scrape_interval": "5s",
    "monitoring_alert_for": "10s",
    "monitoring_group_wait": "5s",
    "monitoring_group_interval": "10s",
    "monitoring_repeat_interval": "1h",
}

# HTTPS by DNS-01 in the lab (LAB_TLS=dns in the lab inventory; lab/world.py): the world runs bind9,
# authoritative for the lab's domain on ACME_DNS_PORT, taking RFC 2136 updates signed with this TSIG key,
# and pebble, an ACME server on ACME_PORT that checks the challenges' TXT records at that bind9.
# LAB-ONLY key: it signs updates to a zone that exists only in the lab.
LAB_DOMAIN = LAB_DATA["domain"]
ACME_DNS_PORT = 5353
ACME_PORT = 14000
ACME_MANAGEMENT_PORT = 15000
TSIG_KEY_NAME = "homelab-lab-acme"
TSIG_ALGORITHM = "hmac-sha256"
TSIG_SECRET = "3cTS/5/e1Rkx2OpeV1ZzdqCpRM2O26aBuu20ZgibjVc="  # noqa: S105 - LAB ONLY


def rfc2136_credentials(server: str, secret: str = TSIG_SECRET) -> str:
    """certbot-dns-rfc2136's credentials file for the lab's bind9 at ``server`` (its lab address)."""
    return (
        f"dns_rfc2136_server = {server}\n"
        f"dns_rfc2136_port = {ACME_DNS_PORT}\n"
        f"dns_rfc2136_name = {TSIG_KEY_NAME}\n"
        f"dns_rfc2136_secret = {secret}\n"
        f"dns_rfc2136_algorithm = {TSIG_ALGORITHM.upper()}\n"
    )
