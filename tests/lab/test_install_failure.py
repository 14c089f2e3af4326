"""A package install that fails for real ends with one line naming the packages and the cause, on a lab
host whose apt cannot reach its repository: the test points apt at a proxy where nothing listens
(/etc/apt/apt.conf.d/, removed afterwards). `apt-get update` then exits 0 having fetched nothing, and
the install fails on "Unable to locate package": the line must name the unreached repository, not
blame the repositories' content."""

from __future__ import annotations

import re

import pytest
from labkit import assert_clean, run_pyinfra_cli, ssh

INSTALL = "tests/lab/deploys/install_packages.py"
NO_REPOSITORY = "/etc/apt/apt.conf.d/99lab-no-repository"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def unreachable_repository(lab_hosts):
    host = lab_hosts[0]
    ssh(host, f"printf 'Acquire::http::Proxy \"http://127.0.0.1:9\";\\n' > {NO_REPOSITORY}; "
              "rm -f /var/lib/apt/lists/*_InRelease /var/lib/apt/lists/*_Packages* "
              "/var/lib/apt/periodic/update-success-stamp")
    yield host
    ssh(host, f"rm -f {NO_REPOSITORY} /run/homelab-apt-fetch-failed")


def test_an_install_without_a_reachable_repository_says_so_in_one_line(unreachable_repository):
    host = unreachable_repository
    result = run_pyinfra_cli(INSTALL, "--data", "packages=jq", limit=host["name"], check=False)
    output = ANSI.sub("", result.stdout + result.stderr)
    assert result.returncode != 0, result.explain()
    assert_clean(result)
    lines = [line for line in output.splitlines() if "apt: installing jq failed:" in line]
    assert lines, result.explain()
    assert ("the package repository cannot be reached from the host: the last apt-get update fetched "
            "nothing (W: Failed to fetch") in lines[0], lines[0]
    assert "127.0.0.1:9" in lines[0], lines[0]
    assert ssh(host, "dpkg -s jq", check=False).returncode != 0  # nothing was installed
    # the refresh that fetched nothing did not mark the lists fresh: the next run refreshes again
    assert ssh(host, "test -e /var/lib/apt/periodic/update-success-stamp", check=False).returncode != 0
