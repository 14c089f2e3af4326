"""Tag `ollama`: Ollama only (its data folders, its compose project, then the models of
HOMELAB_OLLAMA_MODELS pulled through its API).

    pyinfra inventories/home.py deploys/ollama.py
"""

from deploys.library import context, model_steps, service_steps
from deploys.library.catalog import Service

ctx = context.current()
service_steps.deploy_services(ctx, [Service.OLLAMA])
model_steps.models(ctx, [Service.OLLAMA])
