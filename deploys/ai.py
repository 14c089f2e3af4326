"""Tier 2, AI services: Ollama, ComfyUI and Open WebUI (on the `gpu` group's hosts).

Touches only these three services. Without a GPU they run on the CPU with a warning, or are
left out with HOMELAB_AI_WITHOUT_GPU=skip.

    pyinfra inventories/home.py deploys/ai.py
"""

from deploys.library import context, service_steps
from deploys.library.catalog import GPU_GROUP, services_in

service_steps.deploy_services(context.current(), list(services_in(GPU_GROUP)))
