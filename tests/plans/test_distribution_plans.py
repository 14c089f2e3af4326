"""RHEL-likes by os-release ID / ID_LIKE, from the table the preflight reads too: the exact commands
for Rocky 9 and the other rebuilds, and the refusals the preflight's `os` row also gives."""

from __future__ import annotations

import re

import pytest
from harness import EXPLAINED, os_release_file, plan

from deploys.library.context import DeployError

INFRA = "deploys/infrastructure.py"


def host(name: str, **more):
    return {"ls -pdL *-release": os_release_file(name), "uname -m": "x86_64", "rpm --queryformat": [], **more}


def test_rocky_9_exact_repository_files_and_packages():
    ops = plan(INFRA, host("documented-rocky-9.4"))
    assert ops["firewalld | Install firewalld nftables"] == ["dnf install -y firewalld nftables"]
    # a failed install ends with one line naming the packages and the cause (test_package_failures)
    assert "firewalld | Install firewalld nftables" in EXPLAINED
    assert ops["Docker engine | docker-ce repository"] == [
        "mkdir -p /etc/yum.repos.d",
        "upload /etc/yum.repos.d/docker-ce-stable.repo:\n[docker-ce-stable]\nname=Docker CE Stable\n"
        "baseurl=https://download.docker.com/linux/centos/$releasever/$basearch/stable\nenabled=1\n"
        "gpgcheck=1\ngpgkey=https://download.docker.com/linux/centos/gpg\n",
        "chmod 644 /etc/yum.repos.d/docker-ce-stable.repo",
    ]
    assert ops[
        "Docker engine | Install docker-ce docker-ce-cli containerd.io docker-buildx-plugin "
        "docker-compose-plugin"
    ] == ["dnf install -y docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin"]
    assert ops["Tailscale | Tailscale repository"] == [
        "mkdir -p /etc/yum.repos.d",
        "upload /etc/yum.repos.d/tailscale-stable.repo:\n[tailscale-stable]\nname=Tailscale stable\n"
        "baseurl=https://pkgs.tailscale.com/stable/rhel/9/$basearch\nenabled=1\ngpgcheck=1\n"
        "gpgkey=https://pkgs.tailscale.com/stable/rhel/9/repo.gpg\n",
        "chmod 644 /etc/yum.repos.d/tailscale-stable.repo",
    ]
    assert ops["Tailscale | Install tailscale"] == ["dnf install -y tailscale"]
    assert not any(cmd.startswith("apt") for cmds in ops.values() for cmd in cmds)


@pytest.mark.parametrize(
    ("name", "docker", "tailscale"),
    [
        ("documented-almalinux-10.0", "centos", "rhel/10"),
        ("documented-centos-stream-9", "centos", "rhel/9"),
        ("documented-rhel-9.4", "rhel", "rhel/9"),
        ("documented-rhel-10.0", "rhel", "rhel/10"),
        ("documented-eurolinux-9.4", "rhel", "rhel/9"),  # by ID_LIKE
        ("documented-fedora-43", "fedora", "fedora"),
    ],
)
def test_rhel_likes_get_dnf_and_their_repository_paths(name, docker, tailscale):
    ops = plan(INFRA, host(name))
    repo = "\n".join(ops["Docker engine | docker-ce repository"])
    assert f"baseurl=https://download.docker.com/linux/{docker}/$releasever/$basearch/stable" in repo
    assert f"baseurl=https://pkgs.tailscale.com/stable/{tailscale}/$basearch" in "\n".join(
        ops["Tailscale | Tailscale repository"]
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("documented-rhel-8.10", "unsupported distribution 'Red Hat Enterprise Linux 8.10 (Ootpa)'"),
        ("documented-debian-11", "unsupported distribution 'Debian GNU/Linux 11 (bullseye)'"),
        ("documented-alpine-3.20", "unsupported distribution 'Alpine Linux v3.20'"),
    ],
)
def test_what_the_preflight_fails_the_deploy_refuses(name, message):
    expected = re.escape(message + ": supported: Fedora 40, 41, 42, 43; RHEL 9, 10")
    with pytest.raises(DeployError, match=expected):
        plan(INFRA, host(name))


def test_distro_engine_on_a_rebuild_is_refused_clearly():
    expected = "Rocky Linux packages no Docker engine .*HOMELAB_DOCKER_SOURCE=docker-ce"
    with pytest.raises(DeployError, match=expected):
        plan(INFRA, host("documented-rocky-9.4"), {"docker_source": "distro"})
