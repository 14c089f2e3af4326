"""Facts about automatic package updates: held packages, pending security updates, the configuration
files of unattended-upgrades / dnf-automatic, their timers, and whether a reboot is pending."""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any

from pyinfra.api import FactBase

from facts.sections import split_sections

_MARK = "### homelab-updates "
# dnf's versionlock lists: dnf4's plugin (python3-dnf-plugin-versionlock) and dnf5's own
DNF4_LOCKS = "/etc/dnf/plugins/versionlock.list"
DNF5_LOCKS = "/etc/dnf/versionlock.toml"
# `apt-get -s upgrade`: "Inst NAME [OLD] (NEW ORIGIN:RELEASE/SUITE [ARCH])"; security suites end in -security
# (several origins come comma-separated: "(NEW Ubuntu:22.04/jammy-updates, Ubuntu:22.04/jammy-security
# [amd64])"; a package counts when any of them is a security suite)
_APT_INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) (.+?) \[[^\]]*\]\)")
_NEVRA = re.compile(r"^(?P<name>.+)-(?:\d+:)?[^-]+-[^-]+\.[^.]+$")


def _rpm_name(nevra: str) -> str:
    """``openssl-libs-1:3.2.2-3.fc41.x86_64`` -> ``openssl-libs``."""
    found = _NEVRA.match(nevra)
    return found.group("name") if found else nevra


def _dnf4_locks(lines: list[str]) -> list[str]:
    """dnf4 versionlock.list: ``NAME-EPOCH:VERSION-RELEASE.*`` per lock, ``!…`` for excludes."""
    names = []
    for line in lines:
        text = line.strip()
        if not text or text.startswith(("#", "!")):
            continue
        parts = text.rsplit("-", 2)
        if len(parts) == 3:
            names.append(parts[0])
    return names


def _dnf5_locks(lines: list[str]) -> list[str]:
    """dnf5 versionlock.toml: ``[[packages]] name = …`` whose conditions lock a version (``=``)."""
    try:
        document = tomllib.loads("\n".join(lines))
    except tomllib.TOMLDecodeError:
        return []
    names = []
    for entry in document.get("packages") or []:
        conditions = entry.get("conditions") or []
        if entry.get("name") and all(c.get("comparator") == "=" for c in conditions):
            names.append(entry["name"])
    return names


class AutomaticUpdates(FactBase[dict[str, Any]]):
    """
    Returns the state of automatic updates on the host, read in one command: held packages,
    pending security updates, the given configuration files' SHA1 and mode, the given timers, and
    whether a reboot is pending.

    + manager: ``apt`` or ``dnf``
    + files: configuration files to report (absent ones are left out)
    + timers: systemd timers to report

    .. code:: python

        {
            "held": ["containerd", "docker.io", "runc"],
            "security": ["libssl3", "openssl"],  # None: not readable (no package lists / metadata cache)
            "files": {"/etc/apt/apt.conf.d/52homelab-security-updates": {"sha1": "…", "mode": 644}},
            "timers": {"apt-daily-upgrade.timer": {"enabled": "enabled", "active": "active"}},
            "reboot_required": False,  # None: unknown
        }

    ``held``: ``apt-mark showhold`` (apt), or the names locked by ``dnf versionlock`` in dnf4's or
    dnf5's list (dnf). ``security``: the packages an upgrade would take from a security suite
    (``apt-get -s upgrade``, the lists as last refreshed; held packages are not among them; ``None``
    without package lists), or the packages named by the security advisories dnf has cached
    (``dnf -C updateinfo list --security``; ``None`` without a metadata cache).
    ``reboot_required``: ``/var/run/reboot-required`` (apt), or a newer kernel installed than the
    one running (dnf).
    """

    def command(self, manager: str, files: list[str] | tuple[str, ...] = (),
                timers: list[str] | tuple[str, ...] = ()) -> str:
        paths = " ".join(shlex.quote(path) for path in files) or "''"
        units = " ".join(shlex.quote(timer) for timer in timers)
        parts = [
            f"echo '{_MARK}files'; for f in {paths}; do [ -f \"$f\" ] || continue; "
            "echo \"$(sha1sum < \"$f\" | cut -d' ' -f1) $(stat -c %a \"$f\") $f\"; done",
        ]
        if units:
            parts.append(f"echo '{_MARK}timers'; for t in {units}; do "
                         "echo \"$t $(systemctl is-enabled \"$t\" 2>/dev/null || true) "
                         "$(systemctl is-active \"$t\" 2>/dev/null || true)\"; done")
        if manager == "dnf":
            parts += [
                f"echo '{_MARK}dnf4-locks'; cat {DNF4_LOCKS} 2>/dev/null",
                f"echo '{_MARK}dnf5-locks'; cat {DNF5_LOCKS} 2>/dev/null",
                f"echo '{_MARK}security'; dnf -C -q updateinfo list --security 2>/dev/null "
                f"|| echo '{_MARK}unknown'",
                f"echo '{_MARK}kernel'; uname -r; rpm -q kernel-core kernel "
                "--qf '%{INSTALLTIME} %{VERSION}-%{RELEASE}.%{ARCH}\\n' 2>/dev/null | grep -v ' is not ' "
                "| sort -n | tail -1",
            ]
        else:
            parts += [
                f"echo '{_MARK}held'; apt-mark showhold 2>/dev/null",
                # no package lists (never refreshed, or cleaned): what is pending is unknown
                f"echo '{_MARK}security'; if ls /var/lib/apt/lists/ 2>/dev/null | grep -q '_Packages'; then "
                "apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | grep '^Inst '; "
                f"else echo '{_MARK}unknown'; fi",
                f"echo '{_MARK}reboot'; [ -f /var/run/reboot-required ] && echo required",
            ]
        return "; ".join(parts) + "; true"

    @staticmethod
    def default() -> dict[str, Any]:
        return {"held": [], "security": None, "files": {}, "timers": {}, "reboot_required": None}

    def process(self, output: list[str]) -> dict[str, Any]:
        sections = split_sections(output, _MARK)
        found = self.default()
        for line in sections.get("files", []):
            digest, mode, path = (line.split(" ", 2) + ["", ""])[:3]
            if path and mode.isdigit():
                found["files"][path] = {"sha1": digest, "mode": int(mode)}
        for line in sections.get("timers", []):
            name, enabled, active = (line.split() + ["", "", ""])[:3]
            found["timers"][name] = {"enabled": enabled or "not-found", "active": active or "inactive"}
        if "held" in sections:  # apt
            found["held"] = sorted({line.strip() for line in sections["held"] if line.strip()})
            if "unknown" not in sections:
                found["security"] = sorted({
                    match.group(1) for line in sections.get("security", [])
                    if (match := _APT_INST.match(line)) and any(
                        origin.strip().split("/")[-1].endswith("-security")
                        for origin in match.group(3).split(","))
                })
            found["reboot_required"] = "required" in [line.strip() for line in sections.get("reboot", [])]
        else:  # dnf
            found["held"] = sorted(set(_dnf4_locks(sections.get("dnf4-locks", [])))
                                   | set(_dnf5_locks(sections.get("dnf5-locks", []))))
            if "unknown" not in sections:
                found["security"] = sorted({_rpm_name(nevra) for nevra in _dnf_advisory_packages(
                    sections.get("security", []))})
            kernel = [line.strip() for line in sections.get("kernel", []) if line.strip()]
            if len(kernel) == 2:
                found["reboot_required"] = kernel[1].split()[-1] != kernel[0]
        return found


def _dnf_advisory_packages(lines: list[str]) -> list[str]:
    """The package column of ``dnf updateinfo list``: dnf4 prints ``ADVISORY TYPE/SEV NEVRA``, dnf5 a
    table ``Name Type Severity Package Issued`` (its header left out)."""
    packages = []
    for line in lines:
        columns = line.split()
        if not columns or columns[0] == "Name":
            continue
        if len(columns) == 3:
            packages.append(columns[2])
        elif len(columns) >= 5:
            packages.append(columns[3])
    return packages
