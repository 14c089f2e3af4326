"""Tag `security_updates`: security updates only (unattended-upgrades / dnf-automatic), the NVIDIA driver,
its container toolkit and the Docker engine held at their installed versions, the reboot policy.
Also the last step of the infrastructure tier (deploys/infrastructure.py, deploys/server.py).

    pyinfra inventories/home.py deploys/security_updates.py
"""

from deploys.library import context, security_steps

security_steps.security_updates(context.current())
