"""Tier 2, everything in the original's order: infrastructure, core services, AI services, proxy.

    pyinfra inventories/home.py deploys/server.py          # deploy
    pyinfra inventories/home.py deploys/server.py --dry    # preview what would change
"""

from deploys import context, infra, proxy_steps, svc
from deploys.settings import Service

ctx = context.current()

infra.infrastructure(ctx)  # deploys/infrastructure.py

# services (deploys/services.py, deploys/ai.py)
svc.deploy_services(ctx, [Service.NGINX_PROXY_MANAGER, Service.PIHOLE])
svc.deploy_services(ctx, [Service.OLLAMA, Service.COMFYUI, Service.OPEN_WEBUI])

# proxy hosts and local DNS (deploys/proxy.py)
proxy_steps.proxy_and_dns(ctx)
