"""Tag `comfyui`: ComfyUI only (its data folders and its compose project).

    pyinfra inventories/home.py deploys/comfyui.py
"""

from deploys.library import context, service_steps
from deploys.library.catalog import Service

service_steps.deploy_services(context.current(), [Service.COMFYUI])
