"""Tier 2, infrastructure: firewalld, Docker (+ NVIDIA), Tailscale, the zone, the network.

    pyinfra inventories/home.py deploys/infrastructure.py
"""

from deploys.library import context, infra_steps

infra_steps.infrastructure(context.current())
