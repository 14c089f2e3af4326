"""Tag `nginx`: NGINX Proxy Manager only (its data folders and its compose project).

    pyinfra inventories/home.py deploys/nginx.py
"""

from deploys.library import context, service_steps
from deploys.library.catalog import Service

service_steps.deploy_services(context.current(), [Service.NGINX_PROXY_MANAGER])
