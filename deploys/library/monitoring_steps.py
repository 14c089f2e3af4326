"""Monitoring steps (HOMELAB_MONITORING): the monitoring set's compose projects where the plan places
them, and on every host the metrics the exporters cannot read (containers, cold storage, the last
backup), written for the node exporter by ``homelab-metrics`` every 15 s; with the set off, whatever
of it runs is taken down (data kept).
"""

from __future__ import annotations

from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy

from deploys.library import placed, service_steps
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
    changed = any(placed.file_differs(path, content, "644") for path, content in units.items())
    placed.folders({str(METRICS_ROOT): ("755", f"Monitoring: {METRICS_ROOT} (the node exporter's textfile "
                                               "folder)")})
    placed.put_file(SCRIPT, SCRIPT_SOURCE.read_text(), "755", "Monitoring: the script homelab-metrics")
    for path, content in units.items():
        placed.put_file(path, content, "644", f"Monitoring: {path.rsplit('/', 1)[1]}")
    placed.units_running([f"{UNIT}.timer"], "Monitoring: {unit} enabled and running",
                         restarted={f"{UNIT}.timer": changed}, daemon_reload=changed)




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
