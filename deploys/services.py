"""Tier 2, core services: NGINX Proxy Manager and Pi-hole (on the `core` group's hosts).

    pyinfra inventories/home.py deploys/services.py
"""

from deploys.library import context, service_steps
from deploys.library.catalog import CORE_GROUP, services_in

service_steps.deploy_services(context.current(), list(services_in(CORE_GROUP)))
