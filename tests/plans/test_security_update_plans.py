"""Security updates, GPU-safe (deploys/library/security_steps.py), planned against `@fake` hosts.

The host's answer to the one updates read (facts.updates.AutomaticUpdates) is the real Debian 12 capture
(tests/facts/updates.AutomaticUpdates/recorded-debian12-*) or, for Fedora and RHEL, the documented formats
(documented-*); package lists as in test_existing_installations.
"""

from __future__ import annotations

import json

from harness import DEBIAN_12, EXECUTED, FEDORA_41, ROOT, os_release, os_release_file, plan

from deploys.library.security_steps import APT_CONFIG, DNF_CONFIG, DNF_TIMER_DROPIN

TAG = "deploys/security_updates.py"
INFRA = "deploys/infrastructure.py"
FACTS = ROOT / "tests/facts/updates.AutomaticUpdates"
MARK = "### homelab-updates"
HOLD_ENGINE = "Security updates | Hold containerd docker.io runc (no NVIDIA driver package installed)"
CONFIG = "Security updates | unattended-upgrades: security updates only, reboot policy"
FEDORA_40 = os_release('NAME="Fedora Linux"\nVERSION="40 (Server Edition)"\nID=fedora\nVERSION_ID=40\n'
                       'PRETTY_NAME="Fedora Linux 40 (Server Edition)"')
H200 = json.loads((ROOT / "tests/facts/gpu.NvidiaGpus/recorded-h200-fact-command.json").read_text())["output"]
ENGINE = (("docker.io", "20.10.24+dfsg1-1+deb12u1"), ("containerd", "1.6.20~ds1-1+deb12u3"),
          ("runc", "1.1.5+ds1-1+deb12u1"))
UPGRADES = ("unattended-upgrades", "2.9.1+nmu3")
DRIVER = (("nvidia-driver", "535.216.03-1"), ("nvidia-kernel-dkms", "535.216.03-1"),
          ("libnvidia-ml1", "535.216.03-1"), ("libcuda1", "535.216.03-1"),
          ("nvidia-container-toolkit", "1.17.3-1"), ("nvidia-container-toolkit-base", "1.17.3-1"),
          ("libnvidia-container-tools", "1.17.3-1"), ("libnvidia-container1", "1.17.3-1"))


def recorded(name: str) -> list[str]:
    return json.loads((FACTS / f"{name}.json").read_text())["output"]


def dpkg(*packages: tuple[str, str]) -> list[str]:
    return [f"ii  {name}  {version}  amd64  {name}" for name, version in packages]


def debian(state: str = "package-defaults", packages=(*ENGINE, ("bash", "5.2.15-2+b7")), release=DEBIAN_12,
           **more) -> dict:
    return {"ls -pdL *-release": release, "uname -m": "x86_64", "dpkg -l": dpkg(*packages),
            MARK: recorded(f"recorded-debian12-{state}"), **more}


def fedora(installed=(), release=FEDORA_41, updates: list[str] | None = None) -> dict:
    return {"ls -pdL *-release": release, "uname -m": "x86_64", "rpm --queryformat": list(installed),
            MARK: updates if updates is not None else [f"{MARK} files", f"{MARK} timers"]}


def upload(commands: list[str]) -> str:
    (body,) = [command for command in commands if command.startswith("upload ")]
    return body.split(":\n", 1)[1]


def ours(ops: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: found for name, found in ops.items() if name.startswith("Security updates | ") and found}


# -- Debian 12 (recorded) ---------------------------------------------------------------------------
def test_debian_holds_the_installed_engine_installs_unattended_upgrades_security_only():
    ops = ours(plan(TAG, debian()))
    assert list(ops) == [
        HOLD_ENGINE,
        "Security updates | Install unattended-upgrades",
        CONFIG,
    ]
    (hold,) = ops[HOLD_ENGINE]
    assert hold.endswith("[ $# -eq 0 ] || apt-mark hold \"$@\"")
    assert "dpkg-query -W" in hold and "containerd docker.io runc" in hold
    config = upload(ops[CONFIG])
    assert "#clear Unattended-Upgrade::Origins-Pattern;" in config
    assert "#clear Unattended-Upgrade::Allowed-Origins;" in config
    patterns = [line.strip() for line in config.split("Origins-Pattern {", 1)[1].split("};")[0].splitlines()]
    assert [p for p in patterns if p] == [
        '"origin=Debian,codename=${distro_codename}-security,label=Debian-Security";'
    ]
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in config
    assert 'APT::Periodic::Unattended-Upgrade "1";' in config
    # the holds come before anything that could upgrade
    assert list(ops).index("Security updates | Install unattended-upgrades") == 1


def test_debian_deployed_plans_nothing_with_one_remote_read():
    ops = plan(TAG, debian("deployed", packages=(*ENGINE, UPGRADES)))
    assert ours(ops) == {}
    assert len([command for command in EXECUTED if MARK in command]) == 1, EXECUTED


def test_the_whole_infrastructure_tier_reads_the_updates_once():
    compose = {"docker compose version --short": "2.29.7"}
    plan(INFRA, debian("deployed", packages=(*ENGINE, UPGRADES), **compose))
    assert len([command for command in EXECUTED if MARK in command]) == 1


def test_a_reboot_time_reaches_unattended_upgrades():
    ops = ours(plan(TAG, debian("deployed", packages=(*ENGINE, UPGRADES)), {"reboot": "03:30"}))
    assert list(ops) == [CONFIG]
    config = upload(ops[CONFIG])
    assert ('Unattended-Upgrade::Automatic-Reboot "true";\n'
            'Unattended-Upgrade::Automatic-Reboot-Time "03:30";') in config


def test_a_missing_hold_is_added_alone():
    # docker.io and containerd held (recorded), runc released by hand since
    state = recorded("recorded-debian12-deployed")
    state.remove("runc")
    ops = ours(plan(TAG, {**debian("deployed", packages=(*ENGINE, UPGRADES)), MARK: state}))
    assert list(ops) == [HOLD_ENGINE]
    (hold,) = ops[HOLD_ENGINE]
    assert " runc 2>/dev/null" in hold and "docker.io" not in hold


def test_stopped_timers_are_started():
    deployed = recorded("recorded-debian12-deployed")
    state = [line.replace("enabled active", "disabled inactive") for line in deployed]
    ops = ours(plan(TAG, {**debian("deployed", packages=(*ENGINE, UPGRADES)), MARK: state}))
    assert ops["Security updates | apt-daily-upgrade.timer enabled and running"] == [
        "systemctl start apt-daily-upgrade.timer", "systemctl enable apt-daily-upgrade.timer"]
    assert "Security updates | apt-daily.timer enabled and running" in ops


def test_gpu_host_holds_the_driver_and_the_toolkit_too():
    ops = ours(plan(TAG, debian("deployed", packages=(*ENGINE, UPGRADES, *DRIVER, ("nvidia-smi", "x")))))
    (name,) = [name for name in ops if "Hold" in name]
    assert name == ("Security updates | Hold containerd docker.io libcuda1 libnvidia-container-tools "
                    "libnvidia-container1 libnvidia-ml1 nvidia-container-toolkit "
                    "nvidia-container-toolkit-base nvidia-driver nvidia-kernel-dkms nvidia-smi runc")
    (hold,) = ops[name]
    assert "libcuda1 libnvidia-container-tools" in hold and "nvidia-smi 2>/dev/null" in hold
    assert "docker.io" not in hold and "containerd" not in hold  # held already (recorded)


def test_a_first_infrastructure_run_holds_what_it_installs():
    # a bare Debian with a GPU: the toolkit is installed by this run, the engine (docker-ce) too
    ops = plan(INFRA, debian(packages=(("bash", "5.2.15-2+b7"),), **{"pyinfra-gpu": H200}),
               {"docker_source": "docker-ce"})
    (name,) = [name for name in ops if name.startswith("Security updates | Hold ")]
    held = name.removeprefix("Security updates | Hold ").split(" (")[0].split()
    assert held == ["containerd.io", "docker-ce", "docker-ce-cli", "libnvidia-container-tools",
                    "libnvidia-container1", "nvidia-container-toolkit", "nvidia-container-toolkit-base"]
    names = list(ops)
    assert names.index(name) > names.index("NVIDIA container toolkit | Install nvidia-container-toolkit")


def test_an_engine_replaced_by_this_run_is_not_named_among_the_holds():
    # docker.io with nothing running, HOMELAB_DOCKER_SOURCE=docker-ce: removed, docker-ce installed
    answers = debian(**{"docker ps --format": ["### pyinfra-docker-ps exit 0"]})
    ops = plan(INFRA, answers, {"docker_source": "docker-ce"})
    (name,) = [name for name in ops if name.startswith("Security updates | Hold ")]
    assert name == ("Security updates | Hold containerd.io docker-ce docker-ce-cli "
                    "(no NVIDIA driver package installed)")


def test_ubuntu_takes_its_security_pockets():
    ops = ours(plan(TAG, debian(release=os_release_file("documented-ubuntu-24.04"))))
    config = upload(ops[CONFIG])
    assert '"origin=Ubuntu,archive=${distro_codename}-security";' in config
    assert '"origin=UbuntuESM,archive=${distro_codename}-infra-security";' in config
    assert "Debian" not in config.split("Origins-Pattern {", 1)[1]


def test_opt_outs_plan_nothing_and_say_so():
    ops = ours(plan(TAG, debian(), {"security_updates": "false", "hold_packages": "false"}))
    assert ops == {}


def test_holds_alone_without_automatic_updates():
    ops = ours(plan(TAG, debian(), {"security_updates": "false"}))
    assert list(ops) == [HOLD_ENGINE]


# -- Fedora and RHEL (documented formats) -----------------------------------------------------------
def test_fedora_41_dnf5_locks_the_engine_and_installs_dnf_automatic_security_only():
    installed = ["moby-engine 24.0.5-4.fc41", "containerd 1.6.23-4.fc41", "bash 5.2.32-1.fc41"]
    ops = ours(plan(TAG, fedora(installed)))
    assert list(ops) == [
        "Security updates | Hold containerd moby-engine (no NVIDIA driver package installed)",
        "Security updates | Install dnf-automatic",
        "Security updates | dnf-automatic: security updates only, reboot policy",
        "Security updates | dnf-automatic.timer enabled and running",
    ]
    (hold,) = ops["Security updates | Hold containerd moby-engine (no NVIDIA driver package installed)"]
    assert hold.endswith("dnf versionlock add \"$@\"") and "rpm -q" in hold
    config = upload(ops["Security updates | dnf-automatic: security updates only, reboot policy"])
    assert "upgrade_type = security" in config and "apply_updates = yes" in config
    assert "reboot = never" in config
    assert DNF_TIMER_DROPIN not in "\n".join(c for found in ops.values() for c in found)


def test_fedora_40_dnf4_gets_the_versionlock_plugin_first():
    ops = ours(plan(TAG, fedora(["moby-engine 24.0.5-4.fc40"], release=FEDORA_40)))
    names = list(ops)
    assert names[0] == "Security updates | Install python3-dnf-plugin-versionlock"
    assert names[1] == "Security updates | Hold moby-engine (no NVIDIA driver package installed)"


def test_fedora_reboot_time_moves_the_timer_and_reboots_when_needed():
    ops = ours(plan(TAG, fedora(), {"reboot": "04:15"}))
    assert "reboot = when-needed" in upload(ops["Security updates | dnf-automatic: security updates only, "
                                                "reboot policy"])
    dropin = upload(ops["Security updates | dnf-automatic.timer: reboot time"])
    assert "OnCalendar=\nOnCalendar=*-*-* 04:15:00\n" in dropin and "RandomizedDelaySec=0" in dropin
    assert ops["Security updates | dnf-automatic.timer enabled and running"] == [
        "systemctl daemon-reload", "systemctl start dnf-automatic.timer",
        "systemctl enable dnf-automatic.timer",
    ]


def test_fedora_41_with_dnf5_plugin_automatic_installed_and_configured_plans_nothing():
    from io import StringIO

    from pyinfra.api.util import get_file_sha1

    from deploys.library.security_steps import dnf_config
    from deploys.library.settings import HomelabSettings

    digest = get_file_sha1(StringIO(dnf_config(HomelabSettings.model_construct(reboot="never"))))
    state = [f"{MARK} files", f"{digest} 644 {DNF_CONFIG}", f"{MARK} timers",
             "dnf-automatic.timer enabled active", f"{MARK} dnf5-locks",
             *recorded("documented-fedora41-dnf5-versionlock")[6:18]]
    ops = ours(plan(TAG, fedora(["docker-ce 27.3.1-1.fc41", "dnf5-plugin-automatic 5.2.6.2-1.fc41"],
                                updates=state)))
    assert ops == {}


def test_rhel_9_uses_dnf4_and_dnf_automatic():
    ops = ours(plan(TAG, fedora(["docker-ce 27.3.1-1.el9", "containerd.io 1.7.22-3.1.el9"],
                                release=os_release_file("documented-rhel-9.4"))))
    assert list(ops)[:3] == [
        "Security updates | Install python3-dnf-plugin-versionlock",
        "Security updates | Hold containerd.io docker-ce (no NVIDIA driver package installed)",
        "Security updates | Install dnf-automatic",
    ]


def test_apt_config_path_sorts_after_the_packages_own():
    # apt reads apt.conf.d in order: ours must come after 50unattended-upgrades to clear its origins
    assert APT_CONFIG.rsplit("/", 1)[1] > "50unattended-upgrades"
