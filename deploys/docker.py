"""Tag `docker`: the Docker engine (with the NVIDIA container toolkit where a GPU is found).

    pyinfra inventories/home.py deploys/docker.py
"""

from deploys import context, infra

ctx = context.current()
firewall = infra.firewalld_running(ctx)
infra.nvidia_toolkit(ctx)
infra.docker_engine(ctx, firewall_changed=(firewall,))
