"""Tier 2, AI services: Ollama, ComfyUI and Open WebUI (on the `gpu` group's hosts).

Touches only these three services. Without a GPU they run on the CPU with a warning, or are
left out with HOMELAB_AI_WITHOUT_GPU=skip. Then the models (deploys/models.py): the Ollama models of
HOMELAB_OLLAMA_MODELS pulled, ComfyUI's files of HOMELAB_COMFYUI_MODELS downloaded and checked.

    pyinfra inventories/home.py deploys/ai.py
"""

from deploys.library import context, model_steps, service_steps
from deploys.library.catalog import GPU_GROUP, services_in

ctx = context.current()
service_steps.deploy_services(ctx, list(services_in(GPU_GROUP)))
model_steps.models(ctx, list(services_in(GPU_GROUP)))
