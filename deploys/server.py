"""Tier 2, everything in the original's order: infrastructure, core services, AI services, proxy.

    pyinfra inventories/home.py deploys/server.py          # deploy
    pyinfra inventories/home.py deploys/server.py --dry    # preview what would change
"""

from deploys.library import context, infra_steps, proxy_steps, service_steps
from deploys.library.settings import Service

ctx = context.current()

infra_steps.infrastructure(ctx)  # deploys/infrastructure.py

# services (deploys/services.py, deploys/ai.py)
service_steps.deploy_services(ctx, [Service.NGINX_PROXY_MANAGER, Service.PIHOLE])
service_steps.deploy_services(ctx, [Service.OLLAMA, Service.COMFYUI, Service.OPEN_WEBUI])

# proxy hosts and local DNS (deploys/proxy.py)
proxy_steps.proxy_and_dns(ctx)
