"""Tier 2, core services: NGINX Proxy Manager and Pi-hole (on the `core` group's hosts).

    pyinfra inventories/home.py deploys/services.py
"""

from deploys.library import context, service_steps
from deploys.library.settings import Service

service_steps.deploy_services(context.current(), [Service.NGINX_PROXY_MANAGER, Service.PIHOLE])
