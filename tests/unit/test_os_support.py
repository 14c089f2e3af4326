"""One table decides which systems are supported, by os-release ID / ID_LIKE and the VERSION_ID
major: the preflight's `os` row and the deploy's family read the same answer.

The os-release files (tests/facts/os-release/) go through pyinfra's own LinuxDistribution
processing, so these see the fact the deploy sees (pyinfra names Rocky "Rocky Linux", for one).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyinfra.facts.server import LinuxDistribution

from deploys.library.context import DISTRIBUTIONS, match_os
from deploys.library.preflight import FAIL, PASS, Observed, check_os

OS_RELEASE = Path(__file__).resolve().parents[1] / "facts" / "os-release"


def distro(name: str) -> dict:
    lines = ["/etc/os-release", *(OS_RELEASE / name).read_text().splitlines(), "---"]
    return LinuxDistribution().process(lines)


@pytest.mark.parametrize(
    ("name", "label", "family"),
    [
        ("documented-fedora-41", "Fedora", "rhel"),
        ("documented-fedora-43", "Fedora", "rhel"),
        ("documented-rhel-9.4", "RHEL", "rhel"),
        ("documented-rhel-10.0", "RHEL", "rhel"),
        ("documented-rocky-9.4", "Rocky Linux", "rhel"),
        ("documented-almalinux-9.4", "AlmaLinux", "rhel"),
        ("documented-almalinux-10.0", "AlmaLinux", "rhel"),
        ("documented-centos-stream-9", "CentOS Stream", "rhel"),
        ("documented-debian-12", "Debian", "debian"),
        ("documented-debian-13", "Debian", "debian"),
        ("documented-ubuntu-22.04", "Ubuntu", "debian"),
        ("documented-ubuntu-24.04", "Ubuntu", "debian"),
        # an unlisted rebuild is taken by its ID_LIKE, in order: rhel first
        ("documented-eurolinux-9.4", "RHEL", "rhel"),
    ],
)
def test_supported_in_preflight_and_deploy_alike(name, label, family):
    facts = distro(name)
    found = match_os(facts)
    assert found.supported and found.family == family
    assert found.distribution.label == label
    result = check_os(Observed(host="h", distro=facts))
    assert result.result == PASS, result
    assert facts["release_meta"]["PRETTY_NAME"] in result.detail


def test_rocky_is_not_what_pyinfra_calls_it():
    """The old table keyed by pyinfra's `name` missed Rocky: pyinfra reports "Rocky Linux"."""
    facts = distro("documented-rocky-9.4")
    assert facts["name"] == "Rocky Linux" and facts["major"] == 9
    assert check_os(Observed(host="h", distro=facts)).detail == "Rocky Linux 9.4 (Blue Onyx) (supported)"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("documented-rhel-8.10", "Red Hat Enterprise Linux 8.10 (Ootpa): RHEL 8 is not supported"),
        ("documented-debian-11", "Debian GNU/Linux 11 (bullseye): Debian 11 is not supported"),
        ("documented-alpine-3.20", "Alpine Linux v3.20 is not supported"),
    ],
)
def test_unsupported_fails_naming_what_is_supported(name, why):
    facts = distro(name)
    assert not match_os(facts).supported
    result = check_os(Observed(host="h", distro=facts))
    assert result.result == FAIL
    assert result.detail.startswith(why)
    assert "Rocky Linux 9, 10" in result.detail and "Ubuntu 22, 24" in result.detail


def test_nothing_known_fails():
    assert check_os(Observed(host="h", distro={})).result == FAIL


def test_every_rhel_like_has_docker_and_tailscale_paths():
    for known in DISTRIBUTIONS.values():
        assert known.docker_ce and known.tailscale.format(major=9)
