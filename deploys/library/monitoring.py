"""What the monitoring set watches, as the host plan decides it (``HostPlan.monitoring``).

The monitoring host (the first host of the inventory's ``monitoring`` group, else of the ``core`` group,
else the first host) runs Prometheus, Alertmanager, Grafana and the blackbox exporter; every host runs the
node exporter and cAdvisor, GPU hosts the DCGM exporter. :class:`MonitoringPlan` is everything the
monitoring host's configuration is made of: the scrape targets of every inventory host, the probes of
the proxied subdomains and of Pi-hole's DNS, the containers expected on each host, and the alert
thresholds. The configuration files themselves are rendered from it (``monitoring_config.py``).

Nothing here contacts a host, and no secret is part of a plan (the webhook URL and Grafana's password
come from the settings when the files are rendered).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScrapeTarget:
    """One endpoint Prometheus scrapes: ``job`` is the service (``node-exporter``, ``cadvisor``, …)."""

    job: str
    host: str  # the inventory host it runs on (the ``host`` label of its series)
    address: str  # host:port as Prometheus reaches it (a container name on its own host)
    path: str = "/metrics"


@dataclass(frozen=True)
class Probe:
    """One blackbox probe: an HTTP GET of a proxied subdomain through the proxy (resolved by Pi-hole),
    or a DNS query to Pi-hole."""

    name: str  # the service probed (``open-webui``, …; ``pihole`` for the DNS probe)
    kind: str  # "http" or "dns"
    target: str  # the URL (http) or ``address:53`` (dns)
    host: str  # the inventory host serving it (the proxy's host for http, Pi-hole's for dns)
    query_name: str | None = None  # dns: the name asked for (one of the subdomains)


@dataclass(frozen=True)
class ExpectedContainer:
    host: str
    name: str


@dataclass(frozen=True)
class Thresholds:
    """Alert thresholds and timings (settings: HOMELAB_MONITORING_*)."""

    cold_storage_min_bytes: int  # HOMELAB_MIN_FREE_DISK_GB, the preflight's minimum
    gpu_temperature_c: int
    gpu_memory_percent: int
    backup_max_age_seconds: int | None  # None: no host has backups
    restarts: int  # more restarts than this within 15 minutes: ContainerRestarting
    alert_for: str  # how long a condition holds before its alert fires ("5m")
    scrape_interval: str  # "30s"
    group_wait: str  # Alertmanager: wait before the first notification of a group
    group_interval: str  # Alertmanager: wait before notifying changes (resolved too) of a group
    repeat_interval: str  # Alertmanager: resend a firing alert's notification after this


@dataclass(frozen=True)
class MonitoringPlan:
    host: str  # the monitoring host (where Prometheus runs)
    targets: tuple[ScrapeTarget, ...]
    probes: tuple[Probe, ...]
    containers: tuple[ExpectedContainer, ...]
    thresholds: Thresholds
    retention: str  # Prometheus's TSDB retention ("30d")
    webhook: bool  # a webhook URL is set (else Alertmanager delivers nowhere)
    grafana_url: str  # Grafana's root URL through the proxy
    prometheus_url: str  # how Grafana reaches Prometheus ("http://prometheus:9090")
    alertmanager_address: str  # how Prometheus reaches Alertmanager ("alertmanager:9093")
    blackbox_address: str  # how Prometheus reaches the blackbox exporter ("blackbox-exporter:9115")
    ca_bundle: bool = False  # the probes trust a private ACME CA (blackbox's config/ca.pem)
