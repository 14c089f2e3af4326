"""tests/verify/host_rules.py: the security-updates and holds rules, over real `apt-config dump` outputs
recorded on Debian 12 (tests/facts/recorded/debian12-updates) and stated package lists."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "verify"))

from host_rules import apt_config_values, not_held, not_security_origins  # noqa: E402

RECORDED = TESTS / "facts" / "recorded" / "debian12-updates"


def dump(name: str) -> str:
    return (RECORDED / f"apt-config-dump-{name}.txt").read_text()


def test_deployed_debian_takes_security_updates_only_daily_without_reboot():
    deployed = dump("deployed")
    assert not_security_origins(deployed) == []
    assert apt_config_values(deployed, "APT::Periodic::Unattended-Upgrade") == ["1"]
    assert apt_config_values(deployed, "Unattended-Upgrade::Automatic-Reboot") == ["false"]


def test_the_packages_own_configuration_also_takes_the_point_releases():
    assert not_security_origins(dump("package-defaults")) == [
        "origin=Debian,codename=${distro_codename},label=Debian",
        "origin=Debian,codename=${distro_codename},label=Debian-Security",
    ]


def test_ubuntu_allowed_origins_and_nothing_allowed():
    ubuntu = ('Unattended-Upgrade::Allowed-Origins "";\n'
              'Unattended-Upgrade::Allowed-Origins:: "${distro_id}:${distro_codename}";\n'
              'Unattended-Upgrade::Allowed-Origins:: "${distro_id}:${distro_codename}-security";\n')
    assert not_security_origins(ubuntu) == ["${distro_id}:${distro_codename}"]
    assert not_security_origins('Unattended-Upgrade::Origins-Pattern "";\n') == ["(no origin allowed at all)"]


def test_installed_engine_toolkit_and_driver_must_be_held():
    installed = ["bash", "docker.io", "containerd", "runc", "nvidia-driver", "libnvidia-ml1",
                 "nvidia-container-toolkit", "tini"]
    assert not_held(installed, ["containerd", "docker.io", "runc"]) == [
        "libnvidia-ml1", "nvidia-container-toolkit", "nvidia-driver"]
    assert not_held(installed, installed) == []
