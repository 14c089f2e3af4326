"""The exact commands of the infrastructure paths no lab host can run here: Fedora/RHEL and GPUs.

Each test plans `deploys/infrastructure.py` (or a tag) against a `@fake` host whose answers to the
fact commands are scripted: the real H200 capture for the GPU, documented os-release files for
the distributions. A host that matches is planned empty by the same code, as the lab shows.
"""

from __future__ import annotations

import json

import pytest
from harness import DEBIAN_12, FEDORA_41, ROOT, os_release, plan

from deploys.library.context import DeployError

H200 = json.loads((ROOT / "tests/facts/gpu.NvidiaGpus/recorded-h200-fact-command.json").read_text())["output"]
ROCKY_9 = os_release('NAME="Rocky Linux"\nVERSION_ID="9.4"\nID="rocky"\nID_LIKE="rhel centos fedora"')
INFRA = "deploys/infrastructure.py"


def fedora(gpu=None, installed=()):
    responses = {"ls -pdL *-release": FEDORA_41, "uname -m": "x86_64", "rpm --queryformat": list(installed)}
    if gpu is not None:
        responses["pyinfra-gpu"] = gpu
    return responses


def upload(commands: list[str]) -> str:
    (body,) = [command for command in commands if command.startswith("upload ")]
    return body


def test_fedora_docker_ce_from_its_repository_file_not_config_manager():
    # an explicit source replaces Podman's docker command (deploys/library/engine.py)
    ops = plan(INFRA, fedora(installed=["podman-docker 5.2.2-1.fc41", "bash 5.2.32-1.fc41"]),
               {"docker_source": "docker-ce"})
    assert ops["Docker engine | Remove podman-docker"] == [
        "dnf versionlock delete podman-docker >/dev/null 2>&1 || true",  # a lock would keep it
        "dnf remove -y podman-docker",
    ]
    repo = ops["Docker engine | docker-ce repository"]
    assert repo[0] == "mkdir -p /etc/yum.repos.d"
    body = upload(repo)
    assert body.startswith("upload /etc/yum.repos.d/docker-ce-stable.repo:")
    assert "baseurl=https://download.docker.com/linux/fedora/$releasever/$basearch/stable" in body
    assert "gpgkey=https://download.docker.com/linux/fedora/gpg" in body and "gpgcheck=1" in body
    # a repository file works on dnf4 and dnf5 alike: no `config-manager --add-repo` / `addrepo`
    assert not any("config-manager" in command for commands in ops.values() for command in commands)
    assert ops[
        "Docker engine | Install docker-ce docker-ce-cli containerd.io docker-buildx-plugin "
        "docker-compose-plugin"
    ] == ["dnf install -y docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin"]
    assert ops["firewalld | Install firewalld nftables"] == ["dnf install -y firewalld nftables"]


def test_fedora_moby_engine_from_the_distribution():
    ops = plan(INFRA, fedora(), {"docker_source": "distro"})
    assert ops["Docker engine | Install moby-engine"] == ["dnf install -y moby-engine"]
    assert ops["Docker engine | Install docker-compose"] == ["dnf install -y docker-compose"]
    assert "Docker engine | docker-ce repository" not in ops


def test_fedora_tailscale_repository():
    ops = plan(INFRA, fedora())
    body = upload(ops["Tailscale | Tailscale repository"])
    assert "baseurl=https://pkgs.tailscale.com/stable/fedora/$basearch" in body
    assert ops["Tailscale | Install tailscale"] == ["dnf install -y tailscale"]
    assert ops["Tailscale | tailscaled running and enabled"] == [
        "systemctl start tailscaled.service",
        "systemctl enable tailscaled.service",
    ]


def test_rhel_like_uses_dockers_centos_repository():
    ops = plan(INFRA, {**fedora(), "ls -pdL *-release": ROCKY_9})
    body = upload(ops["Docker engine | docker-ce repository"])
    assert "baseurl=https://download.docker.com/linux/centos/$releasever/$basearch/stable" in body


def test_gpu_host_gets_the_toolkit_runtime_and_cdi_on_fedora():
    ops = plan(INFRA, fedora(gpu=H200))
    body = upload(ops["NVIDIA container toolkit | nvidia-container-toolkit repository"])
    assert "baseurl=https://nvidia.github.io/libnvidia-container/stable/rpm/$basearch" in body
    assert ops["NVIDIA container toolkit | Install nvidia-container-toolkit"] == [
        "dnf install -y nvidia-container-toolkit"
    ]
    assert ops[
        "NVIDIA container toolkit | CDI specification for the GPUs (toolkits without nvidia-cdi-refresh)"
    ] == ["nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"]
    daemon = json.loads(
        upload(
            ops[
                "Docker engine | daemon.json (log rotation, live-restore, NVIDIA runtime "
                "when a GPU is present)"
            ]
        ).split(":\n", 1)[1]
    )
    assert daemon["runtimes"] == {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}


def test_no_gpu_no_toolkit_and_no_runtime():
    ops = plan(INFRA, fedora())
    assert not any(name.startswith("NVIDIA container toolkit | ") for name in ops)
    daemon = upload(
        ops["Docker engine | daemon.json (log rotation, live-restore, NVIDIA runtime when a GPU is present)"]
    )
    assert "nvidia" not in daemon


def test_debian_docker_ce_and_toolkit_with_signed_by_keyrings():
    ops = plan(INFRA, {"ls -pdL *-release": DEBIAN_12, "uname -m": "x86_64", "pyinfra-gpu": H200})
    assert ops["Docker engine | docker repository"] == [
        "echo 'deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] "
        "https://download.docker.com/linux/debian bookworm stable' >> /etc/apt/sources.list.d/docker.list"
    ]
    assert ops["NVIDIA container toolkit | nvidia-container-toolkit repository"] == [
        "echo 'deb [signed-by=/etc/apt/keyrings/nvidia-container-toolkit.asc] "
        "https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /' "
        ">> /etc/apt/sources.list.d/nvidia-container-toolkit.list"
    ]
    # Tailscale publishes a binary key: it must be kept as .gpg for apt to read it
    assert ops["Tailscale | tailscale repository"] == [
        "echo 'deb [signed-by=/etc/apt/keyrings/tailscale.gpg] https://pkgs.tailscale.com/stable/debian "
        "bookworm main' >> /etc/apt/sources.list.d/tailscale.list"
    ]
    key = ops["Docker engine | docker repository key"]
    assert any("https://download.docker.com/linux/debian/gpg" in command for command in key)


def test_debian_12_distro_docker_without_compose_v2_is_refused_clearly():
    with pytest.raises(
        DeployError, match="packages no Docker Compose v2: set HOMELAB_DOCKER_SOURCE=docker-ce"
    ):
        plan(INFRA, {"ls -pdL *-release": DEBIAN_12, "uname -m": "x86_64"}, {"docker_source": "distro"})


def test_tailscale_managed_elsewhere_installs_nothing():
    ops = plan(INFRA, fedora(), {"tailscale_install": False})
    assert not any(name.startswith("Tailscale | ") and commands for name, commands in ops.items())


def test_unsupported_distribution_is_refused():
    alpine = os_release('NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.0')
    with pytest.raises(DeployError, match="unsupported distribution"):
        plan(INFRA, {"ls -pdL *-release": alpine})


def test_a_new_zone_reloads_once_then_rebuilds_dockers_chains():
    ops = plan(INFRA, fedora())
    zone = ops["Firewall zone self-hosted | Zone self-hosted: Tailscale peers only"]
    assert zone[0] == "firewall-cmd --permanent --new-zone=self-hosted"
    # the Docker subnet stays in Docker's own zone: as a source here it would cut the containers' egress
    assert [c for c in zone if "--add-source" in c] == [
        "firewall-cmd --permanent --zone=self-hosted --add-source=100.64.0.0/10",
    ]
    assert not any("forward" in command for command in zone)
    assert zone[-3:] == [
        "firewall-cmd --reload",
        "systemctl reset-failed docker.service",
        "systemctl restart docker.service",
    ]
    assert zone.count("firewall-cmd --reload") == 1


def test_the_zone_opens_the_ports_of_the_services_placed_on_the_host_only():
    zone_op = "Firewall zone self-hosted | Zone self-hosted: Tailscale peers only"
    ports = [c for c in plan(INFRA, fedora())[zone_op] if "--add-port" in c]
    assert [c.split("--add-port=")[1] for c in ports if "--permanent" in c] == [
        "80/tcp", "443/tcp", "81/tcp", "53/tcp", "53/udp"]
    ai_only = plan(INFRA, fedora(), {"services": "ollama,comfyui,open-webui"})
    zone = ai_only[zone_op]
    assert not any("--add-port" in command for command in zone)
    assert "firewall-cmd --permanent --zone=self-hosted --add-service=ssh" in zone


# -- Fedora's moby-engine: dockerd gets --log-driver / --live-restore from /etc/sysconfig/docker ---------
DAEMON_JSON = "Docker engine | daemon.json (log rotation, live-restore, NVIDIA runtime when a GPU is present)"


def sysconfig(case: str) -> list[str]:
    path = ROOT / "tests/facts/system.EnvironmentFileFlags" / f"{case}.json"
    return json.loads(path.read_text())["output"]


def test_fedora_moby_engine_first_install_leaves_the_packaged_flags_out_of_daemon_json():
    """Before moby-engine (and its sysconfig) is installed, the plan knows what the package passes:
    daemon.json repeats none of it, or dockerd would refuse to start."""
    ops = plan(INFRA, fedora(installed=["bash 5.2.32-1.fc41"]), {"docker_source": "distro"})
    assert "Docker engine | Remove podman-docker docker-ce docker-ce-cli" not in ops  # none installed
    assert ops["Docker engine | Install moby-engine"] == ["dnf install -y moby-engine"]
    assert ops[DAEMON_JSON] == [
        "mkdir -p /etc/docker",
        "upload /etc/docker/daemon.json:\n{}\n",
        "chmod 644 /etc/docker/daemon.json",
    ]


def test_fedora_moby_engine_installed_reads_its_sysconfig_and_keeps_the_gpu_runtime():
    host = {**fedora(gpu=H200, installed=["moby-engine 27.3.1-1.fc41"]),
            "pyinfra-variable OPTIONS": sysconfig("documented-fedora-moby-engine")}
    ops = plan(INFRA, host, {"docker_source": "distro"})
    assert "Docker engine | Install moby-engine" not in ops
    assert ops[DAEMON_JSON] == [
        "mkdir -p /etc/docker",
        'upload /etc/docker/daemon.json:\n{\n  "runtimes": {\n    "nvidia": {\n      "args": [],\n'
        '      "path": "nvidia-container-runtime"\n    }\n  }\n}\n',
        "chmod 644 /etc/docker/daemon.json",
    ]


def test_fedora_moby_engine_with_an_edited_sysconfig_gets_what_the_flags_leave_out():
    host = {**fedora(installed=["moby-engine 27.3.1-1.fc41"]),
            "pyinfra-variable OPTIONS": sysconfig("documented-edited-last-assignment-wins")}
    ops = plan(INFRA, host, {"docker_source": "distro"})
    # --log-driver=journald stays a flag (json-file's rotation options would be refused by journald);
    # --live-restore was taken out, so daemon.json sets it
    assert upload(ops[DAEMON_JSON]) == 'upload /etc/docker/daemon.json:\n{\n  "live-restore": true\n}\n'


def test_docker_ce_on_fedora_ignores_a_leftover_sysconfig():
    host = {**fedora(), "pyinfra-variable OPTIONS": sysconfig("documented-fedora-moby-engine")}
    daemon = json.loads(upload(plan(INFRA, host)[DAEMON_JSON]).split(":\n", 1)[1])
    assert daemon == {"live-restore": True, "log-driver": "json-file",
                      "log-opts": {"max-file": "3", "max-size": "10m"}}


def test_published_ports_are_guarded_by_a_table_loaded_at_boot_before_docker():
    ops = plan(INFRA, fedora())
    guard = ops["Published ports: tailnet only | nftables table: published ports answer the tailnet and "
                "the Docker network only"]
    path = "/etc/homelab/nftables/homelab_published_ports.nft"
    unit = "/etc/systemd/system/homelab-published-ports.service"
    assert guard[0] == "mkdir -p /etc/homelab/nftables"
    assert guard[1].startswith(f"upload {path}:")
    assert guard[2:4] == [f"chmod 644 {path}", f"/usr/sbin/nft --check -f {path}"]
    assert guard[4].startswith(f"upload {unit}:")
    assert guard[5:] == [
        f"chmod 644 {unit}",
        "systemctl daemon-reload",
        "systemctl enable homelab-published-ports.service",
        "systemctl restart homelab-published-ports.service",
    ]
    table = guard[1]
    # every port the services placed on this host publish, on its Tailscale IP only
    assert "ip daddr 100.101.102.103 tcp dport { 53, 80, 81, 443 } jump tailnet_only" in table
    assert "ip daddr 100.101.102.103 udp dport { 53 } jump tailnet_only" in table
    assert 'iifname "tailscale0" ip saddr @tailnet_sources accept' in table
    assert "elements = { 100.64.0.0/10 }" in table
    assert "Before=docker.service" in guard[4] and "ExecStart=/usr/sbin/nft -f " + path in guard[4]
