"""Tier 1's `backup` row, from the recorded restic facts: FAIL when the repository refuses the password or
cannot be opened, WARN when the last good backup is older than HOMELAB_BACKUP_MAX_AGE_HOURS or never ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploys.library.preflight import FAIL, PASS, WARN, Observed, check_backup
from deploys.library.settings import load_settings

FACTS = Path(__file__).resolve().parents[1] / "facts"
BASE = {
    "domain": "home.example.com",
    "tailscale_allowed_ips": "100.64.0.0/10",
    "pihole_password": "pihole-pw-1",
    "npm_admin_email": "a@home.example.com",
    "npm_admin_password": "npm-secret-value",
    "open_webui_admin_email": "admin@home.example.com",
    "open_webui_admin_password": "webui-secret-value",
}
BACKUPS = {"backup_repository": "/mnt/backup/restic", "backup_password": "backup-secret-value"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("HOMELAB_"):
            monkeypatch.delenv(key)


def recorded(fact: str, case: str) -> dict:
    return json.loads((FACTS / f"restic.{fact}" / f"recorded-{case}.json").read_text())["fact"]


def observed(repository: str, status: dict | None = None, **settings) -> Observed:
    return Observed(
        host="h",
        settings=load_settings({**BASE, **BACKUPS, **settings}, env_file=None),
        backup_repository=recorded("ResticRepository", repository),
        backup_status=status,
    )


def status(hours_ago: float | None) -> dict:
    now = 1796145195
    return {
        "now": now,
        "last_success": None if hours_ago is None else int(now - hours_ago * 3600),
        "last_check": None,
        "timer": {"active": "active", "enabled": "enabled"},
        "service_result": "success",
    }


def test_no_row_without_a_repository():
    assert check_backup(Observed(host="h", settings=load_settings(BASE, env_file=None))) is None


def test_a_refused_password_or_an_unreachable_repository_fails():
    row = check_backup(observed("wrong-password"))
    assert row.result == FAIL and "refuses the password" in row.detail
    row = check_backup(observed("sftp-unreachable"))
    assert row.result == FAIL and "unable to start the sftp session" in row.detail


def test_before_the_first_deploy_and_before_the_first_backup_it_warns():
    assert check_backup(observed("no-config")).result == WARN
    assert check_backup(observed("no-repository-yet")).result == WARN
    never = recorded("BackupStatus", "never-ran-no-systemd")
    row = check_backup(observed("opens", never))
    assert row.result == WARN and "no backup has completed yet" in row.detail


def test_the_age_of_the_last_good_backup_against_the_setting():
    row = check_backup(observed("opens", recorded("BackupStatus", "after-a-backup-no-systemd")))
    assert row.result == PASS and "last good backup 0.0 h ago (limit 48 h)" in row.detail
    assert check_backup(observed("opens", status(47))).result == PASS
    row = check_backup(observed("opens", status(49)))
    assert row.result == WARN and "49 h old, over HOMELAB_BACKUP_MAX_AGE_HOURS=48" in row.detail
    assert check_backup(observed("opens", status(13), backup_max_age_hours=12)).result == WARN
