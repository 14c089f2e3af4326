"""sshd hardening decided for each way the deploy logs in (deploys/library/hardening.py), and planned for
a `@fake` host, which is reached without SSH: there the owner's way in is unknown, so only what the
settings ask for explicitly is set. The lab proves the guard itself (tests/lab/test_ssh_hardening.py)."""

from __future__ import annotations

import logging

import pytest
from harness import DEBIAN_12, SSHD_FACT, plan

from deploys.library.hardening import Login, sshd_policy
from deploys.library.settings import load_settings

INFRA = "deploys/infrastructure.py"
HOST = {"ls -pdL *-release": DEBIAN_12, "uname -m": "x86_64",
        "SSH_CONNECTION": "192.0.2.9 40000 192.0.2.1 22"}
DROP_IN = "/etc/ssh/sshd_config.d/00-homelab.conf"
HARDENED = ["### homelab-sshd effective", "port 22", "permitrootlogin no", "passwordauthentication no",
            "kbdinteractiveauthentication no", "### homelab-sshd pending", "### homelab-sshd drop-in",
            "present",
            "# Managed by homelab-pyinfra: sshd settings (changed only with a second login confirming them)",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin no"]
EXPLICIT = {"ssh_password_logins": False, "ssh_root_login": "no"}


def settings(**changes):
    return load_settings({"domain": "home.example.com", "tailscale_allowed_ips": "100.64.0.0/10",
                          "services": "ollama", **changes}, env_file=None)


@pytest.mark.parametrize(("login", "lines"), [
    (Login(True, "admin", False),
     ("PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin no")),
    (Login(True, "root", False),
     ("PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password")),
    (Login(True, "admin", True), ("PermitRootLogin no",)),  # the deploy's own password login stays
    (Login(True, "root", True), ()),  # root by password: neither part could be applied
    (Login(False, "root", False), ()),  # not over SSH: the owner's way in is unknown
], ids=["sudo-login", "root-by-key", "sudo-login-by-password", "root-by-password", "not-over-ssh"])
def test_what_the_drop_in_sets_for_each_login(login, lines):
    policy = sshd_policy(settings(), login)
    assert policy.lines == lines
    assert bool(policy.warnings) == (login.password or not login.ssh)


def test_root_login_no_is_not_applied_while_the_deploy_logs_in_as_root():
    policy = sshd_policy(settings(ssh_root_login="no"), Login(True, "root", False))
    assert "PermitRootLogin no" not in policy.lines
    assert "HOMELAB_SSH_ROOT_LOGIN=no, but the deploy logs in as root" in policy.warnings[0]


def test_both_parts_opted_out_set_nothing():
    policy = sshd_policy(settings(ssh_password_logins=True, ssh_root_login="unchanged"),
                         Login(True, "admin", False))
    assert policy.lines == ()


def test_not_over_ssh_auto_leaves_sshd_alone_and_says_so(caplog):
    with caplog.at_level(logging.WARNING):
        ops = plan(INFRA, HOST)
    assert ops["SSH | sshd: left as the host has it (confirmed by a second login, put back otherwise)"] == []
    assert "the deploy does not run over SSH here, so SSH password logins are left as they are" in caplog.text


def test_explicit_settings_are_written_tested_and_confirmed():
    ops = plan(INFRA, HOST, EXPLICIT)
    (apply, confirm) = ops["SSH | sshd: PasswordAuthentication no; KbdInteractiveAuthentication no; "
                           "PermitRootLogin no (confirmed by a second login, put back otherwise)"]
    assert f"> {DROP_IN}.new" in apply and "PermitRootLogin no\n" in apply
    assert "--on-active=120" in apply  # put back unless confirmed
    assert apply.index('-t 2>&1') < apply.index("systemd-run --quiet") < apply.index("systemctl reload")
    assert "systemctl stop homelab-sshd-revert.timer && rm -f" in confirm


def test_a_host_already_hardened_is_left_alone():
    ops = plan(INFRA, {**HOST, SSHD_FACT: HARDENED}, EXPLICIT)
    (name,) = [name for name in ops if name.startswith("SSH | sshd: ")]
    assert ops[name] == []


def test_a_change_a_run_left_unconfirmed_is_made_again():
    pending = [*HARDENED[:6], "kept", *HARDENED[6:]]
    ops = plan(INFRA, {**HOST, SSHD_FACT: pending}, EXPLICIT)
    (name,) = [name for name in ops if name.startswith("SSH | sshd: ")]
    assert len(ops[name]) == 2  # written again, tested, confirmed
