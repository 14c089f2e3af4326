"""sshd as it runs: the effective values of the settings the hardening manages, and one drop-in."""

from __future__ import annotations

import shlex
from typing import Any

from pyinfra.api import FactBase

from facts.sections import split_sections

# the effective settings read back from `sshd -T` (lower-case, as it prints them)
KEYS = ("port", "permitrootlogin", "passwordauthentication", "kbdinteractiveauthentication")
_MARK = "### homelab-sshd "


class SshdSettings(FactBase[dict[str, Any] | None]):
    """
    Returns sshd's effective values of the settings the hardening manages (``sshd -T``, which reads
    the configuration the daemon would load now, drop-ins included), and the text of one drop-in
    file (``None`` when absent); ``None`` when the host has no ``sshd``. With ``kept`` and ``unit``,
    ``pending`` says whether a change is still unconfirmed: the copy of the file before it (or
    ``<kept>.none``, the mark that there was none) is there (``kept``), its revert timer is armed
    (``timer``).

    .. code:: python

        {
            "effective": {"port": "2222", "permitrootlogin": "without-password",
                          "passwordauthentication": "yes", "kbdinteractiveauthentication": "no"},
            "error": None,  # sshd -T's message when it refuses the configuration
            "drop_in": "PasswordAuthentication no\\n",
            "pending": [],  # "kept", "timer": a change not confirmed yet
        }

    ``sshd -T`` prints ``without-password`` for ``prohibit-password`` (the same setting). One command.
    """

    @staticmethod
    def default() -> None:
        return None

    def command(self, drop_in: str, kept: str = "", unit: str = "") -> str:
        pattern = "|".join(KEYS)
        pending = (f"[ -f {shlex.quote(kept)} ] || [ -f {shlex.quote(kept + '.none')} ] && echo kept; "
                   if kept else "") + (
            f"systemctl is-active --quiet {shlex.quote(unit)} 2>/dev/null && echo timer; " if unit else "")
        return (
            # sshd lives in /usr/sbin, which an ordinary user's PATH may lack
            "sshd=$(command -v sshd || { [ -x /usr/sbin/sshd ] && echo /usr/sbin/sshd; }) || exit 0; "
            f"echo '{_MARK}effective'; out=$(\"$sshd\" -T 2>&1) && "
            f"printf '%s\\n' \"$out\" | grep -E '^({pattern}) ' "
            "|| printf 'error %s\\n' \"$out\" | head -n 3; "
            f"echo '{_MARK}pending'; {pending}"
            f"echo '{_MARK}drop-in'; [ -f {shlex.quote(drop_in)} ] && "
            f"{{ echo present; cat {shlex.quote(drop_in)}; }}; true"
        )

    def process(self, output: list[str]) -> dict[str, Any] | None:
        sections = split_sections(output, _MARK)
        if not sections:
            return None
        effective: dict[str, str] = {}
        errors: list[str] = []
        for line in sections.get("effective", []):
            key, _, value = line.partition(" ")
            if key == "error":
                errors.append(value.strip())
            elif key in KEYS:
                effective.setdefault(key, value.strip())
        drop_in = sections.get("drop-in", [])
        return {
            "effective": effective,
            "error": " ".join(error for error in errors if error) or None,
            # the file's lines follow the word "present" (a file can be empty)
            "drop_in": "".join(f"{line}\n" for line in drop_in[1:]) if drop_in[:1] == ["present"] else None,
            "pending": [word for word in (line.strip() for line in sections.get("pending", []))
                        if word in ("kept", "timer")],
        }
