"""Monitoring steps (HOMELAB_MONITORING): the monitoring set's compose projects where the plan places
them, and on every host the metrics the exporters cannot read (containers, cold storage, the last
backup), written for the node exporter by ``homelab-metrics`` every 15 s; with the set off, whatever
of it runs is taken down (data kept).
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.util import get_file_sha1
from pyinfra.facts.files import Sha1File
from pyinfra.operations import files, systemd

from deploys.library import service_steps
from deploys.library.backup_steps import STATE_DIR as BACKUP_STATE_DIR
from deploys.library.catalog import CATALOG, METRICS_ROOT, set_members
from deploys.library.context import HostContext
from facts.compose import ComposeProjects
from facts.reads import read_fact
from operations import compose

SCRIPT = "/usr/local/sbin/homelab-metrics"
SCRIPT_SOURCE = Path(__file__).with_name("homelab-metrics.sh")
UNIT = "homelab-metrics"  # .service and .timer
EVERY = "15s"


def metrics_unit(cold_storage: str) -> str:
    return (
        "[Unit]\n"
        "Description=homelab: container, cold-storage and backup metrics for the node exporter\n"
        "After=docker.service\n"
        "\n[Service]\n"
        "Type=oneshot\n"
        f"ExecStart={SCRIPT} {cold_storage} {METRICS_ROOT} {BACKUP_STATE_DIR}/last-success\n"
        "Nice=10\n"
    )


def metrics_timer() -> str:
    return (
        "[Unit]\n"
        "Description=homelab: container, cold-storage and backup metrics for the node exporter\n"
        "\n[Timer]\n"
        "OnBootSec=10s\n"
        f"OnUnitActiveSec={EVERY}\n"
        "AccuracySec=1s\n"
        "\n[Install]\n"
        "WantedBy=timers.target\n"
    )


@deploy("Monitoring: host metrics")
def host_metrics(ctx: HostContext):
    """``homelab-metrics`` and its timer: the script, its units, the timer enabled and running."""
    units = {
        f"/etc/systemd/system/{UNIT}.service": metrics_unit(str(ctx.settings.cold_storage_path)),
        f"/etc/systemd/system/{UNIT}.timer": metrics_timer(),
    }
    changed = any(read_fact(Sha1File, path=path, host=host) != _sha1(content)
                  for path, content in units.items())
    files.directory(name=f"Monitoring: {METRICS_ROOT} (the node exporter's textfile folder)",
                    path=str(METRICS_ROOT), user="root", group="root", mode="755")
    files.put(name="Monitoring: the script homelab-metrics", src=StringIO(SCRIPT_SOURCE.read_text()),
              dest=SCRIPT, user="root", group="root", mode="755", create_remote_dir=False)
    for path, content in units.items():
        files.put(name=f"Monitoring: {path.rsplit('/', 1)[1]}", src=StringIO(content), dest=path, user="root",
                  group="root", mode="644", create_remote_dir=False)
    systemd.service(name=f"Monitoring: {UNIT}.timer enabled and running", service=f"{UNIT}.timer",
                    running=True, enabled=True, restarted=changed, daemon_reload=changed)


def _sha1(content: str) -> str:
    return get_file_sha1(StringIO(content))


@deploy("Monitoring: off")
def taken_down(ctx: HostContext):
    """With the set off: its containers that run here go down (data kept), read in one command."""
    running = read_fact(ComposeProjects, host=host)
    found = [service for service in set_members("monitoring") if CATALOG[service].name in running]
    if not found:
        host.noop("monitoring: off (HOMELAB_MONITORING), and none of its services runs here")
    for service in found:
        compose.service(name=f"{service}: monitoring is off: containers down (data kept)", project=service,
                        compose=None, directory=str(CATALOG[service].project_dir), present=False)


def monitoring(ctx: HostContext) -> None:
    """The monitoring set where HOMELAB_MONITORING is on; taken down where it is off."""
    if ctx.settings.monitoring:
        service_steps.deploy_services(ctx, list(set_members("monitoring")))
        host_metrics(ctx)
    else:
        taken_down(ctx)
