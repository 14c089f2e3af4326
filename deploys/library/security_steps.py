"""Security updates, GPU-safe: unattended-upgrades (Debian, Ubuntu) or dnf-automatic (Fedora, RHEL)
installing security updates only, with the NVIDIA driver, its container toolkit and the Docker engine
held at their installed versions, and a reboot policy.

Why the holds: an unattended upgrade of the NVIDIA driver's user-space libraries while the old kernel
module stays loaded leaves every GPU container failing (``Failed to initialize NVML: Driver/library
version mismatch``) until a reboot; an upgrade of the container toolkit or the engine restarts or
changes what runs the containers. Those are updated on purpose, never at night.

Holds on both families mean the same thing, every upgrade skips the package (an automatic one and one
by hand) until it is released: ``apt-mark hold`` on Debian/Ubuntu, ``dnf versionlock`` on Fedora/RHEL.
An ``exclude=`` in dnf-automatic's own configuration was the other choice on dnf: it holds nothing
against a hand-run ``dnf upgrade`` (the same mismatch by day), and it cannot be read back and
reported the way a lock list can.

Settings (deploys/library/settings.py): HOMELAB_SECURITY_UPDATES, HOMELAB_HOLD_PACKAGES, HOMELAB_REBOOT.
One read of the host per run (facts.updates.AutomaticUpdates: holds, files, timers); nothing is
planned when the host matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.util import get_file_sha1
from pyinfra.operations import files, systemd

from deploys.library.context import HostContext, OsMatch
from deploys.library.settings import HomelabSettings
from facts.reads import read_fact
from facts.updates import AutomaticUpdates
from operations import packages, updates

# -- what is held --------------------------------------------------------------------------------
# the Docker engine as either source installs it (deploys/library/infra_steps.py), with the runtime
# packages its engine depends on
ENGINE_PACKAGES = frozenset({"docker-ce", "docker-ce-cli", "containerd.io", "docker.io", "moby-engine",
                             "containerd", "runc"})
TOOLKIT_PACKAGES = frozenset({"nvidia-container-toolkit", "nvidia-container-toolkit-base",
                              "libnvidia-container-tools", "libnvidia-container1"})
# the NVIDIA driver, as Debian (nvidia-driver, nvidia-kernel-dkms, libnvidia-*, libcuda1), Ubuntu
# (nvidia-driver-NNN, nvidia-dkms-NNN, libnvidia-compute-NNN), RPM Fusion (akmod-nvidia,
# xorg-x11-drv-nvidia*) and NVIDIA's CUDA repository (nvidia-driver*, kmod-nvidia-latest-dkms,
# cuda-drivers) name it. Ubuntu's prebuilt linux-modules-nvidia-* follow the kernel and stay unheld.
DRIVER = re.compile(r"^(?!nvidia-gpu-firmware$)(nvidia-|libnvidia-|libcuda|cuda-drivers|xorg-x11-drv-nvidia"
                    r"|akmod-nvidia|kmod-nvidia|firmware-nvidia-)")
# (Fedora's nvidia-gpu-firmware is a linux-firmware subpackage on every host, GPU or not: not held)
# what installing one of ours brings along that is held too (only the installed ones are held)
BRINGS = {
    "docker.io": ("containerd", "runc"),
    "moby-engine": ("containerd", "runc"),
    "nvidia-container-toolkit": ("nvidia-container-toolkit-base", "libnvidia-container-tools",
                                 "libnvidia-container1"),
}


def hold_candidates(names: Iterable[str]) -> list[str]:
    """The packages of ``names`` that are held: the engine's, the toolkit's, the driver's."""
    return sorted({name for name in names
                   if name in ENGINE_PACKAGES or name in TOOLKIT_PACKAGES or DRIVER.match(name)})


# -- Debian and Ubuntu: unattended-upgrades --------------------------------------------------------
# read after the package's own 50unattended-upgrades, whose origins it clears
APT_CONFIG = "/etc/apt/apt.conf.d/52homelab-security-updates"
APT_TIMERS = ("apt-daily.timer", "apt-daily-upgrade.timer")  # refresh the lists; run unattended-upgrade
# the security suites, per os-release ID (unattended-upgrades expands ${distro_codename})
SECURITY_ORIGINS = {
    "debian": ("origin=Debian,codename=${distro_codename}-security,label=Debian-Security",),
    "ubuntu": ("origin=Ubuntu,archive=${distro_codename}-security",
               "origin=UbuntuESMApps,archive=${distro_codename}-apps-security",
               "origin=UbuntuESM,archive=${distro_codename}-infra-security"),
}

# -- Fedora and RHEL: dnf-automatic --------------------------------------------------------------
DNF_CONFIG = "/etc/dnf/automatic.conf"  # dnf4's dnf-automatic and dnf5's automatic both read it
DNF_TIMER = "dnf-automatic.timer"  # shipped by both (dnf5-plugin-automatic provides dnf-automatic)
DNF_TIMER_DROPIN = f"/etc/systemd/system/{DNF_TIMER}.d/homelab-reboot-time.conf"
DNF_AUTOMATIC = ("dnf-automatic", "dnf5-plugin-automatic")  # as rpm lists it installed (dnf4, dnf5)
DNF4_VERSIONLOCK = "python3-dnf-plugin-versionlock"  # dnf5 locks on its own


def uses_dnf5(ctx: HostContext) -> bool:
    """Fedora 41 on ships dnf5 as dnf; Fedora 40, RHEL 9 and 10 and their rebuilds dnf4."""
    return ctx.os.matched == "fedora" and (ctx.os.major or 0) >= 41


def apt_config(settings: HomelabSettings, os_key: str) -> str:
    """unattended-upgrades: security suites only (the package's own list is cleared), the lists
    refreshed and the upgrade run daily (apt's timers), the reboot policy."""
    origins = "".join(f'        "{origin}";\n' for origin in SECURITY_ORIGINS[os_key])
    reboot = ('Unattended-Upgrade::Automatic-Reboot "false";\n' if settings.reboot == "never" else
              'Unattended-Upgrade::Automatic-Reboot "true";\n'
              f'Unattended-Upgrade::Automatic-Reboot-Time "{settings.reboot}";\n')
    return (
        "// Written by homelab-pyinfra (HOMELAB_SECURITY_UPDATES, HOMELAB_REBOOT): security updates only.\n"
        "// Held packages (apt-mark showhold) are never upgraded: the NVIDIA driver, its container\n"
        "// toolkit and the Docker engine are (HOMELAB_HOLD_PACKAGES).\n"
        'APT::Periodic::Update-Package-Lists "1";\n'
        'APT::Periodic::Unattended-Upgrade "1";\n'
        "#clear Unattended-Upgrade::Allowed-Origins;\n"
        "#clear Unattended-Upgrade::Origins-Pattern;\n"
        "Unattended-Upgrade::Origins-Pattern {\n" + origins + "};\n" + reboot
    )


def dnf_config(settings: HomelabSettings) -> str:
    """dnf-automatic: security updates downloaded and applied; a reboot only when one is needed and
    HOMELAB_REBOOT names a time (the timer then runs at that time: :func:`dnf_timer_dropin`)."""
    reboot = "never" if settings.reboot == "never" else "when-needed"
    return (
        "# Written by homelab-pyinfra (HOMELAB_SECURITY_UPDATES, HOMELAB_REBOOT): security updates only.\n"
        "# Locked packages (dnf versionlock list) are never upgraded: the NVIDIA driver, its container\n"
        "# toolkit and the Docker engine are (HOMELAB_HOLD_PACKAGES).\n"
        "[commands]\n"
        "upgrade_type = security\n"
        "download_updates = yes\n"
        "apply_updates = yes\n"
        f"reboot = {reboot}\n"
        "\n"
        "[emitters]\n"
        "emit_via = stdio\n"
    )


def dnf_timer_dropin(settings: HomelabSettings) -> str | None:
    """With a reboot time: dnf-automatic runs then (no random delay, no catch-up at boot), so that
    the reboot it may end with comes at that time. ``None`` with ``never``: the packaged schedule."""
    if settings.reboot == "never":
        return None
    return ("# homelab-pyinfra (HOMELAB_REBOOT): updates, and a reboot when one is needed, at this time\n"
            "[Timer]\nOnCalendar=\n"
            f"OnCalendar=*-*-* {settings.reboot}:00\n"
            "RandomizedDelaySec=0\nPersistent=false\n")


def manager_for(found: OsMatch) -> str | None:
    """apt or dnf for a supported family; ``None`` otherwise."""
    return {"debian": "apt", "rhel": "dnf"}.get(found.family)


def watched(manager: str) -> tuple[list[str], list[str]]:
    """The configuration files and timers the one read (AutomaticUpdates) reports, per manager."""
    if manager == "apt":
        return [APT_CONFIG], list(APT_TIMERS)
    return [DNF_CONFIG, DNF_TIMER_DROPIN], [DNF_TIMER]


def wanted_files(settings: HomelabSettings, found: OsMatch) -> dict[str, str | None]:
    """Each configuration file the deploy writes, with its content (``None``: absent)."""
    if manager_for(found) == "apt":
        key = found.matched if found.matched in SECURITY_ORIGINS else "debian"
        return {APT_CONFIG: apt_config(settings, key)}
    return {DNF_CONFIG: dnf_config(settings), DNF_TIMER_DROPIN: dnf_timer_dropin(settings)}


def file_matches(content: str | None, found: dict | None) -> bool:
    """A reported file (AutomaticUpdates' ``files`` entry) against the content wanted (0644)."""
    if content is None:
        return found is None
    return bool(found) and found["sha1"] == get_file_sha1(StringIO(content)) and found["mode"] == 644


def updater_installed(installed: Iterable[str], manager: str) -> bool:
    names = set(installed)
    return "unattended-upgrades" in names if manager == "apt" else bool(names & set(DNF_AUTOMATIC))


def _install(ctx: HostContext, manager: str, names: list[str]):
    ctx.installing.update(names)
    if manager == "dnf":
        return packages.packages(name=f"Install {' '.join(names)}", packages=names, manager="dnf")
    return packages.packages(name=f"Install {' '.join(names)}", packages=names, manager="apt", update=True,
                             cache_time=3600)


def _file(path: str, content: str | None, current: dict, label: str):
    """``path`` with ``content`` (0644), or absent with ``None``; planned only when it differs."""
    found = current.get(path)
    if file_matches(content, found):
        return None
    if content is None:
        return files.file(name=f"{label}: removed", path=path, present=False)
    return files.put(name=label, src=StringIO(content), dest=path, mode="644", create_remote_dir=True)


def _timer(name: str, state: dict, reload: bool = False):
    """The timer enabled and active; planned only when it is not, or after its drop-in changed."""
    if not reload and state.get("enabled") == "enabled" and state.get("active") == "active":
        return None
    return systemd.service(name=f"{name} enabled and running", service=name, running=True, enabled=True,
                           restarted=reload, daemon_reload=reload)


@deploy("Security updates")
def security_updates(ctx: HostContext):
    """Holds first (nothing is upgraded in between), then the updater, its configuration, its timers."""
    settings = ctx.settings
    manager = manager_for(ctx.os)
    if manager is None:
        return  # the infrastructure steps before this refuse such a host
    dnf5 = uses_dnf5(ctx)
    config_files, timers = watched(manager)
    state = read_fact(AutomaticUpdates, manager=manager, files=config_files, timers=timers, host=host)
    wanted = wanted_files(settings, ctx.os)

    if not settings.hold_packages:
        host.noop("package holds: not managed (HOMELAB_HOLD_PACKAGES=false); holds already placed stay")
    else:
        expected = (set(ctx.installed_packages) - ctx.removing) | ctx.installing
        expected |= {extra for name in ctx.installing for extra in BRINGS.get(name, ())}
        holds = hold_candidates(expected)
        if manager == "dnf" and not dnf5 and holds and DNF4_VERSIONLOCK not in ctx.installed_packages:
            _install(ctx, manager, [DNF4_VERSIONLOCK])
        if not holds:
            host.noop("package holds: no NVIDIA driver, container toolkit or Docker engine installed: none")
        else:
            driver = [name for name in holds if name not in ENGINE_PACKAGES | TOOLKIT_PACKAGES]
            what = "" if driver else " (no NVIDIA driver package installed)"
            updates.held(name=f"Hold {' '.join(holds)}{what}", packages=holds, manager=manager,
                         held_now=state["held"])

    if not settings.security_updates:
        host.noop("automatic updates: not managed (HOMELAB_SECURITY_UPDATES=false); the host's own "
                  "configuration is left as it is")
        return
    if not updater_installed(ctx.installed_packages, manager):
        _install(ctx, manager, ["unattended-upgrades" if manager == "apt" else "dnf-automatic"])
    if manager == "apt":
        _file(APT_CONFIG, wanted[APT_CONFIG], state["files"],
              "unattended-upgrades: security updates only, reboot policy")
        for timer in APT_TIMERS:
            _timer(timer, state["timers"].get(timer, {}))
        return
    _file(DNF_CONFIG, wanted[DNF_CONFIG], state["files"],
          "dnf-automatic: security updates only, reboot policy")
    dropin = _file(DNF_TIMER_DROPIN, wanted[DNF_TIMER_DROPIN], state["files"], f"{DNF_TIMER}: reboot time")
    _timer(DNF_TIMER, state["timers"].get(DNF_TIMER, {}), reload=dropin is not None)
