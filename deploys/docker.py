"""Tag `docker`: the Docker engine (with the NVIDIA container toolkit where a GPU is found).

    pyinfra inventories/home.py deploys/docker.py
"""

from deploys.library import context, infra_steps

ctx = context.current()
firewall = infra_steps.firewalld_running(ctx)
infra_steps.nvidia_toolkit(ctx)
infra_steps.docker_engine(ctx, firewall_changed=(firewall,))
