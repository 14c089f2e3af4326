"""deploys/backup.py planned against a `@fake` Debian host: the commands of a first deploy, the same
host answering as that deploy left it (no command at all), a changed password checked again, a
repository that refuses the password said in one line, and the secrets never in a command."""

from __future__ import annotations

from io import StringIO

import pytest
from harness import DEBIAN_12, EXECUTED, SETTINGS, plan
from pyinfra.api.util import get_file_sha1

from deploys.library import backup_steps
from deploys.library.settings import load_settings

PASSWORD = "backup-secret-value"
DATA = {"backup_repository": "/mnt/backup/restic", "backup_password": PASSWORD}
OPENS = ['{"version": 2, "id": "ebeb7a71", "chunker_polynomial": "23b9fef904592f"}', "### exit 0"]
REFUSES = ["Fatal: wrong password or no key found", "### exit 1"]


def fresh() -> dict:
    return {
        "ls -pdL *-release": DEBIAN_12,
        "uname -m": "x86_64",
        "cat config": ["/bin/sh: 1: restic: not found", "### restic-missing"],
    }


def _sha1(text: str) -> str:
    return get_file_sha1(StringIO(text))


def deployed(data: dict = DATA, password: str = PASSWORD) -> dict:
    """The host's answers after a first deploy with ``data`` whose password file holds ``password``."""
    settings = load_settings({**SETTINGS, **data}, env_file=None)
    services = tuple(settings.services)  # no groups in the harness inventory: every service here
    puts = {
        backup_steps.SCRIPT: (backup_steps.SCRIPT_SOURCE.read_text(), 755),
        f"{backup_steps.CONF_DIR}/backup.conf": (backup_steps.backup_conf(settings, "@fake/server"), 644),
        f"{backup_steps.CONF_DIR}/sources": (backup_steps.sources_file(settings, services), 644),
    }
    for name in (backup_steps.UNIT, backup_steps.CHECK_UNIT):
        command = "run" if name == backup_steps.UNIT else "check"
        schedule = settings.backup_schedule if name == backup_steps.UNIT else backup_steps.CHECK_SCHEDULE
        description = (
            "homelab: restic backup of the service data"
            if name == backup_steps.UNIT
            else "homelab: restic check"
        )
        puts[f"/etc/systemd/system/{name}.service"] = (backup_steps.unit(description, command), 644)
        puts[f"/etc/systemd/system/{name}.timer"] = (backup_steps.timer(description, schedule), 644)
    answers = {
        **fresh(),
        "cat config": OPENS,
        "dpkg -l": ["ii  restic  0.14.0-1+b4 amd64  backup program", "ii  sqlite3  3.40.1-2 amd64  cli"],
        # what decides whether anything is planned: facts.system.ServiceStates of the two timers,
        # Directories of the two folders, FileDigest of each file (below)
        f"LoadState {backup_steps.UNIT}.timer {backup_steps.CHECK_UNIT}.timer": [
            f"Id={backup_steps.UNIT}.timer", "ActiveState=active", "UnitFileState=enabled",
            "LoadState=loaded", "",
            f"Id={backup_steps.CHECK_UNIT}.timer", "ActiveState=active", "UnitFileState=enabled",
            "LoadState=loaded",
        ],
        f"for p in {backup_steps.CONF_DIR} {backup_steps.STATE_DIR};": [
            f"dir root root 700 0 0 {backup_steps.CONF_DIR}",
            f"dir root root 755 0 0 {backup_steps.STATE_DIR}",
        ],
        # pyinfra's systemd.service, where one is planned, reads its units itself
        "--property UnitFileState": [
            "Id=homelab-backup.timer",
            "UnitFileState=enabled",
            "",
            "Id=homelab-backup-check.timer",
            "UnitFileState=enabled",
        ],
        "--property SubState": [
            "Id=homelab-backup.timer",
            "SubState=waiting",
            "",
            "Id=homelab-backup-check.timer",
            "SubState=waiting",
        ],
    }
    for path, (content, mode) in puts.items():
        answers[f"[ -f {path} ]"] = [f"root root {mode} {_sha1(content)}"]
    for path, content in (
        (backup_steps.PASSWORD_FILE, password),
        (backup_steps.ENV_FILE, backup_steps.env_file(settings)),
    ):
        answers[f"[ -f {path} ]"] = [f"root root 600 {_sha1(content)}"]
    return answers


def commands(ops: dict[str, list[str]]) -> list[str]:
    return [command for name, found in ops.items() if name.startswith("Backup") for command in found]


def test_first_deploy_installs_configures_makes_the_repository_and_starts_the_timers():
    ops = plan("deploys/backup.py", fresh(), DATA)
    assert "install restic sqlite3" in ops["Backups | Install restic sqlite3"][-1]
    assert ops["Backups | Backup: restic repository (made once)"] == ["/usr/local/sbin/homelab-backup init"]
    env = "\n".join(ops["Backups | Backup: restic environment (0600)"])
    assert "RESTIC_REPOSITORY='/mnt/backup/restic'" in env
    assert "RESTIC_PASSWORD_FILE='/etc/homelab/backup/password'" in env
    assert "install -m 600 /dev/null /etc/homelab/backup/password" in "\n".join(
        ops["Backups | Backup: repository password (0600)"]
    )
    sources = "\n".join(ops["Backups | Backup: what is backed up"])
    # from the catalog's backup classes: critical, high, medium by default; logs and models left out
    assert "data open-webui critical /cold-storage/ai/open-webui/data" in sources
    assert (
        "data nginx-proxy-manager high /cold-storage/services/nginx-proxy/certificates/letsencrypt" in sources
    )
    assert "data pihole medium /cold-storage/services/pihole/config" in sources
    assert "data comfyui medium /cold-storage/ai/comfyui/output" in sources
    assert "pihole/logs" not in sources and "ollama" not in sources and "comfyui/models" not in sources
    assert "project open-webui /opt/homelab/open-webui" in sources
    timer = "\n".join(ops["Backups | Backup: homelab-backup.timer"])
    assert "OnCalendar=daily" in timer and "Persistent=true" in timer
    assert "OnCalendar=weekly" in "\n".join(ops["Backups | Backup: homelab-backup-check.timer"])
    assert ops["Backups | Backup: homelab-backup.timer enabled and running"] == [
        "systemctl daemon-reload",
        "systemctl start homelab-backup.timer",
        "systemctl enable homelab-backup.timer",
    ]
    assert "Backup now | Backup now: homelab-backup.service" not in ops


def test_the_password_is_only_ever_uploaded_into_its_0600_file():
    ops = plan("deploys/backup.py", fresh(), DATA)
    for name, found in ops.items():
        for command in found:
            if PASSWORD in command:
                assert name == "Backups | Backup: repository password (0600)", name
                assert command.startswith("upload /etc/homelab/backup/password:"), command


def test_a_second_deploy_changes_nothing():
    ops = plan("deploys/backup.py", deployed(), DATA)
    assert commands(ops) == [], {name: found for name, found in ops.items() if found}


def test_low_adds_the_models_and_a_schedule_reaches_the_timer():
    data = {**DATA, "backup_classes": "critical,high,medium,low", "backup_schedule": "*-*-* 03:30:00"}
    ops = plan("deploys/backup.py", deployed(), data)
    sources = "\n".join(ops["Backups | Backup: what is backed up"])
    assert "data ollama low /cold-storage/ai/ollama/models" in sources
    assert "OnCalendar=*-*-* 03:30:00" in "\n".join(ops["Backups | Backup: homelab-backup.timer"])
    assert ops["Backups | Backup: homelab-backup.timer enabled and running"] == [
        "systemctl daemon-reload",
        "systemctl restart homelab-backup.timer",
    ]
    assert ops["Backups | Backup: homelab-backup-check.timer enabled and running"] == [
        "systemctl daemon-reload"
    ]


def test_a_changed_password_is_written_and_the_repository_checked_again():
    ops = plan("deploys/backup.py", deployed(password="the-old-password"), DATA)
    assert ops["Backups | Backup: restic repository (made once)"] == ["/usr/local/sbin/homelab-backup init"]


def test_a_repository_refusing_the_password_fails_in_one_line():
    answers = {**deployed(), "cat config": REFUSES}
    ops = plan("deploys/backup.py", answers, DATA)
    (refusal,) = ops["Backups | Backup: restic repository (made once)"]
    assert refusal == "FunctionCommand"


def test_backup_now_starts_the_unit():
    ops = plan("deploys/backup.py", deployed(), {**DATA, "backup_now": "true"})
    assert ops["Backup now | Backup now: homelab-backup.service"] == [
        "systemctl start homelab-backup.service"
    ]


def test_sftp_uploads_the_key_and_pins_the_repository_host(tmp_path):
    import subprocess

    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    data = {**DATA, "backup_repository": "sftp://backup@nas.lan:2222//srv/restic", "backup_ssh_key": str(key)}
    ops = plan("deploys/backup.py", fresh(), data)
    upload = "\n".join(ops["Backups | Backup: SSH key of the sftp repository (0600)"])
    assert "install -m 600 /dev/null /etc/homelab/backup/ssh_key" in upload
    env = "\n".join(ops["Backups | Backup: restic environment (0600)"])
    assert (
        "HOMELAB_SFTP_COMMAND='ssh -i /etc/homelab/backup/ssh_key -o BatchMode=yes -o "
        "StrictHostKeyChecking=accept-new -o UserKnownHostsFile=/etc/homelab/backup/known_hosts "
        "-o ServerAliveInterval=60 -p 2222 backup@nas.lan -s sftp'"
    ) in env
    secret_line = key.read_text().splitlines()[1]
    assert all(
        secret_line not in c for c in commands(ops) if not c.startswith("upload /etc/homelab/backup/ssh_key")
    )


def test_restore_sets_up_restic_without_timers_and_restores_every_backed_up_service():
    ops = plan("deploys/restore.py", fresh(), DATA)
    assert not any("timer" in name for name in ops)
    everything = "nginx-proxy-manager, pihole, comfyui, open-webui"
    (command,) = ops[f"Restore | Restore {everything} from latest snapshot"]
    assert command == "/usr/local/sbin/homelab-backup restore nginx-proxy-manager pihole comfyui open-webui"


def test_restore_of_one_service_from_a_snapshot_over_its_data():
    snapshot = (
        '[{"time":"2026-12-01T17:12:32Z","paths":["/cold-storage/ai/open-webui/data"],"hostname":"@fake/server",'
        '"tags":["homelab","service:open-webui","class:critical"],"id":"4b3ed7752483f593","short_id":"4b3ed775"}]'
    )
    answers = {**deployed(), "snapshots --json": [snapshot, "### exit 0"]}
    data = {**DATA, "restore_snapshot": "4b3ed775", "restore_overwrite": "true"}
    ops = plan("deploys/restore.py", answers, data)
    (command,) = ops["Restore | Restore open-webui from 4b3ed775 snapshot"]
    assert command == "/usr/local/sbin/homelab-backup restore --snapshot 4b3ed775 --overwrite open-webui"


def test_restore_of_a_service_not_backed_up_here_is_refused_by_name():
    from deploys.library.errors import DeployError

    try:
        plan("deploys/restore.py", fresh(), {**DATA, "restore_services": "ollama"})
    except DeployError as error:
        assert "restore_services=ollama: ollama has no backed-up data on this host" in str(error)
    else:
        raise AssertionError("restoring ollama (models: class low, not backed up) was not refused")


def test_s3_credentials_reach_only_the_0600_environment_file():
    secret = "s3-secret-value/abc+def"
    data = {**DATA, "backup_repository": "s3:s3.eu-central-1.amazonaws.com/homelab-backups",
            "backup_credentials": f"AWS_ACCESS_KEY_ID=AKIAHOMELABTEST\nAWS_SECRET_ACCESS_KEY={secret}"}
    ops = plan("deploys/backup.py", fresh(), data)
    env = "\n".join(ops["Backups | Backup: restic environment (0600)"])
    assert "install -m 600 /dev/null /etc/homelab/backup/restic.env" in env
    assert "RESTIC_REPOSITORY='s3:s3.eu-central-1.amazonaws.com/homelab-backups'" in env
    assert "AWS_ACCESS_KEY_ID='AKIAHOMELABTEST'" in env and f"AWS_SECRET_ACCESS_KEY='{secret}'" in env
    for name, found in ops.items():
        if name != "Backups | Backup: restic environment (0600)":
            assert all(secret not in command for command in found), name


def test_a_rest_servers_user_and_password_go_into_the_url_on_the_host_only():
    data = {**DATA, "backup_repository": "rest:https://backup.lan:8000/homelab",
            "backup_credentials": "RESTIC_REST_USERNAME=homelab RESTIC_REST_PASSWORD=p@ss:w/rd%"}
    ops = plan("deploys/backup.py", fresh(), data)
    env = "\n".join(ops["Backups | Backup: restic environment (0600)"])
    assert "RESTIC_REPOSITORY='rest:https://homelab:p%40ss%3Aw%2Frd%25@backup.lan:8000/homelab'" in env
    assert "RESTIC_REST_" not in env


def _rhel_like(release: str, **more) -> dict:
    from harness import os_release_file

    return {**fresh(), "ls -pdL *-release": os_release_file(release), "rpm --queryformat": [],
            "### pyinfra-repos": [], **more}


@pytest.mark.parametrize("release", ["documented-rocky-9.4", "documented-almalinux-9.4",
                                     "documented-centos-stream-9"])
def test_rocky_alma_and_centos_get_epel_from_their_extras_before_restic(release):
    ops = plan("deploys/backup.py", _rhel_like(release), DATA)
    names = list(ops)
    assert ops["Backups | EPEL (for restic)"] == ["dnf install -y epel-release"]
    assert ops["Backups | Install restic sqlite"] == ["dnf install -y restic sqlite"]
    assert names.index("Backups | EPEL (for restic)") < names.index("Backups | Install restic sqlite")


def test_rhel_gets_epel_from_its_release_rpm_for_its_major():
    ops = plan("deploys/backup.py", _rhel_like("documented-rhel-9.4"), DATA)
    found = "\n".join(ops["Backups | EPEL (for restic)"])
    assert "https://dl.fedoraproject.org/pub/epel/epel-release-latest-9.noarch.rpm" in found
    ops = plan("deploys/backup.py", _rhel_like("documented-rhel-10.0"), DATA)
    assert "epel-release-latest-10.noarch.rpm" in "\n".join(ops["Backups | EPEL (for restic)"])


def test_epel_configured_already_or_restic_installed_plans_nothing_and_fedora_never_needs_it():
    listed = ["### pyinfra-repos /etc/yum.repos.d/epel.repo", "[epel]",
              "metalink=https://mirrors.fedoraproject.org/metalink?repo=epel-9&arch=$basearch",
              "enabled=1", ""]
    ops = plan("deploys/backup.py", _rhel_like("documented-rocky-9.4", **{"### pyinfra-repos": listed}), DATA)
    assert "Backups | EPEL (for restic)" not in ops
    assert ops["Backups | Install restic sqlite"] == ["dnf install -y restic sqlite"]
    installed = _rhel_like("documented-rocky-9.4", **{"rpm --queryformat": ["restic 0.18.1-1.el9"]})
    assert "Backups | EPEL (for restic)" not in plan("deploys/backup.py", installed, DATA)
    ops = plan("deploys/backup.py", _rhel_like("documented-fedora-41"), DATA)
    assert "Backups | EPEL (for restic)" not in ops
    assert ops["Backups | Install restic sqlite"] == ["dnf install -y restic sqlite"]


def test_a_disabled_epel_is_reported_not_installed_again():
    from deploys.library.errors import DeployError

    disabled = ["### pyinfra-repos /etc/yum.repos.d/epel.repo", "[epel]", "enabled=0", ""]
    expected = (r"EPEL, where restic comes from on Rocky Linux 9.4 \(Blue Onyx\), is configured but disabled "
                r"\(/etc/yum.repos.d/epel.repo\): enable it \(`dnf config-manager --set-enabled epel`\)")
    with pytest.raises(DeployError, match=expected):
        plan("deploys/backup.py", _rhel_like("documented-rocky-9.4", **{"### pyinfra-repos": disabled}), DATA)


def test_a_second_deploy_reads_each_subject_once_then_all_in_one_command():
    """The host (GPU, memory, release, session, packages, units), the two folders, each of the nine files
    (FileDigest), the repository, the two timers: 17 reads, none twice; the next run reads them in one."""
    first = plan("deploys/backup.py", deployed(), DATA)
    assert {name: found for name, found in first.items() if found} == {}
    assert len(EXECUTED) == len(set(EXECUTED)) == 17, EXECUTED
    assert plan("deploys/backup.py", deployed(), DATA) == first
    assert len(EXECUTED) == 1
