"""Tag `networking`: Tailscale, the firewalld zone `self-hosted`, the published-ports guard and the
Docker network.

Needs Docker (deploys/docker.py) in place. Docker is restarted when firewalld was started or
the zone change reloaded it, so that Docker's own firewall chains are rebuilt.

    pyinfra inventories/home.py deploys/networking.py
"""

from deploys.library import context, infra_steps

ctx = context.current()
infra_steps.tailscale_node(ctx)
firewall = infra_steps.firewalld_running(ctx)
subnet = infra_steps.docker_subnet(ctx)
infra_steps.firewall_zone(ctx)
infra_steps.published_ports_guard(ctx, subnet)
infra_steps.restart_docker_if_changed(firewall)
infra_steps.network(ctx, subnet)
