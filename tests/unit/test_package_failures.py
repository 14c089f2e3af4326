"""A failed package install ends with one line naming the packages and the likely cause: the wrapping
shell run for real around a scripted package manager's output (recorded wordings of apt and dnf)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from pyinfra.api import StringCommand

from operations import packages

APT_LOCK = """E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4211 (unattended-upgr)
N: Be aware that removing the lock file is not a solution and may break your system.
E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?"""
APT_NETWORK = """Err:1 https://download.docker.com/linux/debian bookworm InRelease
  Temporary failure resolving 'download.docker.com'
E: Failed to fetch https://download.docker.com/linux/debian/dists/bookworm/InRelease"""
APT_HELD = """The following packages have unmet dependencies:
 docker-ce : Depends: containerd.io (>= 1.6.24) but it is not going to be installed
E: Unable to correct problems, you have held broken packages."""
APT_MISSING = "E: Unable to locate package docker-ce"
DNF_LOCK = "Waiting for process with pid 812 to finish."
DNF_NETWORK = """Errors during downloading metadata for repository 'docker-ce-stable':
  - Curl error (6): Couldn't resolve host name for https://download.docker.com/linux/fedora/41/repodata
Error: Failed to download metadata for repo 'docker-ce-stable'"""
DNF_BROKEN = """Error:
 Problem: conflicting requests
  - nothing provides container-selinux >= 2:2.74 needed by containerd.io-1.7.22-3.1.fc41.x86_64"""
DNF_MISSING = "No match for argument: docker-ce\nError: Unable to find a match: docker-ce"

CASES = [
    ("apt", APT_LOCK, "another apt or dpkg holds the package lock"),
    ("apt", APT_NETWORK, "the package repository cannot be reached from the host"),
    ("apt", APT_HELD, "held or broken packages stand in the way"),
    ("apt", APT_MISSING, "the host's repositories do not offer them"),
    ("apt", "E: Sub-process /usr/bin/dpkg returned an error code (1)", packages.UNKNOWN),
    ("dnf", DNF_LOCK, "another dnf or rpm holds the package lock"),
    ("dnf", DNF_NETWORK, "the package repository cannot be reached from the host"),
    ("dnf", DNF_BROKEN, "broken or conflicting packages stand in the way"),
    ("dnf", DNF_MISSING, "the host's repositories do not offer them"),
]


def run(tmp_path: Path, command: str, output: str, code: int) -> subprocess.CompletedProcess:
    tool = tmp_path / "pkgtool"
    tool.write_text(f"#!/bin/sh\ncat <<'EOF' >&2\n{output}\nEOF\nexit {code}\n")
    tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    return subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(("manager", "output", "cause"), CASES)
def test_a_failed_install_ends_with_one_line_naming_the_packages_and_the_cause(tmp_path, manager, output,
                                                                                cause):
    command = packages.explained("DEBIAN_FRONTEND=noninteractive pkgtool install -y", manager,
                                 ["docker-ce", "containerd.io"], present=True)
    proc = run(tmp_path, command, output, 100)
    assert proc.returncode == 100
    assert proc.stdout.strip() == output.strip()  # the package manager's own output, shown as it was
    lines = proc.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{manager}: installing docker-ce containerd.io failed: {cause}")
    known = [c for _, c in packages.CAUSES[manager]] + [packages.UNKNOWN]
    full = next(c for c in known if c.startswith(cause))
    assert lines[0] == f"{manager}: installing docker-ce containerd.io failed: {full}"


def test_a_successful_install_shows_its_output_and_adds_nothing(tmp_path):
    proc = run(tmp_path, packages.explained("pkgtool install -y jq", "apt", ["jq"], True), "Setting up jq", 0)
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, "Setting up jq", "")


def test_a_removal_says_removing(tmp_path):
    proc = run(tmp_path, packages.explained("pkgtool remove -y jq", "dnf", ["jq"], False), DNF_LOCK, 1)
    assert proc.stderr.startswith("dnf: removing jq failed: another dnf or rpm holds the package lock")


def test_the_operation_wraps_every_command_of_pyinfras_package_operation(monkeypatch):
    def fake_apt(**kwargs):
        assert kwargs == {"packages": ["jq"], "present": True, "update": True, "cache_time": 3600}
        yield "apt-get update"
        yield StringCommand("DEBIAN_FRONTEND=noninteractive apt-get -y install", "jq")

    monkeypatch.setattr(packages.apt.packages, "_inner", fake_apt)
    commands = list(packages.packages._inner(packages=["jq"], manager="apt", update=True, cache_time=3600))
    raw = [command.get_raw_value() for command in commands]
    assert raw == [
        packages.explained("apt-get update", "apt", ["jq"], True),
        packages.explained("DEBIAN_FRONTEND=noninteractive apt-get -y install jq", "apt", ["jq"], True),
    ]


RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "apt"


def _recorded(name: str) -> tuple[str, int]:
    """A recorded apt output (tests/fixtures/apt) and its exit status (its last line)."""
    *lines, status = (RECORDED / name).read_text().rstrip("\n").splitlines()
    return "\n".join(lines), int(status.split()[-1])


def _refresh() -> str:
    """The wrapped `apt-get update`, its apt-get played by the scripted pkgtool."""
    return packages.explained("apt-get update", "apt", ["jq"], True).replace("apt-get update", "pkgtool", 1)


def test_an_install_after_an_update_that_fetched_nothing_names_the_unreached_repository(tmp_path,
                                                                                       monkeypatch):
    """Recorded on Debian 12: `apt-get update` exits 0 though it fetched nothing, and the install then
    fails on "Unable to locate package", which alone would blame the repositories' content."""
    marker = tmp_path / "apt-fetch-failed"
    monkeypatch.setattr(packages, "APT_FETCH_FAILED", str(marker))
    update_output, update_rc = _recorded("update-connection-refused.txt")
    install_output, install_rc = _recorded("install-after-failed-update.txt")
    assert (update_rc, install_rc) == (0, 100)
    proc = run(tmp_path, packages.explained("pkgtool update", "apt", ["jq"], True), update_output, update_rc)
    assert proc.returncode == 0 and proc.stderr == ""
    assert not marker.exists()  # only apt-get update's own output is remembered (the command's name)
    refresh = _refresh()
    assert run(tmp_path, refresh, update_output, update_rc).returncode == 0
    assert marker.read_text().startswith("W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/")
    install = packages.explained("DEBIAN_FRONTEND=noninteractive pkgtool -y install jq", "apt", ["jq"], True)
    proc = run(tmp_path, install, install_output, install_rc)
    assert proc.returncode == 100
    assert proc.stderr.splitlines() == [
        "apt: installing jq failed: the package repository cannot be reached from the host: the last "
        "apt-get update fetched nothing (W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/"
        "InRelease  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)); "
        "check the network, DNS or proxy, then run again"
    ]
    # a refresh that fetched everything forgets it: "not offered" is then what the install says
    assert run(tmp_path, refresh, "Hit:1 http://deb.debian.org/debian bookworm InRelease", 0).returncode == 0
    assert not marker.exists()
    proc = run(tmp_path, install, install_output, install_rc)
    assert proc.stderr.startswith("apt: installing jq failed: the host's repositories do not offer them")


def test_an_update_without_a_resolver_is_remembered_too(tmp_path, monkeypatch):
    marker = tmp_path / "apt-fetch-failed"
    monkeypatch.setattr(packages, "APT_FETCH_FAILED", str(marker))
    output, rc = _recorded("update-no-dns.txt")
    refresh = _refresh()
    assert run(tmp_path, refresh, output, rc).returncode == 0
    assert "Temporary failure resolving 'deb.debian.org'" in marker.read_text()


def test_a_refresh_that_fetched_nothing_does_not_mark_the_lists_fresh(monkeypatch):
    def fake_apt(**kwargs):
        yield "apt-get update"
        yield "touch /var/lib/apt/periodic/update-success-stamp"
        yield StringCommand("DEBIAN_FRONTEND=noninteractive apt-get -y install", "jq")

    monkeypatch.setattr(packages.apt.packages, "_inner", fake_apt)
    commands = list(packages.packages._inner(packages=["jq"], manager="apt", update=True, cache_time=3600))
    assert commands[1].command == (
        f"[ -s {packages.APT_FETCH_FAILED} ] || touch /var/lib/apt/periodic/update-success-stamp")
