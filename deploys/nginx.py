"""Tag `nginx`: NGINX Proxy Manager only (its data folders and its compose project).

    pyinfra inventories/home.py deploys/nginx.py
"""

from deploys import context, svc
from deploys.settings import Service

svc.deploy_services(context.current(), [Service.NGINX_PROXY_MANAGER])
