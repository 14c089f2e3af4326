"""The backup settings: absent means no backups; a repository needs its password (and an SSH key for
sftp:); bad values name the setting, the value and what is expected; the password is never shown."""

from __future__ import annotations

import subprocess

import pytest

from deploys.library.catalog import BackupClass
from deploys.library.settings import SettingsError, load_settings, private_key_problem, sftp_target

GOOD = {
    "domain": "home.example.com",
    "tailscale_allowed_ips": "100.64.0.0/10",
    "pihole_password": "pihole-secret-value",
    "npm_admin_email": "admin@home.example.com",
    "npm_admin_password": "npm-secret-value",
    "open_webui_admin_email": "admin@home.example.com",
    "open_webui_admin_password": "webui-secret-value",
}
PASSWORD = "backup-secret-value"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("HOMELAB_"):
            monkeypatch.delenv(key)


def load(**overrides):
    return load_settings({**GOOD, **overrides}, env_file=None)


def problems(**overrides) -> list[str]:
    with pytest.raises(SettingsError) as info:
        load(**overrides)
    assert PASSWORD not in str(info.value)
    return info.value.problems


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    plain, locked = folder / "plain", folder / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(plain)], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "a passphrase", "-f", str(locked)], check=True)
    return {"plain": plain, "locked": locked, "public": folder / "plain.pub"}


def test_defaults_mean_no_backups_daily_and_the_issue_retention():
    settings = load()
    assert settings.backups is False and settings.backup_repository is None
    assert settings.backup_schedule == "daily"
    keep = (settings.backup_keep_daily, settings.backup_keep_weekly, settings.backup_keep_monthly)
    assert keep == (7, 4, 6)
    assert settings.backup_classes == [BackupClass.CRITICAL, BackupClass.HIGH, BackupClass.MEDIUM]
    assert settings.backup_max_age_hours == 48


def test_a_repository_needs_its_password():
    (problem,) = problems(backup_repository="/mnt/backup/restic")
    assert problem.startswith("HOMELAB_BACKUP_PASSWORD: required while HOMELAB_BACKUP_REPOSITORY is set")
    settings = load(backup_repository="/mnt/backup/restic", backup_password=PASSWORD)
    assert settings.backups and settings.backup_password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(settings)


def test_a_password_without_a_repository_is_named():
    (problem,) = problems(backup_password=PASSWORD)
    assert problem.startswith("HOMELAB_BACKUP_PASSWORD: given without HOMELAB_BACKUP_REPOSITORY")


S3_KEYS = "AWS_ACCESS_KEY_ID=AKIAHOMELABTEST AWS_SECRET_ACCESS_KEY=s3-secret-value/abc+def"
B2_KEYS = "B2_ACCOUNT_ID=0012ab B2_ACCOUNT_KEY=b2-secret-value"
AZURE_KEYS = "AZURE_ACCOUNT_NAME=homelab\nAZURE_ACCOUNT_KEY=azure-secret-value"


@pytest.mark.parametrize("repository, extra", [
    ("/mnt/backup/restic", {}), ("sftp:backup@nas.lan:/srv/restic", {"key": True}),
    ("sftp://backup@nas.lan:2222//srv/restic", {"key": True}), ("rest:https://backup.lan:8000/homelab", {}),
    ("s3:s3.amazonaws.com/bucket/homelab", {"backup_credentials": S3_KEYS}),
    ("b2:bucket:homelab", {"backup_credentials": B2_KEYS}),
    ("azure:homelab:/restic", {"backup_credentials": AZURE_KEYS}),
])
def test_repositories_restic_knows_are_accepted(repository, extra, keys):
    extra = dict(extra)
    if extra.pop("key", False):
        extra["backup_ssh_key"] = str(keys["plain"])
    settings = load(backup_repository=repository, backup_password=PASSWORD, **extra)
    assert settings.backup_repository == repository


def credential_problems(repository: str, credentials: str | None) -> list[str]:
    extra = {} if credentials is None else {"backup_credentials": credentials}
    with pytest.raises(SettingsError) as info:
        load(backup_repository=repository, backup_password=PASSWORD, **extra)
    for secret in ("s3-secret-value", "b2-secret-value", "azure-secret-value", "AKIAHOMELABTEST", "hunter2"):
        assert secret not in str(info.value)
    return info.value.problems


def test_s3_b2_and_azure_need_their_credentials_and_name_what_is_missing():
    (problem,) = credential_problems("s3:s3.amazonaws.com/bucket", None)
    assert problem == ("HOMELAB_BACKUP_CREDENTIALS: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY required "
                       "with the s3 repository 's3:s3.amazonaws.com/bucket' (NAME=VALUE pairs separated by "
                       "spaces or line breaks)")
    (problem,) = credential_problems("s3:s3.amazonaws.com/bucket", "AWS_ACCESS_KEY_ID=AKIAHOMELABTEST")
    assert "AWS_SECRET_ACCESS_KEY required" in problem and "AWS_ACCESS_KEY_ID," not in problem
    (problem,) = credential_problems("b2:bucket:homelab", "B2_ACCOUNT_ID=0012ab")
    assert "B2_ACCOUNT_KEY required with the b2 repository" in problem
    (problem,) = credential_problems("azure:homelab:/restic", "AZURE_ACCOUNT_NAME=homelab")
    assert "AZURE_ACCOUNT_KEY or AZURE_ACCOUNT_SAS required with the azure repository" in problem


def test_credentials_another_backend_reads_are_named_and_the_allowed_listed():
    (problem,) = credential_problems("b2:bucket:homelab", f"{B2_KEYS} AWS_ACCESS_KEY_ID=AKIAHOMELABTEST")
    assert problem == ("HOMELAB_BACKUP_CREDENTIALS: AWS_ACCESS_KEY_ID not read by restic's b2 backend; "
                       "expected B2_ACCOUNT_ID, B2_ACCOUNT_KEY")


def test_credentials_without_a_backend_that_reads_them_are_refused():
    (problem,) = credential_problems("/mnt/backup/restic", S3_KEYS)
    assert problem == ("HOMELAB_BACKUP_CREDENTIALS: only used with an s3:, b2:, azure: or rest: repository, "
                       "not with '/mnt/backup/restic': leave it out")
    with pytest.raises(SettingsError) as info:
        load(backup_credentials=S3_KEYS)
    assert info.value.problems == ["HOMELAB_BACKUP_CREDENTIALS: given without HOMELAB_BACKUP_REPOSITORY: "
                                   "set the repository too, or leave it out"]


@pytest.mark.parametrize("credentials, expected", [
    ("AWS_ACCESS_KEY_ID", "pair 1 is not NAME=VALUE"),
    ("AWS_ACCESS_KEY_ID=AKIAHOMELABTEST aws_secret=s3-secret-value", "pair 2 is not NAME=VALUE"),
    ("AWS_ACCESS_KEY_ID=AKIAHOMELABTEST AWS_ACCESS_KEY_ID=AKIAHOMELABTEST",
     "AWS_ACCESS_KEY_ID is given twice"),
    ("AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY=s3-secret-value", "AWS_ACCESS_KEY_ID is empty"),
    ("AWS_ACCESS_KEY_ID=AKIAHOMELABTEST AWS_SECRET_ACCESS_KEY=s3-secret-value'x",
     "AWS_SECRET_ACCESS_KEY's value holds a quote"),
    ("AWS_ACCESS_KEY_ID=AKIAHOMELABTEST AWS_SECRET_ACCESS_KEY=change-me",
     "AWS_SECRET_ACCESS_KEY is a placeholder"),
])
def test_malformed_credentials_are_refused_by_name_never_by_value(credentials, expected):
    (problem,) = credential_problems("s3:s3.amazonaws.com/bucket", credentials)
    assert problem.startswith("HOMELAB_BACKUP_CREDENTIALS (from host data `backup_credentials`): "
                              "(secret, not shown) is not valid: "), problem
    assert expected in problem


def test_a_rest_server_takes_user_and_password_from_the_credentials_never_from_the_url():
    (problem,) = credential_problems("rest:https://bob:hunter2@backup.lan:8000/", None)
    assert "'rest:https://bob:***@backup.lan:8000/' is not valid: expected no password in the URL" in problem
    (problem,) = credential_problems("rest:https://bob:pa/ss@backup.lan:8000/", None)  # a '/' in it
    assert "'rest:https://bob:***@backup.lan:8000/' is not valid" in problem and "pa/ss" not in problem
    (problem,) = credential_problems("rest:https://bob@backup.lan:8000/",
                                     "RESTIC_REST_USERNAME=bob RESTIC_REST_PASSWORD=hunter2")
    assert "names a user already: give the user only as RESTIC_REST_USERNAME" in problem
    (problem,) = credential_problems("rest:https://backup.lan:8000/", "RESTIC_REST_USERNAME=bob")
    assert "RESTIC_REST_USERNAME and RESTIC_REST_PASSWORD go together" in problem
    settings = load(backup_repository="rest:https://backup.lan:8000/", backup_password=PASSWORD,
                    backup_credentials="RESTIC_REST_USERNAME=bob RESTIC_REST_PASSWORD=hunter2")
    assert settings.backup_backend_environment() == {
        "RESTIC_REST_USERNAME": "bob", "RESTIC_REST_PASSWORD": "hunter2"
    }


@pytest.mark.parametrize("repository", ["gs:bucket:/restic", "swift:box:/restic", "rclone:remote:restic"])
def test_backends_whose_credentials_live_in_files_are_refused(repository):
    (problem,) = problems(backup_repository=repository, backup_password=PASSWORD)
    assert "restic backends: azure, b2, local, rest, s3, sftp" in problem


@pytest.mark.parametrize("repository, expected", [
    ("backups/restic", "expected an absolute local path"),
    ("ftp:host:/x", "restic backends: azure, b2"),
    ("/mnt/my backup", "without whitespace, quotes, '$'"),
    ("/mnt/$HOME/x", "without whitespace, quotes, '$'"),
    ("/tmp/restic", "/tmp/restic is under /tmp, which does not keep data"),
    ("sftp:nas.lan", "expected sftp:user@host:/path"),
])
def test_bad_repositories_are_refused_naming_setting_value_and_form(repository, expected):
    (problem,) = problems(backup_repository=repository, backup_password=PASSWORD)
    prefix = "HOMELAB_BACKUP_REPOSITORY (from host data `backup_repository`): "
    assert problem.startswith(f"{prefix}{repository!r} is not valid: "), problem
    assert expected in problem


def test_a_repository_on_the_data_it_keeps_is_refused():
    (problem,) = problems(backup_repository="/cold-storage/restic", backup_password=PASSWORD)
    assert "overlaps the cold-storage path /cold-storage" in problem


def test_sftp_needs_a_key_without_passphrase_and_only_sftp_takes_one(keys):
    sftp = {"backup_repository": "sftp:backup@nas.lan:/srv/restic", "backup_password": PASSWORD}
    (problem,) = problems(**sftp)
    assert problem.startswith("HOMELAB_BACKUP_SSH_KEY: required with the sftp repository")
    (problem,) = problems(**sftp, backup_ssh_key=str(keys["locked"]))
    assert "the key has a passphrase: the backup timer cannot type it" in problem
    (problem,) = problems(**sftp, backup_ssh_key=str(keys["public"]))
    assert "expected a private key file" in problem
    (problem,) = problems(**sftp, backup_ssh_key="/nonexistent/key")
    assert "there is no file there" in problem
    (problem,) = problems(backup_repository="/mnt/b", backup_password=PASSWORD,
                          backup_ssh_key=str(keys["plain"]))
    assert "only used with an sftp: repository" in problem
    key_text = keys["plain"].read_text()
    assert private_key_problem(key_text) is None
    assert key_text.splitlines()[1] not in str(problems(**sftp, backup_ssh_key=str(keys["locked"])))


def test_sftp_targets():
    assert sftp_target("sftp:backup@nas:/srv/r") == ("backup@nas", None, "/srv/r")
    assert sftp_target("sftp://backup@nas:2222//srv/r") == ("backup@nas", 2222, "//srv/r")
    assert sftp_target("sftp://backup@nas/srv/r") == ("backup@nas", None, "/srv/r")
    assert sftp_target("/srv/r") is None


def test_classes_schedule_retention_and_age():
    settings = load(backup_classes="LOW, critical,low")
    assert settings.backup_classes == [BackupClass.CRITICAL, BackupClass.LOW]
    (problem,) = problems(backup_classes="critical,none,logs")
    assert problem.startswith("HOMELAB_BACKUP_CLASSES (from host data `backup_classes`): "
                              "'critical,none,logs' is not valid: ")
    assert "unknown backup class(es) none, logs; expected a comma-separated subset of critical" in problem
    assert load(backup_schedule="*-*-* 03:30:00").backup_schedule == "*-*-* 03:30:00"
    (problem,) = problems(backup_schedule="daily\nExecStart=/bin/evil")
    assert "expected a systemd OnCalendar expression" in problem
    (problem,) = problems(backup_repository="/mnt/b", backup_password=PASSWORD, backup_keep_daily=0,
                          backup_keep_weekly=0, backup_keep_monthly=0)
    assert "all 0: expected at least one above 0" in problem
    (problem,) = problems(backup_max_age_hours=0)
    assert problem.startswith("HOMELAB_BACKUP_MAX_AGE_HOURS")


def test_a_placeholder_or_multi_line_password_is_refused_without_showing_it():
    for value in ("change-me", "good\nsecond-line"):
        (problem,) = problems(backup_repository="/mnt/b", backup_password=value)
        assert problem.startswith("HOMELAB_BACKUP_PASSWORD (from host data `backup_password`): "
                                  "(secret, not shown) is not valid")
