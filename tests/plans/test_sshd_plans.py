"""sshd hardening as planned for a `@fake` host: what the drop-in sets for each way the deploy logs in,
the opt-outs, and that a host already as wanted is left alone. The lab proves the guard itself
(tests/lab/test_ssh_hardening.py)."""

from __future__ import annotations

import logging

from harness import DEBIAN_12, plan

INFRA = "deploys/infrastructure.py"
HOST = {"ls -pdL *-release": DEBIAN_12, "uname -m": "x86_64",
        "SSH_CONNECTION": "192.0.2.9 40000 192.0.2.1 22"}
DROP_IN = "/etc/ssh/sshd_config.d/10-homelab.conf"


def sshd_op(ops: dict[str, list[str]]) -> tuple[str, list[str]]:
    (name,) = [name for name in ops if name.startswith("SSH | sshd: ")]
    return name, ops[name]


def test_a_sudo_login_turns_off_password_logins_and_roots_login():
    name, (apply, confirm) = sshd_op(plan(INFRA, HOST, {"ssh_user": "admin", "_sudo": True}))
    assert name == ("SSH | sshd: PasswordAuthentication no; KbdInteractiveAuthentication no; "
                    "PermitRootLogin no (confirmed by a second login, put back otherwise)")
    assert f"> {DROP_IN}.new" in apply and "PermitRootLogin no\n" in apply
    assert "sshd -t" in apply and "--on-active=120" in apply  # tested, and put back unless confirmed
    assert apply.index("sshd -t") < apply.index("systemd-run --quiet") < apply.index("systemctl reload")
    assert "systemctl stop homelab-sshd-revert.timer" in confirm


def test_a_root_login_keeps_root_by_key():
    name, _ = sshd_op(plan(INFRA, HOST))
    assert "PermitRootLogin prohibit-password" in name


def test_a_deploy_that_logs_in_with_a_password_keeps_password_logins_and_says_so(caplog):
    with caplog.at_level(logging.WARNING):
        name, _ = sshd_op(plan(INFRA, HOST, {"ssh_user": "admin", "ssh_password": "lab-only", "_sudo": True}))
    assert "PasswordAuthentication" not in name and "PermitRootLogin no" in name
    assert "the deploy logs in as admin with a password, so SSH password logins stay on" in caplog.text


def test_root_login_no_is_not_applied_while_the_deploy_logs_in_as_root(caplog):
    with caplog.at_level(logging.WARNING):
        name, _ = sshd_op(plan(INFRA, HOST, {"ssh_root_login": "no"}))
    assert "PermitRootLogin" not in name
    assert "HOMELAB_SSH_ROOT_LOGIN=no, but the deploy logs in as root" in caplog.text


def test_both_parts_opted_out_leave_sshd_alone():
    name, commands = sshd_op(plan(INFRA, HOST, {"ssh_password_logins": True, "ssh_root_login": "unchanged"}))
    assert name == "SSH | sshd: left as the host has it (confirmed by a second login, put back otherwise)"
    assert commands == []  # no drop-in was there, none is written


def test_a_host_already_hardened_is_left_alone():
    hardened = ["### effective", "port 22", "permitrootlogin no", "passwordauthentication no",
                "kbdinteractiveauthentication no", "### drop-in", "present",
                "# Managed by homelab-pyinfra: sshd settings "
                "(changed only with a second login confirming them)",
                "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin no"]
    _, commands = sshd_op(plan(INFRA, {**HOST, "sshd -T": hardened}, {"ssh_user": "admin", "_sudo": True}))
    assert commands == []
