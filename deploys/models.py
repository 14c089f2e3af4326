"""Tag `models`: the Ollama models (HOMELAB_OLLAMA_MODELS) pulled through Ollama's API, and the
files ComfyUI loads (HOMELAB_COMFYUI_MODELS) downloaded and checked by their SHA-256, on the hosts
where those services run (deployed first by deploys/ai.py or server.py). A present model is never
pulled again; a model no longer listed stays unless HOMELAB_OLLAMA_PRUNE=true.

    pyinfra inventories/home.py deploys/models.py
    pyinfra inventories/home.py deploys/models.py --dry     # what would be pulled, with its size
"""

from deploys.library import context, model_steps
from deploys.library.catalog import selectable_services

model_steps.models(context.current(), list(selectable_services()))
