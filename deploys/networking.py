"""Tag `networking`: Tailscale, the firewalld zone `self-hosted`, the published-ports guard and the
Docker network.

Needs Docker (deploys/docker.py) in place. Docker is restarted when firewalld was started or
the zone change reloaded it, so that Docker's own firewall chains are rebuilt.

    pyinfra inventories/home.py deploys/networking.py
"""

from deploys import context, infra

ctx = context.current()
infra.tailscale_node(ctx)
firewall = infra.firewalld_running(ctx)
subnet = infra.docker_subnet(ctx)
infra.firewall_zone(ctx)
infra.published_ports_guard(ctx, subnet)
infra.restart_docker_if_changed(firewall)
infra.network(ctx, subnet)
