"""The harness itself: a deploy over SSH on the lab hosts in parallel, idempotent, and an honest --dry."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess

import pytest
from labkit import PYINFRA, ROOT

DEPLOY = "tests/lab/deploys/trivial.py"
PATH = "/srv/lab-e2e"


def _names(lab_hosts):
    return sorted(f"{h['name']}" for h in lab_hosts)


def test_trivial_deploy_dry_then_apply_then_idempotent(run_pyinfra, lab_hosts, lab_ssh):
    for host in lab_hosts:
        lab_ssh(host, f"rm -rf {PATH}")

    # --dry: says both operations would change on every host, and changes nothing
    dry = run_pyinfra(DEPLOY, "--dry")
    assert dry.results is None
    planned = dry.planned_changes()
    assert sorted(planned) == ["lab e2e: directory", "lab e2e: file"], dry.explain()
    for hosts in planned.values():
        assert sorted(hosts) == _names(lab_hosts)
    for host in lab_hosts:
        assert lab_ssh(host, f"test -e {PATH}", check=False).returncode == 1, "--dry changed the host"

    # a real run on every host at once: every operation changed every host
    first = run_pyinfra(DEPLOY)
    assert first.changed == 2 * len(lab_hosts), first.explain()
    for hosts in first.changed_operations().values():
        assert sorted(hosts) == _names(lab_hosts)
    for host in lab_hosts:
        assert lab_ssh(host, f"cat {PATH}/hello.txt").stdout == "hello from the lab end-to-end harness\n"

    # the second run reports zero changed operations, strictly
    second = run_pyinfra(DEPLOY)
    assert second.changed == 0, second.changed_operations()
    assert second.no_change == 2 * len(lab_hosts)

    # and --dry on a matching host plans nothing
    assert run_pyinfra(DEPLOY, "--dry").planned_changes() == {}


def test_limit_runs_one_host(run_pyinfra, lab_hosts, lab_ssh):
    first, *others = lab_hosts
    for host in lab_hosts:
        lab_ssh(host, f"rm -rf {PATH}")
    result = run_pyinfra(DEPLOY, limit=f"{first['name']}")
    assert result.changed == 2
    assert lab_ssh(first, f"test -f {PATH}/hello.txt", check=False).returncode == 0
    for host in others:
        assert lab_ssh(host, f"test -e {PATH}", check=False).returncode == 1


@pytest.mark.parametrize("login", ["sudo", "sudo-password", "root"])
def test_every_login_reaches_root_and_knows_its_ssh_path(run_pyinfra, lab_hosts, lab_ssh, login):
    """The lab logs in as a real owner does (sshd on 2222; a sudo user, with or without a sudo
    password; root): the deploy's commands run as root, and the SSH path the firewall guard keeps
    open is found even in sudo's cleaned environment."""
    first = lab_hosts[0]
    name = f"{first['name']}"
    lab_ssh(first, f"rm -rf {PATH}")
    result = run_pyinfra(DEPLOY, limit=name, login=login)
    assert result.changed == 2, result.explain()
    assert lab_ssh(first, f"stat -c %U {PATH}/hello.txt").stdout.strip() == "root"
    proc = subprocess.run(
        [str(PYINFRA), "--json", "--limit", name, "inventories/lab.py", "fact", "facts.system.SshConnection"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "LAB_LOGIN": login},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    facts = json.loads(proc.stdout[proc.stdout.index("{"):])
    connection = facts["facts.system.SshConnection"][name]
    assert connection["server_port"] == 2222, connection
    assert ipaddress.ip_address(connection["client_address"])
