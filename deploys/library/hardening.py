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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deploys.library.settings import HomelabSettings, SshRootLogin

SSHD_DROP_IN = "10-homelab.conf"  # read before the distributions' own 50-*.conf: its values win
SSHD_REVERT_AFTER = 120  # seconds before an unconfirmed sshd change puts itself back


@dataclass(frozen=True)
class SshdPolicy:
    lines: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def login_of(data: Mapping[str, Any] | Any) -> tuple[str, bool]:
    """(the user the deploy logs in as, whether it logs in with a password) from the host's data."""
    get = data.get
    user = get("ssh_user") or "root"
    return str(user), bool(get("ssh_password"))


def sshd_policy(settings: HomelabSettings, user: str, password_login: bool) -> SshdPolicy:
    lines: list[str] = []
    warnings: list[str] = []
    passwords = settings.ssh_password_logins
    if passwords is None and password_login:
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
        root = SshRootLogin.PROHIBIT_PASSWORD if user == "root" else SshRootLogin.NO
    if root is SshRootLogin.NO and user == "root":
        warnings.append("HOMELAB_SSH_ROOT_LOGIN=no, but the deploy logs in as root, so PermitRootLogin is "
                        "left as it is (the deploy would lock itself out); log in as a user with sudo "
                        "(ssh_user, _sudo)")
    elif root is not SshRootLogin.UNCHANGED:
        lines.append(f"PermitRootLogin {root.value}")
    return SshdPolicy(tuple(lines), tuple(warnings))
