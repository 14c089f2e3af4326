"""Tag `ollama`: Ollama only (its data folders and its compose project).

    pyinfra inventories/home.py deploys/ollama.py
"""

from deploys import context, svc
from deploys.settings import Service

svc.deploy_services(context.current(), [Service.OLLAMA])
