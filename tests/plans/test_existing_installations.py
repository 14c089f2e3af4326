"""Existing installations are respected: a host's Docker engine.

The hosts are scripted from documented outputs: `dpkg -l` / `rpm -qa` package lists, `docker ps` names.
"""

from __future__ import annotations

import json
import logging

import pytest
from harness import DEBIAN_12, FEDORA_41, ROOT, plan

from deploys.context import DeployError

INFRA = "deploys/infrastructure.py"
SYSCONFIG = ROOT / "tests/facts/system.EnvironmentFileFlags/documented-fedora-moby-engine.json"
PS = "docker ps --format"


def dpkg(*packages: str) -> list[str]:
    """`dpkg -l` lines, as pyinfra's DebPackages reads them."""
    return [f"ii  {name}  {version}  amd64  {name}" for name, version in packages]


def debian_with_docker_io(running=("jellyfin", "vaultwarden")) -> dict:
    return {
        "ls -pdL *-release": DEBIAN_12,
        "uname -m": "x86_64",
        "dpkg -l": dpkg(("docker.io", "20.10.24+dfsg1-1+deb12u1"), ("containerd", "1.6.20~ds1-1+b1"),
                        ("runc", "1.1.5+ds1-1+deb12u1"), ("bash", "5.2.15-2+b7")),
        # a compose v2 plugin put in /usr/libexec/docker/cli-plugins by hand (Debian 12 packages none)
        "docker compose version --short": "2.29.7",
        PS: [*running, "### pyinfra-docker-ps exit 0"],
    }


def fedora_with(*packages: str, running=("jellyfin",)) -> dict:
    return {
        "ls -pdL *-release": FEDORA_41,
        "uname -m": "x86_64",
        "rpm --queryformat": list(packages),
        "pyinfra-variable OPTIONS": json.loads(SYSCONFIG.read_text())["output"],
        PS: [*running, "### pyinfra-docker-ps exit 0"],
    }


def docker_ops(ops: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: commands for name, commands in ops.items() if name.startswith("Docker engine | ")}


def all_commands(ops: dict[str, list[str]]) -> list[str]:
    return [command for commands in ops.values() for command in commands]


# -- Docker -------------------------------------------------------------------------------------
def test_debian_docker_io_with_running_containers_is_kept_by_default():
    ops = plan(INFRA, debian_with_docker_io())
    # nothing removed, no Docker repository, no docker-ce: daemon.json on the kept engine, which is started
    assert docker_ops(ops) == {
        "Docker engine | daemon.json (log rotation, live-restore, NVIDIA runtime when a GPU is present)": [
            "mkdir -p /etc/docker",
            'upload /etc/docker/daemon.json:\n{\n  "live-restore": true,\n  "log-driver": "json-file",\n'
            '  "log-opts": {\n    "max-file": "3",\n    "max-size": "10m"\n  }\n}\n',
            "chmod 644 /etc/docker/daemon.json",
        ],
        "Docker engine | docker running and enabled": [
            "systemctl start docker.service", "systemctl enable docker.service",
        ],
        "Docker engine | Restart Docker (daemon.json changed or firewalld started: rebuild its chains)": [
            "systemctl start docker.service",
        ],
    }
    assert not any(" remove" in command or "purge" in command for command in all_commands(ops))
    assert not any("download.docker.com" in command for command in all_commands(ops))


def test_debian_docker_io_with_running_containers_and_explicit_docker_ce_is_refused():
    with pytest.raises(DeployError) as refused:
        plan(INFRA, debian_with_docker_io(), {"docker_source": "docker-ce"})
    assert str(refused.value) == (
        "@fake/server: HOMELAB_DOCKER_SOURCE=docker-ce would replace the installed docker.io, which has "
        "2 running container(s): jellyfin, vaultwarden; the deploy does not remove the engine under running "
        "containers: stop them first (`docker stop`), or set HOMELAB_DOCKER_SOURCE=auto to keep docker.io"
    )


def test_debian_docker_io_with_explicit_docker_ce_and_nothing_running_is_replaced(caplog):
    with caplog.at_level(logging.WARNING):
        ops = plan(INFRA, debian_with_docker_io(running=()), {"docker_source": "docker-ce"})
    removal = "Docker engine | Remove docker.io docker-doc docker-compose podman-docker containerd runc"
    assert ops[removal] == [
        "DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::=\"--force-confdef\" "
        "-o Dpkg::Options::=\"--force-confold\" remove docker.io containerd runc"
    ]
    assert ops["Docker engine | Install docker-ce docker-ce-cli containerd.io docker-buildx-plugin "
               "docker-compose-plugin"][-1].endswith(
        "install docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin")
    assert "docker.io is replaced by the docker-ce engine (HOMELAB_DOCKER_SOURCE=docker-ce)" in caplog.text


def test_debian_docker_engine_down_cannot_list_containers_so_no_replacement():
    host = {**debian_with_docker_io(), PS: ["### pyinfra-docker-ps exit 1"]}
    with pytest.raises(DeployError, match=r"containers that could not be listed \(`docker ps` failed\)"):
        plan(INFRA, host, {"docker_source": "docker-ce"})


def test_fedora_moby_engine_is_kept_by_default_with_its_sysconfig_flags():
    ops = plan(INFRA, fedora_with("moby-engine 27.3.1-1.fc41", "docker-compose 2.29.7-1.fc41",
                                  "bash 5.2.32-1.fc41"))
    engine = docker_ops(ops)
    assert not any(name.startswith("Docker engine | Remove") for name in engine)
    assert "Docker engine | docker-ce repository" not in engine
    assert not any("docker-ce" in command for command in all_commands(engine))
    # the kept moby-engine gets journald and live-restore from /etc/sysconfig/docker: not in daemon.json
    daemon = engine["Docker engine | daemon.json (log rotation, live-restore, NVIDIA runtime when a GPU "
                    "is present)"]
    assert daemon == ["mkdir -p /etc/docker", "upload /etc/docker/daemon.json:\n{}\n",
                      "chmod 644 /etc/docker/daemon.json"]


def test_fedora_moby_engine_with_running_containers_and_explicit_docker_ce_is_refused():
    with pytest.raises(DeployError, match=r"would replace the installed moby-engine, which has 1 running "
                                          r"container\(s\): jellyfin"):
        plan(INFRA, fedora_with("moby-engine 27.3.1-1.fc41"), {"docker_source": "docker-ce"})


def test_fedora_docker_ce_installed_and_explicit_distro_is_refused_while_containers_run():
    refusal = "HOMELAB_DOCKER_SOURCE=distro would replace the installed docker-ce"
    with pytest.raises(DeployError, match=refusal):
        plan(INFRA, fedora_with("docker-ce 27.3.1-1.fc41"), {"docker_source": "distro"})


def test_podman_docker_is_not_replaced_without_an_explicit_source():
    refusal = ("podman-docker is installed .* HOMELAB_DOCKER_SOURCE=auto keeps what is installed: "
               "set HOMELAB_DOCKER_SOURCE=docker-ce or distro")
    with pytest.raises(DeployError, match=refusal):
        plan(INFRA, fedora_with("podman-docker 5.2.2-1.fc41"))
