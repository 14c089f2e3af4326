"""Hosts set up per NVIDIA's, Docker's and Tailscale's own install guides keep their repositories:
the deploy recognises a repository configured for the same URI (apt: one-line or deb822, any file
name, any keyring; dnf: same baseurl or id, any file name) and plans nothing for it, instead of
a second entry with another Signed-By that makes every apt run fail (rc 100).

The repository files are the guides' documented formats (tests/facts/packages.ConfiguredRepositories).
"""

from __future__ import annotations

import json
import re

import pytest
from harness import ROOT, os_release_file, plan

from deploys.library.context import DeployError

H200 = json.loads((ROOT / "tests/facts/gpu.NvidiaGpus/recorded-h200-fact-command.json").read_text())["output"]
INFRA = "deploys/infrastructure.py"
DOCKER_CE = "docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin"
APT_INSTALL = (
    'DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::="--force-confdef" '
    '-o Dpkg::Options::="--force-confold" install '
)
APT_UPDATE = ["apt-get update",
              "[ -s /run/homelab-apt-fetch-failed ] || touch /var/lib/apt/periodic/update-success-stamp"]
NVIDIA_LINE = (
    "deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] "
    "https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /"
)
# what this deploy used to append to NVIDIA's own file
OLD_LINE = (
    "deb [signed-by=/etc/apt/keyrings/nvidia-container-toolkit.asc] "
    "https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /"
)


def repositories(case: str) -> list[str]:
    path = ROOT / "tests/facts/packages.ConfiguredRepositories" / f"{case}.json"
    return json.loads(path.read_text())["output"]


def files(*pairs: tuple[str, list[str]]) -> list[str]:
    return [line for path, body in pairs for line in (f"### pyinfra-repos {path}", *body, "")]


def debian(repos: list[str], **more) -> dict:
    return {"ls -pdL *-release": os_release_file("documented-debian-12"), "uname -m": "x86_64",
            "pyinfra-gpu": H200, "### pyinfra-repos": repos, **more}


def fedora(repos: list[str]) -> dict:
    return {"ls -pdL *-release": os_release_file("documented-fedora-41"), "uname -m": "x86_64",
            "pyinfra-gpu": H200, "rpm --queryformat": [], "### pyinfra-repos": repos}


def all_commands(ops: dict[str, list[str]]) -> list[str]:
    return [command for commands in ops.values() for command in commands]


def test_debian_host_per_the_vendor_guides_keeps_their_repositories():
    ops = plan(INFRA, debian(repositories("documented-debian12-per-vendor-guides")))
    assert not any("sources.list" in c or "/etc/apt/keyrings" in c for c in all_commands(ops))
    assert [name for name in ops if "repository" in name or "keyrings" in name] == []
    assert ops["NVIDIA container toolkit | Install nvidia-container-toolkit"] == [
        *APT_UPDATE, APT_INSTALL + "nvidia-container-toolkit"
    ]
    assert ops["Tailscale | Install tailscale"] == [*APT_UPDATE, APT_INSTALL + "tailscale"]
    assert ops[f"Docker engine | Install {DOCKER_CE}"] == [*APT_UPDATE, APT_INSTALL + DOCKER_CE]


def test_debian_host_without_them_gets_ours_with_our_keyrings():
    ops = plan(INFRA, debian(repositories("no-repository-files")))
    assert ops["NVIDIA container toolkit | nvidia-container-toolkit repository"] == [
        "echo 'deb [signed-by=/etc/apt/keyrings/nvidia-container-toolkit.asc] "
        "https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH) /' "
        ">> /etc/apt/sources.list.d/nvidia-container-toolkit.list"
    ]
    assert ops["Docker engine | docker repository"] == [
        "echo 'deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] "
        "https://download.docker.com/linux/debian bookworm stable' >> /etc/apt/sources.list.d/docker.list"
    ]


def test_the_second_entry_an_earlier_deploy_added_is_taken_out():
    """NVIDIA's file with this deploy's old line appended (apt: "Conflicting values set for option
    Signed-By", rc 100): exactly that line is removed, NVIDIA's stays."""
    listed = files(("/etc/apt/sources.list.d/nvidia-container-toolkit.list", [NVIDIA_LINE, OLD_LINE]))
    apt_sources = ["##PYINFRA_FILE /etc/apt/sources.list.d/nvidia-container-toolkit.list",
                   NVIDIA_LINE, OLD_LINE]
    # pyinfra's own reads behind apt.repo(present=False): AptSources, then grep for the line
    found = {"##PYINFRA_FILE": apt_sources, "toolkit\\.asc\\]": [OLD_LINE]}
    ops = plan(INFRA, debian(listed, **found))
    removal = ops[
        "NVIDIA container toolkit | nvidia-container-toolkit repository: remove the second entry "
        "(conflicting Signed-By)"
    ]
    (command,) = removal
    # sed deletes the lines matching our old entry, nothing else (the backup suffix varies per run)
    ours = r"deb \\\[signed\\-by=\\/etc\\/apt\\/keyrings\\/nvidia\\-container\\-toolkit\\.asc\\\] https:"
    assert re.fullmatch(
        r"sed -i\.(\d+) '/\^\.\*" + ours + r".*/d' /etc/apt/sources\.list\.d/nvidia-container-toolkit\.list "
        r"&& rm -f /etc/apt/sources\.list\.d/nvidia-container-toolkit\.list\.\1",
        command,
    ), command
    assert "nvidia-container-toolkit-keyring" not in command  # NVIDIA's own line is not touched
    assert "NVIDIA container toolkit | nvidia-container-toolkit repository key" not in ops


def test_two_foreign_entries_with_different_keyrings_are_reported_not_extended():
    listed = files(
        ("/etc/apt/sources.list.d/tailscale.list", [
            "deb [signed-by=/usr/share/keyrings/tailscale-archive-keyring.gpg] "
            "https://pkgs.tailscale.com/stable/debian bookworm main"]),
        ("/etc/apt/sources.list.d/tailscale-old.list", [
            "deb [signed-by=/usr/share/keyrings/other.gpg] "
            "https://pkgs.tailscale.com/stable/debian/ bookworm main"]),
    )
    with pytest.raises(DeployError, match="more than once with different keyrings: .*tailscale-old.list"):
        plan(INFRA, debian(listed))


def test_a_configured_source_without_our_component_is_reported():
    listed = files(("/etc/apt/sources.list.d/docker.sources", [
        "Types: deb", "URIs: https://download.docker.com/linux/debian", "Suites: bookworm",
        "Components: test", "Signed-By: /etc/apt/keyrings/docker.asc"]))
    with pytest.raises(DeployError, match=r"docker.sources .* without component\(s\) stable"):
        plan(INFRA, debian(listed))


def test_fedora_host_per_the_vendor_guides_keeps_their_repo_files():
    ops = plan(INFRA, fedora(repositories("documented-fedora-per-vendor-guides")))
    assert not any("yum.repos.d" in c for c in all_commands(ops))
    assert [name for name in ops if "repository" in name] == []
    assert ops["NVIDIA container toolkit | Install nvidia-container-toolkit"] == [
        "dnf install -y nvidia-container-toolkit"
    ]
    assert ops["Tailscale | Install tailscale"] == ["dnf install -y tailscale"]
    assert ops[f"Docker engine | Install {DOCKER_CE}"] == [f"dnf install -y {DOCKER_CE}"]


def test_rocky_host_set_up_by_tailscales_installer_keeps_its_repository_id():
    """Tailscale's install.sh gives Rocky its fedora repository under the id tailscale-stable:
    the same id in another file is that repository, not a second one to add."""
    listed = files(("/etc/yum.repos.d/tailscale.repo", [
        "[tailscale-stable]", "name=Tailscale stable",
        "baseurl=https://pkgs.tailscale.com/stable/fedora/$basearch", "enabled=1"]))
    ops = plan(INFRA, {**fedora(listed), "ls -pdL *-release": os_release_file("documented-rocky-9.4")})
    assert "Tailscale | Tailscale repository" not in ops
    assert ops["Tailscale | Install tailscale"] == ["dnf install -y tailscale"]
    # Docker's is not there: it gets ours
    assert "Docker engine | docker-ce repository" in ops


def test_a_disabled_repository_is_reported_not_duplicated():
    listed = files(("/etc/yum.repos.d/docker-ce.repo", [
        "[docker-ce-stable]",
        "baseurl=https://download.docker.com/linux/fedora/$releasever/$basearch/stable", "enabled=0"]))
    expected = r"configured but disabled \(docker-ce-stable in /etc/yum.repos.d/docker-ce.repo\): set enabled"
    with pytest.raises(DeployError, match=expected):
        plan(INFRA, fedora(listed))
