"""What the deploy sets in sshd, decided once from the settings and how the deploy itself logs in.

- Password logins (``PasswordAuthentication``, and ``KbdInteractiveAuthentication``, through which
  PAM asks for a password too) are turned off, unless ``HOMELAB_SSH_PASSWORD_LOGINS=true``, or the
  deploy itself logs in with a password (``ssh_password`` in the inventory): turning them off would
  lock the next run out, so they are kept and tier 1 warns.
- ``PermitRootLogin`` is ``no`` when the deploy logs in as another user (it uses sudo, so nothing
  needs root's own login), ``prohibit-password`` (keys only) when it logs in as root; or as set.

Nothing to set (both parts left as the host has them) means no drop-in: one the deploy wrote before
is removed, with the same guard.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any

from deploys.library.settings import HomelabSettings, SshRootLogin

# read before the distributions' own files (Fedora's installer writes 01-permitrootlogin.conf, cloud
# images 50-cloud-init.conf): its values win
SSHD_DROP_IN = "00-homelab.conf"
SSHD_REVERT_AFTER = 120  # seconds before an unconfirmed sshd change puts itself back


@dataclass(frozen=True)
class SshdPolicy:
    lines: tuple[str, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Login:
    """How the deploy reaches a host: over SSH or not, as which user, with a password or not."""

    ssh: bool
    user: str
    password: bool


def login_of(target: Any) -> Login:
    """The deploy's login to ``target`` (a pyinfra host): its connector, and the user SSH logs in as
    (``ssh_user``, else the local user, as paramiko does)."""
    data = target.data
    over_ssh = hasattr(getattr(target, "connector", None), "make_paramiko_kwargs")
    user = data.get("ssh_user") or (getpass.getuser() if over_ssh else "root")
    return Login(over_ssh, str(user), bool(data.get("ssh_password")))


def sshd_policy(settings: HomelabSettings, login: Login) -> SshdPolicy:
    lines: list[str] = []
    warnings: list[str] = []
    user, password_login = login.user, login.password
    passwords = settings.ssh_password_logins
    if not login.ssh and passwords is None:
        # no login of the deploy's own to prove the change by; the owner's way in is unknown
        warnings.append("the deploy does not run over SSH here, so SSH password logins are left as they are "
                        "(set HOMELAB_SSH_PASSWORD_LOGINS=false to turn them off)")
    elif passwords is None and password_login:
        warnings.append(
            f"the deploy logs in as {user} with a password, so SSH password logins stay on: give it a key "
            "(ssh_key) to have them turned off, or set HOMELAB_SSH_PASSWORD_LOGINS=true to keep them")
    elif passwords is False and password_login:
        warnings.append(
            f"HOMELAB_SSH_PASSWORD_LOGINS=false, but the deploy logs in as {user} with a password, so "
            "password logins are left on (the deploy would lock itself out); give the deploy a key (ssh_key)")
    elif not passwords:
        lines += ["PasswordAuthentication no", "KbdInteractiveAuthentication no"]
    root = settings.ssh_root_login
    if root is SshRootLogin.AUTO:
        if not login.ssh:
            root = SshRootLogin.UNCHANGED
        else:
            root = SshRootLogin.PROHIBIT_PASSWORD if user == "root" else SshRootLogin.NO
    if login.ssh and user == "root" and root is SshRootLogin.NO:
        warnings.append("HOMELAB_SSH_ROOT_LOGIN=no, but the deploy logs in as root, so PermitRootLogin is "
                        "left as it is (the deploy would lock itself out); log in as a user with sudo "
                        "(ssh_user, _sudo)")
    elif login.ssh and user == "root" and password_login and root is SshRootLogin.PROHIBIT_PASSWORD:
        warnings.append("the deploy logs in as root with a password, so PermitRootLogin is left as it is "
                        "(prohibit-password would lock it out); give it a key (ssh_key), or log in as a "
                        "user with sudo")
    elif root is not SshRootLogin.UNCHANGED:
        lines.append(f"PermitRootLogin {root.value}")
    return SshdPolicy(tuple(lines), tuple(warnings))
