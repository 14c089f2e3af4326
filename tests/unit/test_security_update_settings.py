"""HOMELAB_SECURITY_UPDATES, HOMELAB_HOLD_PACKAGES, HOMELAB_REBOOT: safe defaults, opt-outs, and a bad
reboot time refused naming the setting, the value and what is expected."""

from __future__ import annotations

import pytest

from deploys.library.settings import SettingsError, load_settings

BASE = {
    "domain": "home.example.com", "tailscale_allowed_ips": "100.64.0.0/10", "services": "ollama",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("HOMELAB_"):
            monkeypatch.delenv(key)


def test_defaults_are_on_and_never_reboot():
    settings = load_settings(BASE, env_file=None)
    assert (settings.security_updates, settings.hold_packages, settings.reboot) == (True, True, "never")


def test_opt_outs_and_a_reboot_time():
    settings = load_settings({**BASE, "security_updates": False, "hold_packages": "false", "reboot": "03:30"},
                             env_file=None)
    assert (settings.security_updates, settings.hold_packages, settings.reboot) == (False, False, "03:30")
    assert load_settings({**BASE, "reboot": " Never "}, env_file=None).reboot == "never"


@pytest.mark.parametrize("value", ["3:30", "24:00", "03:60", "always", "03:30:00", ""])
def test_a_bad_reboot_time_names_setting_value_and_remedy(value):
    with pytest.raises(SettingsError) as error:
        load_settings({**BASE, "reboot": value}, env_file=None)
    (line,) = error.value.problems
    assert line.startswith(f"HOMELAB_REBOOT (from host data `reboot`): {value!r} is not valid: "
                           "expected never")
    assert "HH:MM such as 03:30" in line


def test_a_bad_boolean_names_the_setting():
    with pytest.raises(SettingsError) as error:
        load_settings({**BASE, "security_updates": "sometimes"}, env_file=None)
    assert error.value.problems[0].startswith("HOMELAB_SECURITY_UPDATES (from host data `security_updates`): "
                                              "'sometimes' is not valid")
