"""Tag `comfyui`: ComfyUI only (its data folders, its compose project, then the files of
HOMELAB_COMFYUI_MODELS downloaded into its models folder and checked by their SHA-256).

    pyinfra inventories/home.py deploys/comfyui.py
"""

from deploys.library import context, model_steps, service_steps
from deploys.library.catalog import Service

ctx = context.current()
service_steps.deploy_services(ctx, [Service.COMFYUI])
model_steps.models(ctx, [Service.COMFYUI])
