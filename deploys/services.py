"""Tier 2, core services: NGINX Proxy Manager and Pi-hole (on the `core` group's hosts).

    pyinfra inventories/home.py deploys/services.py
"""

from deploys import context, svc
from deploys.settings import Service

svc.deploy_services(context.current(), [Service.NGINX_PROXY_MANAGER, Service.PIHOLE])
