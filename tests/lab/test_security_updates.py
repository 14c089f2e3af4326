"""Security updates, GPU-safe, on a real lab host after the full deploy (deploys/server.py, whose
infrastructure tier ends with them): unattended-upgrades installed and allowed the security suite only,
the Docker engine held, `unattended-upgrade --dry-run -d` content with those holds, a re-run changing
nothing, and tier 1 reporting it.

The lab image is Debian 12 with docker.io, containerd and runc and no NVIDIA package (no GPU here): only
the engine is held, and the hold's operation says so. The lab hosts reach Debian's package registry
(../shared/LAB.md), from which unattended-upgrades is installed. Cheap: one host (the last), and the full
deploy there is a no-change run when an earlier module deployed it already.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
from labkit import run_pyinfra_cli, ssh

SERVER = "deploys/server.py"
VALIDATE = "deploys/validate.py"
HOLD = "Security updates | Hold containerd docker.io runc (no NVIDIA driver package installed)"
CONFIG = "/etc/apt/apt.conf.d/52homelab-security-updates"


@pytest.fixture(scope="module")
def deployed(lab_hosts):
    host = lab_hosts[-1]
    first = run_pyinfra_cli(SERVER, limit=host["name"])
    second = run_pyinfra_cli(SERVER, limit=host["name"])
    return {"host": host, "first": first, "second": second}


def _config(host, key: str) -> list[str]:
    """The values `apt-config dump` shows for ``key`` (list entries are ``key::``)."""
    values = []
    for line in ssh(host, "apt-config dump").stdout.splitlines():
        name, _, value = line.partition(" ")
        value = value.strip().rstrip(";").strip('"')
        if name in (key, f"{key}::") and value:
            values.append(value)
    return values


def test_unattended_upgrades_installed_and_allowed_the_security_suite_only(deployed):
    host = deployed["host"]
    status = ssh(host, "dpkg-query -W -f='${Status}' unattended-upgrades").stdout
    assert status == "install ok installed"
    assert _config(host, "Unattended-Upgrade::Origins-Pattern") == [
        "origin=Debian,codename=${distro_codename}-security,label=Debian-Security"
    ]
    assert _config(host, "Unattended-Upgrade::Allowed-Origins") == []
    assert _config(host, "APT::Periodic::Update-Package-Lists") == ["1"]
    assert _config(host, "APT::Periodic::Unattended-Upgrade") == ["1"]
    # HOMELAB_REBOOT's default: never
    assert _config(host, "Unattended-Upgrade::Automatic-Reboot") == ["false"]
    assert ssh(host, f"stat -c %a {CONFIG}").stdout.strip() == "644"
    timers = ssh(host, "systemctl is-enabled apt-daily.timer apt-daily-upgrade.timer").stdout.split()
    assert timers == ["enabled", "enabled"]


def test_the_engine_is_held_and_the_hold_says_there_is_no_driver(deployed):
    host = deployed["host"]
    assert ssh(host, "apt-mark showhold").stdout.split() == ["containerd", "docker.io", "runc"]
    nvidia = ssh(host, "dpkg-query -W -f='${Package}\\n' '*nvidia*' 2>/dev/null", check=False).stdout.split()
    assert nvidia == []  # nothing of the GPU stack on a lab host: nothing of it held
    names = [op["name"] for op in deployed["first"].results["operations"]]
    assert HOLD in names, names


def _outer_nameserver() -> str | None:
    """The resolver of the machine running the lab (not a loopback one, which a lab host cannot reach)."""
    for line in Path("/etc/resolv.conf").read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver" and not words[1].startswith("127."):
            return words[1]
    return None


@contextmanager
def names_resolved(host):
    """LAB ONLY: a lab host resolves names through Docker's embedded DNS (127.0.0.11), reached through NAT
    rules in its own netfilter tables, which the deploy's start of firewalld and of the inner Docker engine
    flush; a real server's resolver is not behind such rules. For this block the host asks the resolver of
    the machine running the lab instead, so that apt can fetch what a dry run downloads."""
    server = _outer_nameserver()
    if server is None:
        pytest.skip("the machine running the lab has only a loopback resolver, which a lab host cannot reach")
    ssh(host, "cp /etc/resolv.conf /etc/resolv.conf.lab-kept && "
              f"echo 'nameserver {server}' > /etc/resolv.conf")
    try:
        yield
    finally:
        ssh(host, "cat /etc/resolv.conf.lab-kept > /etc/resolv.conf && rm -f /etc/resolv.conf.lab-kept")


def test_unattended_upgrade_dry_run_succeeds_with_the_holds_and_skips_them(deployed):
    host = deployed["host"]
    with names_resolved(host):
        run = ssh(host, "unattended-upgrade --dry-run -d 2>&1", check=False)
    assert run.returncode == 0, run.stdout[-3000:]
    assert ("Allowed origins are: origin=Debian,codename=bookworm-security,label=Debian-Security"
            in run.stdout), run.stdout[-3000:]
    lines = run.stdout.splitlines()
    upgraded = [line for line in lines if line.startswith("Packages that will be upgraded:")]
    for line in upgraded:
        assert not {"docker.io", "containerd", "runc"} & set(line.split(":", 1)[1].split()), line


def test_a_second_run_changes_nothing(deployed):
    second = deployed["second"]
    assert second.changed == 0, second.changed_operations()
    assert HOLD in [op["name"] for op in second.results["operations"]]


def test_preflight_reports_security_updates_and_holds(deployed):
    host = deployed["host"]
    result = run_pyinfra_cli(VALIDATE, limit=host["name"], check=False)
    assert result.returncode == 0, result.explain()
    rows = {line.split()[0]: line for line in result.stderr.splitlines()
            if line.startswith(("  updates ", "  holds "))}
    # PASS, or WARN only for a reboot an automatic run has left pending since
    assert "security updates only (unattended-upgrades), reboot never" in rows["updates"], result.stderr
    assert rows["holds"].split()[1] == "PASS", result.stderr
    assert "held: containerd, docker.io, runc (apt-mark showhold)" in rows["holds"], result.stderr
