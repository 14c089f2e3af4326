"""Tier 2, proxy and DNS: NGINX Proxy Manager proxy hosts and Pi-hole local DNS records.

On the host running NGINX Proxy Manager: its admin account, then one proxy host per enabled
service with a subdomain (chat, ollama, comfy, hole). A service on another inventory host is
reached on that host's Tailscale IP. On the host running Pi-hole: each subdomain resolves to the
proxy host's Tailscale IP. A subdomain whose service no host runs any more (taken out of
HOMELAB_SERVICES, or placed on no host) is retired: its proxy host (only one this deploy made) and its
DNS record are removed. Both APIs are reached through an SSH tunnel to the host.

    pyinfra inventories/home.py deploys/proxy.py
"""

from deploys.library import context, proxy_steps

proxy_steps.proxy_and_dns(context.current())
