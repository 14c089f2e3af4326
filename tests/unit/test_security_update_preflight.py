"""Tier 1 rows `security updates` and `held packages` on the recorded Debian 12 reads
(tests/facts/updates.AutomaticUpdates) and the documented Fedora ones."""

from __future__ import annotations

import copy

from test_preflight import clean_env, fact, observed, row  # noqa: F401 (clean_env: the autouse fixture)

from deploys.library.preflight import PASS, WARN, checks

DEFAULTS = fact("updates.AutomaticUpdates", "recorded-debian12-package-defaults")
DEPLOYED = fact("updates.AutomaticUpdates", "recorded-debian12-deployed")
REBOOT = fact("updates.AutomaticUpdates", "recorded-debian12-reboot-required")
ENGINE = {"docker.io": ["20.10.24"], "containerd": ["1.6.20"], "runc": ["1.1.5"]}
UPGRADES = {"unattended-upgrades": ["2.9.1+nmu3"]}
FEDORA_41 = {"name": "Fedora", "major": 41, "minor": None,
             "release_meta": {"PRETTY_NAME": "Fedora Linux 41", "ID": "fedora", "VERSION_ID": "41"}}


def rows(**changes):
    return checks(observed(**changes))


def test_before_the_deploy_both_rows_warn_and_name_what_the_deploy_does():
    found = rows(updates=DEFAULTS, packages={**ENGINE, **UPGRADES})
    updates = row(found, "updates")
    assert updates.result == WARN
    assert "not configured as the settings ask yet" in updates.detail
    assert "22 security update(s) pending: apt, libapt-pkg6.0" in updates.detail
    holds = row(found, "holds")
    assert (holds.result, holds.detail) == (
        WARN, "not held yet: containerd, docker.io, runc (the deploy holds them); nothing held")


def test_unattended_upgrades_missing_says_it_is_installed():
    assert "unattended-upgrades not installed yet" in row(rows(updates=DEFAULTS, packages=ENGINE),
                                                          "updates").detail


def test_deployed_host_passes_and_lists_pending_and_held():
    found = rows(updates=DEPLOYED, packages={**ENGINE, **UPGRADES})
    updates = row(found, "updates")
    assert updates.result == PASS
    assert updates.detail.startswith("security updates only (unattended-upgrades), reboot never; 22 security")
    assert row(found, "holds") == ("holds", PASS,
                                           "held: containerd, docker.io, runc (apt-mark showhold)")


def test_a_changed_reboot_setting_is_a_configuration_the_deploy_changes():
    found = rows(updates=DEPLOYED, packages={**ENGINE, **UPGRADES}, settings={"reboot": "03:30"})
    assert "not configured as the settings ask yet" in row(found, "updates").detail


def test_a_pending_reboot_warns_with_the_policy():
    updates = row(rows(updates=REBOOT, packages={**ENGINE, **UPGRADES}), "updates")
    assert updates.result == WARN
    assert updates.detail.endswith("a reboot is pending (HOMELAB_REBOOT=never: reboot by hand)")


def test_stopped_timer_warns():
    stopped = copy.deepcopy(DEPLOYED)
    stopped["timers"]["apt-daily-upgrade.timer"] = {"enabled": "disabled", "active": "inactive"}
    updates = row(rows(updates=stopped, packages={**ENGINE, **UPGRADES}), "updates")
    assert (updates.result, updates.detail.split(" (")[0]) == (
        WARN, "apt-daily-upgrade.timer not enabled and running: the deploy starts it")


def test_opt_outs_pass_and_still_report():
    found = rows(updates=DEFAULTS, packages=ENGINE,
                 settings={"security_updates": False, "hold_packages": False})
    assert row(found, "updates").detail.startswith(
        "not managed (HOMELAB_SECURITY_UPDATES=false); 22 security update(s) pending")
    assert row(found, "holds") == (
        "holds", PASS, "not managed (HOMELAB_HOLD_PACKAGES=false); nothing held (apt-mark showhold)")


def test_nothing_to_hold_yet():
    holds = row(rows(updates=DEFAULTS, packages={"bash": ["5.2"]}), "holds")
    assert holds.result == PASS and holds.detail.startswith("no NVIDIA driver, container toolkit or Docker")


def test_fedora_reads_versionlock_and_unknown_pending():
    locks = fact("updates.AutomaticUpdates", "documented-fedora41-dnf5-versionlock")
    installed = {"docker-ce": ["27.3.1"], "containerd.io": ["1.7"]}
    found = rows(updates=locks, distro=FEDORA_41, packages=installed)
    assert row(found, "holds") == (
        "holds", WARN, "not held yet: containerd.io (the deploy holds them); held: docker-ce")
    unknown = fact("updates.AutomaticUpdates", "documented-rhel9-no-metadata-cache")
    detail = row(rows(updates=unknown, distro=FEDORA_41, packages={}), "updates").detail
    assert detail == ("dnf-automatic not installed yet: the deploy installs it (security updates only); "
                      "pending security updates unknown (no package metadata cached yet)")


def test_no_package_lists_pending_unknown():
    lists = fact("updates.AutomaticUpdates", "recorded-debian12-no-package-lists")
    updates = row(rows(updates=lists, packages={**ENGINE, **UPGRADES}), "updates")
    assert updates == ("updates", PASS, "security updates only (unattended-upgrades), reboot never; "
                       "pending security updates unknown (no package lists yet)")


def test_not_read_no_rows():
    assert not [r for r in rows() if r.check in ("security updates", "holds")]
