"""sshd hardened through the deploy's sudo login, on a real sshd, without ever locking the deploy out.

Proven on the first lab host:
- before the deploy, a password login works (so the checks below can fail); after it, password logins
  and root's password login fail, while key logins (the deploy's user; root's key, which the lab's own
  plumbing uses) work, and `sshd -T` says so; a second run changes nothing;
- a drop-in sshd refuses (`sshd -t`) is put back and the run fails with sshd's reason, while the
  session goes on;
- a drop-in that locks the deploy's own login out (DenyUsers) is put back at once, because the second
  login the operation makes fails;
- a change nobody confirms is put back by its timer.
"""

from __future__ import annotations

import re
import time

import paramiko
import pytest
from labkit import assert_clean, run_pyinfra_cli
from labkit import ssh as lab_ssh

INFRA = "deploys/infrastructure.py"
LINES = "tests/lab/deploys/sshd_lines.py"
DROP_IN = "/etc/ssh/sshd_config.d/00-homelab.conf"
TEST_DROP_IN = "/etc/ssh/sshd_config.d/05-lab-test.conf"
ROOT_PASSWORD = "lab-only-root-password"  # set here, on a lab host only
PW_USER, PW_PASSWORD = "homelab-pw", "lab-only-sudo-password"  # lab/images/host/Dockerfile
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def host(lab_hosts):
    return lab_hosts[0]


def _login(host, user: str, **credentials) -> bool:
    """Whether sshd lets ``user`` in with these credentials (a fresh connection; retried while sshd
    restarts its listener after a reload)."""
    deadline = time.monotonic() + 15
    while True:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect(host.get("ssh_hostname", "127.0.0.1"), port=host["ssh_port"], username=user,
                           look_for_keys=False, allow_agent=False, timeout=10, banner_timeout=10,
                           auth_timeout=10, **credentials)
            return True
        except paramiko.AuthenticationException:
            return False
        except (paramiko.SSHException, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
        finally:
            client.close()


def _password_login(host, user: str, password: str) -> bool:
    return _login(host, user, password=password)


def _key_login(host, user: str) -> bool:
    return _login(host, user, key_filename=host["ssh_key"])


def _effective(host) -> dict[str, str]:
    out = ssh(host, "sshd -T").stdout.splitlines()
    return dict(line.split(" ", 1) for line in out if line.split(" ", 1)[0] in
                ("passwordauthentication", "permitrootlogin", "kbdinteractiveauthentication"))


def ssh(host, command: str, check: bool = True):
    """labkit's ssh, tried again while sshd re-executes itself after a reload (ssh exits 255 when its
    connection is reset in that moment)."""
    deadline = time.monotonic() + 15
    while True:
        done = lab_ssh(host, command, check=False)
        if done.returncode != 255 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if check:
        assert done.returncode == 0, f"ssh {host['name']} {command!r}: {done.returncode}\n{done.stderr}"
    return done


def _output(result) -> str:
    return ANSI.sub("", result.stdout + result.stderr)


def test_password_logins_end_and_key_logins_stay(host):
    name = host["name"]
    ssh(host, f"echo 'root:{ROOT_PASSWORD}' | chpasswd; "
              "printf 'PermitRootLogin yes\\n' > /etc/ssh/sshd_config.d/0-lab-root-password.conf; "
              f"rm -f {DROP_IN}; systemctl reload ssh")
    try:
        assert _password_login(host, PW_USER, PW_PASSWORD)  # the check below can fail
        assert _password_login(host, "root", ROOT_PASSWORD)
        # a file read before ours that allows root passwords: the deploy must say it cannot win
        refused = run_pyinfra_cli(INFRA, limit=name, check=False)
        assert refused.returncode != 0
        assert_clean(refused)
        assert ("permitrootlogin is yes (wanted without-password); an earlier file in /etc/ssh/sshd_config.d"
                in _output(refused))
        assert ssh(host, f"test -e {DROP_IN}", check=False).returncode != 0  # put back: there was none
    finally:
        ssh(host, "rm -f /etc/ssh/sshd_config.d/0-lab-root-password.conf; systemctl reload ssh")
    done = run_pyinfra_cli(INFRA, limit=name)
    assert any(op.startswith("SSH | sshd: PasswordAuthentication no") for op in done.changed_operations())
    assert _effective(host) == {"passwordauthentication": "no", "kbdinteractiveauthentication": "no",
                                "permitrootlogin": "without-password"}
    assert not _password_login(host, PW_USER, PW_PASSWORD)
    assert not _password_login(host, "root", ROOT_PASSWORD)
    assert _key_login(host, "homelab") and _key_login(host, "root")
    assert "homelab-sshd-revert.timer" not in ssh(host, "systemctl list-timers --all --no-legend").stdout
    assert run_pyinfra_cli(INFRA, limit=name).changed == 0


def _refused(host, lines: str) -> str:
    """The output of the test deploy with these sshd lines, which must fail cleanly and leave no test
    drop-in behind."""
    failed = run_pyinfra_cli(LINES, "--data", f"sshd_lines={lines}", limit=host["name"], check=False)
    assert failed.returncode != 0
    assert_clean(failed)
    assert ssh(host, f"test -e {TEST_DROP_IN}", check=False).returncode != 0
    return _output(failed)


def test_a_drop_in_sshd_refuses_is_put_back_and_the_session_goes_on(host):
    before = ssh(host, f"cat {DROP_IN}").stdout
    output = _refused(host, "PermitRootLogin maybe")
    assert "sshd refuses the new configuration, so it was not applied" in output
    assert 'unsupported option "maybe"' in output
    assert ssh(host, f"cat {DROP_IN}").stdout == before
    assert ssh(host, "systemctl is-active ssh").stdout.strip() == "active"
    assert _key_login(host, "homelab")


def test_a_drop_in_that_locks_the_deploy_out_is_put_back_at_once(host):
    output = _refused(host, "DenyUsers homelab homelab-pw")
    assert "sshd: a second login as homelab failed after the change" in output
    assert "so it was put back" in output
    assert _key_login(host, "homelab")
    # the revert timer was stopped too: nothing fires later
    assert "homelab-sshd-revert" not in ssh(host, "systemctl list-timers --all --no-legend").stdout


def test_a_change_nobody_confirms_is_put_back_by_its_timer(host):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from operations.sshd import apply_command  # the operation's own shell, without its confirmation

    ssh(host, apply_command("05-lab-test.conf", ["MaxAuthTries 5"], 10))
    assert "maxauthtries 5" in ssh(host, "sshd -T").stdout
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if ssh(host, f"test -e {TEST_DROP_IN}", check=False).returncode != 0:
            break
        time.sleep(1)
    assert ssh(host, f"test -e {TEST_DROP_IN}", check=False).returncode != 0, "the timer did not put it back"
    assert "maxauthtries 6" in ssh(host, "sshd -T").stdout  # sshd reads the default again
    assert _key_login(host, "homelab")
