"""Tier 2, everything in the original's order: infrastructure, core services, AI services, the
monitoring set where HOMELAB_MONITORING is on (taken down where it is off), proxy,
backups where a repository is configured (HOMELAB_BACKUP_REPOSITORY), and last the models
(HOMELAB_OLLAMA_MODELS, HOMELAB_COMFYUI_MODELS: the long downloads, so that a failed one stops nothing
else).

    pyinfra inventories/home.py deploys/server.py          # deploy
    pyinfra inventories/home.py deploys/server.py --dry    # preview what would change
"""

from pyinfra import host

from deploys.library import (
    backup_steps,
    context,
    infra_steps,
    model_steps,
    monitoring_steps,
    proxy_steps,
    service_steps,
)
from deploys.library.catalog import selectable_services

ctx = context.current()

infra_steps.infrastructure(ctx)  # deploys/infrastructure.py

# services (deploys/services.py, deploys/ai.py): every service of HOMELAB_SERVICES's, in the catalog's
# order (the proxy and DNS first), running where the plan places it and taken down where it does not
service_steps.deploy_services(ctx, list(selectable_services()))

# monitoring (deploys/monitoring.py): its set where the plan places it, the host metrics on every host
monitoring_steps.monitoring(ctx)

# proxy hosts and local DNS (deploys/proxy.py)
proxy_steps.proxy_and_dns(ctx)

# backups (deploys/backup.py)
if ctx.settings.backups:
    backup_steps.setup(ctx)
else:
    host.noop("backups: not configured (no HOMELAB_BACKUP_REPOSITORY): nothing changes")

# models (deploys/models.py): pulled and downloaded where Ollama and ComfyUI run
model_steps.models(ctx, list(selectable_services()))
