"""An example home server inventory: copy it, put your own addresses in, keep secrets in `.env`.

Hosts use the `@homelab/` connector (pyinfra's SSH, plus settings validated before any host is
contacted and TCP_NODELAY on every connection). Host and group data use the setting names
lower-case without the `HOMELAB_` prefix (see README: Configuration).

Placement by group: with groups named `core` and `gpu`, NGINX Proxy Manager and Pi-hole deploy
to the `core` hosts and Ollama, ComfyUI and Open WebUI to the `gpu` hosts. An inventory without
those groups (a single server) gets every enabled service on every host.
"""

# One server that does everything (the common case): it is in both groups.
core = [
    (
        "@homelab/homelab.local",
        {
            "ssh_user": "admin",
            "_sudo": True,
            # per-host overrides, e.g. "tailscale_hostname": "homelab",
        },
    ),
]

gpu = [
    "@homelab/homelab.local",
]

# A second GPU box would be added to `gpu` only:
# gpu = ["@homelab/homelab.local", ("@homelab/gpu-2.local", {"ssh_user": "admin", "_sudo": True})]
