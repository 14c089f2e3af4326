"""Tier 2, infrastructure: firewalld, Docker (+ NVIDIA), Tailscale, the zone, the network.

    pyinfra inventories/home.py deploys/infrastructure.py
"""

from deploys import context, infra

ctx = context.current()
firewall = infra.firewalld_running(ctx)
infra.nvidia_toolkit(ctx)
infra.tailscale_node(ctx)
subnet = infra.docker_subnet(ctx)
zone = infra.firewall_zone(ctx, subnet)
# one restart at most: after daemon.json changed, firewalld started, or the zone reloaded it
infra.docker_engine(ctx, firewall_changed=(firewall, zone))
infra.network(ctx, subnet)
