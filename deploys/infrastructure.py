"""Tier 2, infrastructure: firewalld, Docker (+ NVIDIA), Tailscale, the zone, the network.

    pyinfra inventories/home.py deploys/infrastructure.py
"""

from deploys import context, infra

infra.infrastructure(context.current())
