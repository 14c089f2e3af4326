"""Tag `ollama`: Ollama only (its data folders and its compose project).

    pyinfra inventories/home.py deploys/ollama.py
"""

from deploys.library import context, service_steps
from deploys.library.catalog import Service

service_steps.deploy_services(context.current(), [Service.OLLAMA])
