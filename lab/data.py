"""Settings that make a deploy work against the lab hosts: LAB-ONLY values, never used elsewhere."""

# Settings for the lab (names as in the settings model, lower-case, no prefix). LAB-ONLY values.
LAB_DATA = {
    "domain": "lab.home.arpa",
    "tailscale_allowed_ips": "100.64.0.0/10",
    "tailscale_install": False,  # tailscaled cannot be installed here: tailscale0 is a stand-in
    "cold_storage_path": "/cold-storage",
    "min_free_disk_gb": 1,
    "docker_source": "distro",
    "pull_policy": "never",  # no registry: the stand-in images are loaded by `python -m lab up`
    "pihole_password": "lab-only-pihole-password",
    "npm_admin_email": "admin@lab.home.arpa",
    "npm_admin_password": "lab-only-npm-password",
    "open_webui_admin_email": "admin@lab.home.arpa",
    "open_webui_admin_password": "lab-only-webui-password",
    "open_webui_secret_key": "lab-only-open-webui-secret-key",
    # LAB STAND-IN images (lab/images/standin); the real image references stay the defaults
    "image_nginx_proxy_manager": "homelab-lab/standin-nginx-proxy-manager:lab",
    "image_pihole": "homelab-lab/standin-pihole:lab",
    "image_ollama": "homelab-lab/standin-ollama:lab",
    "image_comfyui": "homelab-lab/standin-comfyui:lab",
    "image_open_webui": "homelab-lab/standin-open-webui:lab",
}
