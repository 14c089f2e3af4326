"""Backup steps: restic, its configuration, the backup script and its timers, a backup now, a restore.

What is backed up comes from the catalog: every data folder (``Volume``) of a service placed on this
host whose backup class is in ``HOMELAB_BACKUP_CLASSES``; nothing here asks which service it handles.
The host keeps (all written by :func:`setup`):

- ``/etc/homelab/backup/restic.env`` (0600): ``RESTIC_REPOSITORY``, ``RESTIC_PASSWORD_FILE``, the cache
  folder and, for an ``sftp:`` repository, ``HOMELAB_SFTP_COMMAND`` (ssh with the uploaded key);
- ``/etc/homelab/backup/password`` and ``ssh_key`` (0600): the secrets, never on a command line;
- ``/etc/homelab/backup/backup.conf`` (the snapshots' host name, the retention) and ``sources`` (the data
  folders by service and class, each service's compose project folder);
- ``/usr/local/sbin/homelab-backup`` (``homelab-backup.sh`` next to this file), run by
  ``homelab-backup.service`` on ``homelab-backup.timer`` (``HOMELAB_BACKUP_SCHEDULE``) and by
  ``homelab-backup-check.service`` on a weekly timer (``restic check``); both log to the journal;
- ``/var/lib/homelab-backup/last-success``: epoch seconds of the last backup that completed (tiers 1, 3).
"""

from __future__ import annotations

import shlex
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import server

from deploys.library import placed
from deploys.library.catalog import CATALOG
from deploys.library.context import HostContext, listed
from deploys.library.errors import DeployError
from deploys.library.infra_steps import _packages, epel
from deploys.library.settings import HomelabSettings, sftp_target
from facts.reads import read_fact
from facts.restic import ResticSnapshots
from facts.system import FileDigest
from operations import restic

CONF_DIR = "/etc/homelab/backup"
ENV_FILE = f"{CONF_DIR}/restic.env"
PASSWORD_FILE = f"{CONF_DIR}/password"
SSH_KEY = f"{CONF_DIR}/ssh_key"
KNOWN_HOSTS = f"{CONF_DIR}/known_hosts"
STATE_DIR = "/var/lib/homelab-backup"
CACHE_DIR = "/var/cache/homelab-backup"
SCRIPT = "/usr/local/sbin/homelab-backup"
UNIT = "homelab-backup"  # .service and .timer
CHECK_UNIT = "homelab-backup-check"
CHECK_SCHEDULE = "weekly"
SCRIPT_SOURCE = Path(__file__).with_name("homelab-backup.sh")
# the packages: restic (Fedora and Debian/Ubuntu package it; RHEL and its rebuilds from EPEL, see
# infra_steps.epel) and the sqlite3 command for SQLite's online backup
PACKAGES = {"debian": ["restic", "sqlite3"], "rhel": ["restic", "sqlite"]}


def backed_up(settings: HomelabSettings, services: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(service, class, absolute path) of every data folder backed up on a host running ``services``:
    the catalog's volumes whose backup class is in HOMELAB_BACKUP_CLASSES."""
    root = PurePosixPath(settings.cold_storage_path)
    classes = {str(item) for item in settings.backup_classes}
    return [
        (service, str(volume.backup), str(root / volume.source))
        for service in services
        for volume in CATALOG[service].volumes
        if str(volume.backup) in classes
    ]


def sources_file(settings: HomelabSettings, services: tuple[str, ...]) -> str:
    folders = backed_up(settings, services)
    lines = [f"# written by homelab-pyinfra: what {SCRIPT} backs up (from the service catalog)",
             f"root {settings.cold_storage_path}"]
    lines += [f"data {service} {backup_class} {path}" for service, backup_class, path in folders]
    for service in dict.fromkeys(service for service, _, _ in folders):
        lines.append(f"project {service} {CATALOG[service].project_dir}")
    return "\n".join(lines) + "\n"


def sftp_command(settings: HomelabSettings) -> str | None:
    """The ssh command restic runs for an ``sftp:`` repository: the uploaded key, no prompt ever, the
    repository host's key learnt on first contact and pinned in its own known_hosts file."""
    target = sftp_target(settings.backup_repository or "")
    if target is None:
        return None
    where, port, _ = target
    words = ["ssh", "-i", SSH_KEY, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
             "-o", f"UserKnownHostsFile={KNOWN_HOSTS}", "-o", "ServerAliveInterval=60"]
    if port is not None:
        words += ["-p", str(port)]
    return " ".join([*words, where, "-s", "sftp"])


def repository_url(settings: HomelabSettings) -> str:
    """The repository as restic is given it on the host: a ``rest:`` server's user and password from
    the credentials go into its URL (percent-encoded), which every restic version reads."""
    repository = settings.backup_repository or ""
    credentials = settings.backup_backend_environment()
    user, password = credentials.get("RESTIC_REST_USERNAME"), credentials.get("RESTIC_REST_PASSWORD")
    if settings.backup_scheme != "rest" or user is None or password is None:
        return repository
    scheme, slashes, rest = repository[len("rest:"):].partition("://")
    return f"rest:{scheme}{slashes}{quote(user, safe='')}:{quote(password, safe='')}@{rest}"


def env_file(settings: HomelabSettings) -> str:
    """restic's environment on the host (0600): the repository, the password file, the cache and the
    backend's credentials (values single-quoted: the settings refuse quotes and control characters)."""
    lines = [
        "# written by homelab-pyinfra (deploys/backup.py)",
        f"RESTIC_REPOSITORY='{repository_url(settings)}'",
        f"RESTIC_PASSWORD_FILE='{PASSWORD_FILE}'",
        f"RESTIC_CACHE_DIR='{CACHE_DIR}'",
    ]
    command = sftp_command(settings)
    if command:
        lines.append(f"HOMELAB_SFTP_COMMAND='{command}'")
    lines += [
        f"{name}='{value}'" for name, value in settings.backup_backend_environment().items()
        if not name.startswith("RESTIC_REST_")  # in the URL above
    ]
    return "\n".join(lines) + "\n"


def backup_conf(settings: HomelabSettings, host_name: str) -> str:
    return (
        "# written by homelab-pyinfra (deploys/backup.py)\n"
        f"HOMELAB_BACKUP_HOST='{host_name}'\n"
        f"KEEP_DAILY={settings.backup_keep_daily}\n"
        f"KEEP_WEEKLY={settings.backup_keep_weekly}\n"
        f"KEEP_MONTHLY={settings.backup_keep_monthly}\n"
    )


def unit(description: str, command: str) -> str:
    return (
        "[Unit]\n"
        f"Description={description}\n"
        "Wants=network-online.target\n"
        "After=network-online.target docker.service\n"
        "\n[Service]\n"
        "Type=oneshot\n"
        f"ExecStart={SCRIPT} {command}\n"
        "Nice=10\n"
        "IOSchedulingClass=idle\n"
    )


def timer(description: str, schedule: str) -> str:
    return (
        "[Unit]\n"
        f"Description={description}\n"
        "\n[Timer]\n"
        f"OnCalendar={schedule}\n"
        "Persistent=true\n"
        "RandomizedDelaySec=10min\n"
        "\n[Install]\n"
        "WantedBy=timers.target\n"
    )


def _put(path: str, content: str, mode: str, label: str):
    return placed.put_file(path, content, mode, label)


def _password_changes(settings: HomelabSettings) -> bool:
    """Whether this run writes another password (or repository) than the host has: the repository is
    then checked again when the run gets there (a changed password must open it, or fail in one line)."""
    wanted = {
        PASSWORD_FILE: settings.backup_password.get_secret_value() if settings.backup_password else "",
        ENV_FILE: env_file(settings),
    }
    for path, content in wanted.items():
        current = read_fact(FileDigest, path=path, host=host)
        if current is None or current.get("sha1") != placed.sha1(content):
            return True
    return False


def require_configured(ctx: HostContext) -> None:
    if not ctx.settings.backups:
        raise DeployError(
            f"{host.name}: no backup repository: set HOMELAB_BACKUP_REPOSITORY and HOMELAB_BACKUP_PASSWORD "
            "(README: Backups)"
        )


@deploy("Backups")
def setup(ctx: HostContext, timers: bool = True):
    """restic, the repository (made once), the configuration, the script and, with ``timers``, the
    backup timer and the weekly check."""
    require_configured(ctx)
    settings = ctx.settings
    family = ctx.family if ctx.family in PACKAGES else "debian"
    epel(ctx, ["restic"])
    _packages(ctx, PACKAGES[family])
    placed.folders({CONF_DIR: ("700", "Backup configuration folder"),
                    STATE_DIR: ("755", "Backup state folder")})
    recheck = _password_changes(settings)
    assert settings.backup_password is not None  # required with a repository (settings)
    restic.private_file(name="Backup: repository password (0600)", path=PASSWORD_FILE,
                        content=settings.backup_password.get_secret_value())
    if settings.backup_ssh_key is not None:
        restic.private_file(name="Backup: SSH key of the sftp repository (0600)", path=SSH_KEY,
                            content=Path(settings.backup_ssh_key).read_text())
    restic.private_file(name="Backup: restic environment (0600)", path=ENV_FILE, content=env_file(settings))
    _put(SCRIPT, SCRIPT_SOURCE.read_text(), "755", "Backup: the script homelab-backup")
    _put(f"{CONF_DIR}/backup.conf", backup_conf(settings, host.name), "644",
         "Backup: host name and retention")
    _put(f"{CONF_DIR}/sources", sources_file(settings, ctx.services), "644", "Backup: what is backed up")
    restic.repository(name="Backup: restic repository (made once)", env_file=ENV_FILE, script=SCRIPT,
                      recheck=recheck)
    if not timers:
        return
    units = {
        f"{UNIT}.service": unit("homelab: restic backup of the service data", "run"),
        f"{UNIT}.timer": timer("homelab: restic backup of the service data", settings.backup_schedule),
        f"{CHECK_UNIT}.service": unit("homelab: restic check", "check"),
        f"{CHECK_UNIT}.timer": timer("homelab: restic check", CHECK_SCHEDULE),
    }
    # read now, so that --dry says what a run does: a changed timer is restarted to take its schedule
    changed = {name: placed.file_differs(f"/etc/systemd/system/{name}", content, "644")
               for name, content in units.items()}
    for name, content in units.items():
        _put(f"/etc/systemd/system/{name}", content, "644", f"Backup: {name}")
    placed.units_running([f"{UNIT}.timer", f"{CHECK_UNIT}.timer"], "Backup: {unit} enabled and running",
                         restarted=changed, daemon_reload=any(changed.values()))


@deploy("Backup before an update")
def before_update(ctx: HostContext, services: list[str]):
    """One backup before running images are replaced, through the unit (a host whose backups are not
    set up yet, e.g. enabled in this same run, says so and goes on: nothing of it is backed up yet)."""
    if not services:
        host.noop("backup before an update: no running image is replaced")
        return
    server.shell(
        name=f"Backup before the update of {', '.join(services)}: {UNIT}.service",
        commands=[
            f"if systemctl cat {UNIT}.service >/dev/null 2>&1; then systemctl start {UNIT}.service; "
            f"else echo 'no backup yet: {UNIT}.service is set up later in this run'; fi"
        ],
    )


@deploy("Backup now")
def backup_now(ctx: HostContext):
    """One backup at once, through the unit (the journal has it; a run already going is waited for)."""
    require_configured(ctx)
    server.shell(name="Backup now: homelab-backup.service", commands=[f"systemctl start {UNIT}.service"])


def restore_request(ctx: HostContext, data) -> tuple[list[str], str, bool]:
    """(services, snapshot, overwrite) from ``--data restore_services=… restore_snapshot=…
    restore_overwrite=true``, checked against what this host backs up."""
    here = list(dict.fromkeys(service for service, _, _ in backed_up(ctx.settings, ctx.services)))
    services = listed(data.get("restore_services"))
    snapshot = str(data.get("restore_snapshot") or "latest").strip()
    overwrite = str(data.get("restore_overwrite", "")).lower() in ("true", "1", "yes")
    if snapshot != "latest" and not services:
        found = read_fact(ResticSnapshots, env_file=ENV_FILE, host=host)
        match = [item for item in found["snapshots"] if str(item["id"]).startswith(snapshot)]
        if not match:
            why = found["error"] or "no snapshot has that id"
            raise DeployError(f"{host.name}: restore_snapshot={snapshot}: not found ({why}); give "
                              "restore_services=<service> with it, or pick an id from `restic snapshots`")
        services = [tag.removeprefix("service:") for tag in match[0]["tags"] if tag.startswith("service:")]
    unknown = [service for service in services if service not in here]
    if unknown:
        raise DeployError(
            f"{host.name}: restore_services={','.join(services)}: {', '.join(unknown)} has no backed-up "
            f"data on this host (backed up here: {', '.join(here) or 'nothing'}; HOMELAB_SERVICES, the "
            "groups and HOMELAB_BACKUP_CLASSES decide)"
        )
    if snapshot != "latest" and len(services) != 1:
        raise DeployError(f"{host.name}: restore_snapshot={snapshot} holds one service: give one in "
                          "restore_services")
    return services or here, snapshot, overwrite


@deploy("Restore")
def restore(ctx: HostContext, services: list[str], snapshot: str, overwrite: bool):
    """Each service stopped (compose down, never -v), its data restored with owners and modes, started
    again; refused (before anything changes) where its data folders are not empty, unless ``overwrite``:
    then what they held is kept beside them as ``<folder>.before-restore-<time>``."""
    words = [SCRIPT, "restore"]
    if snapshot != "latest":
        words += ["--snapshot", snapshot]
    if overwrite:
        words.append("--overwrite")
    server.shell(name=f"Restore {', '.join(services)} from {snapshot} snapshot",
                 commands=[" ".join(shlex.quote(word) for word in [*words, *services])])
