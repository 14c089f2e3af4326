"""The monitoring host's configuration files, rendered from a :class:`MonitoringPlan`.

Each function returns ``{path relative to the service's config/ folder: file text}``; the deploy uploads
them into ``/opt/homelab/<service>/config/``, which the container mounts read-only (Prometheus at
``/etc/prometheus``, Alertmanager at ``/etc/alertmanager``, the blackbox exporter at ``/etc/blackbox``,
Grafana at ``/etc/grafana/provisioning``). The functions are pure and deterministic: the same plan gives
the same bytes, so that a second deploy changes nothing.

The only secret is Alertmanager's webhook URL: it appears in the returned text of ``alertmanager.yml``
(a file of :data:`SECRET_FILES`, uploaded with mode 0600) and nowhere else, never in an exception.

The rules use what Prometheus 2.42 (Debian 12's) understands, so the same files serve the pinned image
and Debian's packages.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import yaml

from deploys.library.catalog import MANAGED_HEADER
from deploys.library.monitoring import MonitoringPlan, Probe, ScrapeTarget

# the files that hold a secret, per service: uploaded with mode 0600 and never shown in a diff
SECRET_FILES: dict[str, tuple[str, ...]] = {"alertmanager": ("alertmanager.yml",)}

HEADER = MANAGED_HEADER

RULES_PATH = "/etc/prometheus/rules.yml"  # where prometheus.yml finds rules.yml (config/ mounted there)
CA_FILE = "/etc/blackbox/ca.pem"
DASHBOARDS_PATH = "/etc/grafana/provisioning/dashboards"
HTTP_MODULE = "http_2xx"
DNS_MODULE = "dns_pihole"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}

# 2xx, redirects, and the answers of a login page: the service is up. NPM's 502/504 (its upstream is
# down) and every other code count as a failed probe.
HTTP_VALID_STATUS_CODES = (
    200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 301, 302, 303, 307, 308, 401, 403,
)


def _yaml(document: object) -> str:
    return HEADER + yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=1000,
                                   allow_unicode=True)


def _string(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _any_of(values: Iterable[str]) -> str:
    """A PromQL regex literal matching exactly these values (the regex is anchored by PromQL)."""
    escaped = []
    for value in values:
        escaped.append("".join("\\" + c if c in ".+*?()[]{}|^$\\" else c for c in value))
    return _string("|".join(escaped))


def _gib(size: int) -> str:
    return f"{size / 2**30:g} GiB"


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _container_label(expr: str) -> str:
    """Copy the textfile metrics' ``name`` label into ``container``, the label the alerts speak of."""
    return f'label_replace({expr}, "container", "$1", "name", "(.*)")'


# ---------------------------------------------------------------------------------------------- Prometheus


def _scrape_job(job: str, targets: list[ScrapeTarget]) -> dict:
    paths = {t.path for t in targets}
    per_target_path = len(paths) > 1
    groups: dict[tuple[str, str], list[str]] = {}
    for t in targets:
        groups.setdefault((t.host, t.path), [])
        if t.address not in groups[(t.host, t.path)]:
            groups[(t.host, t.path)].append(t.address)
    static_configs = []
    for (host, path), addresses in groups.items():
        labels = {"host": host}
        if per_target_path and path != "/metrics":
            labels["__metrics_path__"] = path
        static_configs.append({"targets": addresses, "labels": labels})
    config: dict = {"job_name": job}
    if not per_target_path and targets[0].path != "/metrics":
        config["metrics_path"] = targets[0].path
    config["static_configs"] = static_configs
    return config


def _probe_job(job: str, module: str, probes: list[Probe], blackbox_address: str) -> dict:
    return {
        "job_name": job,
        "metrics_path": "/probe",
        "params": {"module": [module]},
        "static_configs": [
            {"targets": [p.target], "labels": {"host": p.host, "service": p.name}} for p in probes
        ],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": blackbox_address},
        ],
    }


def _probes(plan: MonitoringPlan, kind: str) -> list[Probe]:
    return [p for p in plan.probes if p.kind == kind]


def dns_query_name(plan: MonitoringPlan) -> str | None:
    """The name every DNS probe of the plan asks for (one ``dns_pihole`` module serves them all)."""
    names = sorted({p.query_name or "" for p in _probes(plan, "dns")})
    if not names:
        return None
    if "" in names:
        raise ValueError("every DNS probe needs a query_name (the name the blackbox exporter asks Pi-hole)")
    if len(names) > 1:
        raise ValueError(
            f"the DNS probes must all ask for the same name, not {names}: the blackbox exporter's "
            f"{DNS_MODULE} module asks for one"
        )
    return names[0]


def prometheus_config(plan: MonitoringPlan) -> dict:
    interval = plan.thresholds.scrape_interval
    jobs: dict[str, list[ScrapeTarget]] = {}
    for target in plan.targets:
        jobs.setdefault(target.job, []).append(target)
    scrape_configs = [_scrape_job(job, targets) for job, targets in jobs.items()]
    for job, kind, module in (("blackbox-http", "http", HTTP_MODULE), ("blackbox-dns", "dns", DNS_MODULE)):
        if probes := _probes(plan, kind):
            scrape_configs.append(_probe_job(job, module, probes, plan.blackbox_address))
    dns_query_name(plan)  # refuses probes that one module cannot serve
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [RULES_PATH],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [plan.alertmanager_address]}]}]},
        "scrape_configs": scrape_configs,
    }


def _alert(name: str, expr: str, plan: MonitoringPlan, severity: str, summary: str, description: str,
           labels: dict[str, str] | None = None) -> dict:
    return {
        "alert": name,
        "expr": expr,
        "for": plan.thresholds.alert_for,
        "labels": {"severity": severity, **(labels or {})},
        "annotations": {"summary": summary, "description": description},
    }


def _container_down_rules(plan: MonitoringPlan) -> list[dict]:
    by_host: dict[str, list[str]] = {}
    for c in plan.containers:
        if c.name not in by_host.setdefault(c.host, []):
            by_host[c.host].append(c.name)
    if not by_host:
        return []
    summary = "Container {{ $labels.container }} is down on {{ $labels.host }}"
    stopped = " or ".join(
        f"homelab_container_running{{host={_string(host)},name=~{_any_of(names)}}} == 0"
        for host, names in by_host.items()
    )
    rules = [
        _alert(
            "ContainerDown", _container_label(stopped), plan, "critical", summary,
            "Container {{ $labels.container }} on {{ $labels.host }} exists but is not running. "
            "Read its last lines with `docker logs --tail 50 {{ $labels.container }}` on {{ $labels.host }}, "
            "then start it again by re-running the deploy (or `docker compose up -d` in its project folder).",
        )
    ]
    for host, names in by_host.items():
        missing = " or ".join(
            f'label_replace(absent(homelab_container_running{{host={_string(host)},name={_string(name)}}}), '
            f'"container", {_string(name)}, "", "")'
            for name in names
        )
        rules.append(
            _alert(
                "ContainerDown", missing, plan, "critical", summary,
                "Container {{ $labels.container }} is expected on {{ $labels.host }} but Docker does not "
                "report it there (removed, never created, or the host's metrics are not arriving). Re-run "
                "the deploy for {{ $labels.host }}; if the container exists, check that the node exporter "
                "on {{ $labels.host }} is up and /var/lib/homelab/metrics is being written.",
                labels={"host": host},
            )
        )
    return rules


def rules_config(plan: MonitoringPlan) -> dict:
    t = plan.thresholds
    rules = [
        _alert(
            "TargetDown", "up == 0", plan, "critical",
            "{{ $labels.job }} on {{ $labels.host }} cannot be scraped",
            "Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }} (host {{ $labels.host }}). "
            "Check that its container runs on {{ $labels.host }} (`docker ps`) and that the host is "
            "reachable over Tailscale.",
        ),
        _alert(
            "ColdStorageLow", f"homelab_cold_storage_avail_bytes < {t.cold_storage_min_bytes}", plan,
            "critical",
            "Cold storage on {{ $labels.host }} is almost full",
            "Only {{ $value | humanize1024 }}B are free on the cold-storage filesystem of {{ $labels.host }} "
            f"(the minimum is {_gib(t.cold_storage_min_bytes)}). Free space (old models, backups, "
            "logs) or grow the filesystem before services fail to write.",
        ),
        *_container_down_rules(plan),
        _alert(
            "ContainerUnhealthy", _container_label("homelab_container_unhealthy == 1"), plan, "warning",
            "Container {{ $labels.container }} on {{ $labels.host }} is unhealthy",
            "Docker reports container {{ $labels.container }} on {{ $labels.host }} as unhealthy: its health "
            "check fails. Read the check's last results with `docker inspect {{ $labels.container }}` "
            "(State.Health) and its log with `docker logs {{ $labels.container }}` on {{ $labels.host }}.",
        ),
        _alert(
            "ContainerRestarting",
            _container_label(f"delta(homelab_container_restarts[15m]) > {t.restarts}"), plan, "warning",
            "Container {{ $labels.container }} on {{ $labels.host }} keeps restarting",
            "Container {{ $labels.container }} on {{ $labels.host }} restarted {{ $value }} times in 15 "
            f"minutes (more than {t.restarts}). Read `docker logs {{{{ $labels.container }}}}` on "
            "{{ $labels.host }} for the reason it exits.",
        ),
        _alert(
            "GpuTemperatureHigh", f"DCGM_FI_DEV_GPU_TEMP > {t.gpu_temperature_c}", plan, "warning",
            "GPU {{ $labels.gpu }} on {{ $labels.host }} is hot",
            "GPU {{ $labels.gpu }} ({{ $labels.modelName }}) on {{ $labels.host }} is at {{ $value }} °C "
            f"(the limit is {t.gpu_temperature_c} °C). Check the fans and airflow, or lighten the load "
            "(Ollama, ComfyUI).",
        ),
        _alert(
            "GpuMemoryHigh",
            "100 * DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) > "
            f"{t.gpu_memory_percent}",
            plan, "warning",
            "GPU {{ $labels.gpu }} memory on {{ $labels.host }} is nearly full",
            "GPU {{ $labels.gpu }} ({{ $labels.modelName }}) on {{ $labels.host }} uses "
            f"{{{{ $value | printf \"%.0f\" }}}}% of its memory (the limit is {t.gpu_memory_percent}%). "
            "Unload idle models (Ollama keeps them loaded) or use smaller ones.",
        ),
        _alert(
            "ProbeFailed", "probe_success == 0", plan, "critical",
            "{{ $labels.service }} does not answer ({{ $labels.host }})",
            "The blackbox probe of {{ $labels.service }} ({{ $labels.instance }}, served from "
            "{{ $labels.host }}) fails. Check the service's container and, for a web service, its proxy "
            "host in Nginx Proxy Manager; for DNS, Pi-hole.",
        ),
    ]
    if t.backup_max_age_seconds is not None:
        rules.append(
            _alert(
                "BackupTooOld",
                f"time() - homelab_backup_last_success_timestamp_seconds > {t.backup_max_age_seconds}",
                plan, "critical",
                "The last backup of {{ $labels.host }} is too old",
                "The last successful backup of {{ $labels.host }} finished {{ $value | humanizeDuration }} "
                f"ago (the limit is {_duration(t.backup_max_age_seconds)}). Check the backup timer and its "
                "log on {{ $labels.host }} (`journalctl -u homelab-backup`).",
            )
        )
    return {"groups": [{"name": "homelab", "rules": rules}]}


def prometheus_files(plan: MonitoringPlan) -> dict[str, str]:
    return {"prometheus.yml": _yaml(prometheus_config(plan)), "rules.yml": _yaml(rules_config(plan))}


# -------------------------------------------------------------------------------------------- Alertmanager


DISCORD_HOSTS = ("discord.com", "discordapp.com")  # Alertmanager's discord_configs (0.25+)
SLACK_HOST = "hooks.slack.com"  # its slack_configs


def alertmanager_files(plan: MonitoringPlan, webhook_url: str | None) -> dict[str, str]:
    """``alertmanager.yml``; the webhook URL (a secret) appears in the text and nowhere else."""
    t = plan.thresholds
    if plan.webhook != (webhook_url is not None):
        raise ValueError(
            "the monitoring plan and the webhook URL disagree: "
            + ("the plan expects a webhook URL and none was given" if plan.webhook
               else "a webhook URL was given to a plan without one")
        )
    if webhook_url is None:
        receiver: dict = {"name": "nowhere"}
    else:
        parts = urlsplit(webhook_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the Alertmanager webhook URL must be an http:// or https:// URL with a host")
        receiver = {"name": "webhook", **_webhook_receiver(webhook_url, parts.hostname, parts.path)}
    document = {
        "route": {
            "receiver": receiver["name"],
            "group_by": ["alertname", "host"],
            "group_wait": t.group_wait,
            "group_interval": t.group_interval,
            "repeat_interval": t.repeat_interval,
        },
        "receivers": [receiver],
    }
    return {"alertmanager.yml": _yaml(document)}


def _webhook_receiver(url: str, hostname: str, path: str) -> dict:
    """The receiver's integration for a webhook URL: Discord's and Slack's own (they refuse Alertmanager's
    generic JSON), else the generic webhook (ntfy, Gotify behind a bridge, a receiver of one's own)."""
    if hostname in DISCORD_HOSTS and path.startswith("/api/webhooks/"):
        return {"discord_configs": [{"webhook_url": url, "send_resolved": True}]}
    if hostname == SLACK_HOST:
        return {"slack_configs": [{"api_url": url, "send_resolved": True,
                                   "title": '{{ .Status | toUpper }}: {{ .CommonLabels.alertname }}',
                                   "text": '{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}'}]}
    return {"webhook_configs": [{"url": url, "send_resolved": True}]}


# ---------------------------------------------------------------------------------------- blackbox exporter


def blackbox_files(plan: MonitoringPlan, ca_bundle: str | None) -> dict[str, str]:
    http: dict = {
        "preferred_ip_protocol": "ip4",
        "follow_redirects": True,
        "valid_status_codes": list(HTTP_VALID_STATUS_CODES),
    }
    if ca_bundle is not None:
        http["tls_config"] = {"ca_file": CA_FILE}
    modules: dict = {HTTP_MODULE: {"prober": "http", "timeout": "10s", "http": http}}
    if (query_name := dns_query_name(plan)) is not None:
        modules[DNS_MODULE] = {
            "prober": "dns",
            "timeout": "5s",
            "dns": {
                "transport_protocol": "udp",
                "preferred_ip_protocol": "ip4",
                "query_name": query_name,
                "query_type": "A",
                "valid_rcodes": ["NOERROR"],
                # an empty answer fails too (Pi-hole answers NOERROR without records for a name it lost)
                "validate_answer_rrs": {"fail_if_not_matches_regexp": ["\\tIN\\t(A|CNAME)\\t"]},
            },
        }
    files = {"blackbox.yml": _yaml({"modules": modules})}
    if ca_bundle is not None:
        files["ca.pem"] = ca_bundle
    return files


# ------------------------------------------------------------------------------------------------- Grafana

HOST = 'host=~"$host"'


def _target(expr: str, legend: str, ref: str, instant: bool = False) -> dict:
    target = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        target["instant"] = True
        target["range"] = False
        target["format"] = "table"
    return target


def _panel(title: str, queries: list[tuple[str, str]], unit: str = "short", kind: str = "timeseries",
           description: str = "", **options: object) -> dict:
    """One panel: ``queries`` are (PromQL, legend) pairs; placed later by :func:`_dashboard`."""
    instant = kind == "table"
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [
            _target(expr, legend, chr(ord("A") + i), instant) for i, (expr, legend) in enumerate(queries)
        ],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": dict(options),
    }


def _stat(title: str, expr: str, legend: str, description: str = "") -> dict:
    return _panel(title, [(expr, legend)], kind="stat", description=description,
                  reduceOptions={"calcs": ["lastNotNull"], "fields": "", "values": False},
                  colorMode="background", textMode="value_and_name")


def _dashboard(uid: str, title: str, panels: list[dict]) -> str:
    width, height = 12, 8
    placed = []
    for i, panel in enumerate(panels):
        placed.append({"id": i + 1, "gridPos": {"h": height, "w": width, "x": (i % 2) * width,
                                                  "y": (i // 2) * height}, **panel})
    document = {
        "id": None,
        "uid": uid,
        "title": title,
        "tags": ["homelab"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "links": [],
        "annotations": {"list": []},
        "templating": {"list": [{
            "name": "host",
            "label": "Host",
            "type": "query",
            "datasource": DATASOURCE,
            "definition": "label_values(up, host)",
            # the shape Grafana's Prometheus variable editor saves (qryType 1: label values)
            "query": {"qryType": 1, "query": "label_values(up, host)",
                      "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "options": [],
            "regex": "",
            "refresh": 1,
            "sort": 1,
            "multi": True,
            "includeAll": True,
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "hide": 0,
        }]},
        "panels": placed,
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _host_dashboard() -> str:
    net = f'{HOST},device!~"lo|veth.*|docker.*|br-.*"'
    return _dashboard("homelab-host", "Homelab: hosts", [
        _panel("CPU busy", [(
            f'100 * (1 - avg by (host) (rate(node_cpu_seconds_total{{mode="idle",{HOST}}}[5m])))', "{{host}}"
        )], unit="percent"),
        _panel("Memory used", [(
            f"100 * (1 - node_memory_MemAvailable_bytes{{{HOST}}} / node_memory_MemTotal_bytes{{{HOST}}})",
            "{{host}}",
        )], unit="percent"),
        _panel("Load", [
            (f"node_load1{{{HOST}}}", "{{host}} 1m"),
            (f"node_load5{{{HOST}}}", "{{host}} 5m"),
            (f"node_load15{{{HOST}}}", "{{host}} 15m"),
        ]),
        _panel("Free space", [
            (f'node_filesystem_avail_bytes{{{HOST},mountpoint="/"}}', "{{host}} /"),
            (f"homelab_cold_storage_avail_bytes{{{HOST}}}", "{{host}} cold storage"),
        ], unit="bytes"),
        _panel("Network received", [
            (f"sum by (host, device) (rate(node_network_receive_bytes_total{{{net}}}[5m]))",
             "{{host}} {{device}}"),
        ], unit="Bps"),
        _panel("Network sent", [
            (f"sum by (host, device) (rate(node_network_transmit_bytes_total{{{net}}}[5m]))",
             "{{host}} {{device}}"),
        ], unit="Bps"),
    ])


def _containers_dashboard() -> str:
    cadvisor = f'{HOST},name!=""'
    return _dashboard("homelab-containers", "Homelab: containers", [
        _stat("Running", f"homelab_container_running{{{HOST}}}", "{{host}} {{name}}",
              "1: running, 0: stopped (as Docker reports it)"),
        _stat("Unhealthy", f"homelab_container_unhealthy{{{HOST}}}", "{{host}} {{name}}",
              "1: Docker's health check fails"),
        _panel("Restarts in the last hour", [
            (f"delta(homelab_container_restarts{{{HOST}}}[1h])", "{{host}} {{name}}"),
        ]),
        _panel("Restart count", [(f"homelab_container_restarts{{{HOST}}}", "{{host}} {{name}}")]),
        _panel("CPU (cores)", [
            (f"sum by (host, name) (rate(container_cpu_usage_seconds_total{{{cadvisor}}}[5m]))",
             "{{host}} {{name}}"),
        ]),
        _panel("Memory", [
            (f"sum by (host, name) (container_memory_usage_bytes{{{cadvisor}}})", "{{host}} {{name}}"),
        ], unit="bytes"),
    ])


def _gpu_dashboard() -> str:
    legend = "{{host}} GPU {{gpu}}"
    return _dashboard("homelab-gpu", "Homelab: GPU", [
        _panel("Temperature", [(f"DCGM_FI_DEV_GPU_TEMP{{{HOST}}}", legend)], unit="celsius"),
        _panel("Utilisation", [(f"DCGM_FI_DEV_GPU_UTIL{{{HOST}}}", legend)], unit="percent"),
        _panel("Memory", [
            (f"DCGM_FI_DEV_FB_USED{{{HOST}}}", legend + " used"),
            (f"DCGM_FI_DEV_FB_FREE{{{HOST}}}", legend + " free"),
        ], unit="mbytes"),
        _panel("Memory used", [(
            f"100 * DCGM_FI_DEV_FB_USED{{{HOST}}}"
            f" / (DCGM_FI_DEV_FB_USED{{{HOST}}} + DCGM_FI_DEV_FB_FREE{{{HOST}}})",
            legend,
        )], unit="percent"),
        _panel("Power", [(f"DCGM_FI_DEV_POWER_USAGE{{{HOST}}}", legend)], unit="watt"),
    ])


def _services_dashboard() -> str:
    return _dashboard("homelab-services", "Homelab: services", [
        _stat("Probe success", f"probe_success{{{HOST}}}", "{{service}}",
              "1: the service answers through the proxy (http) or Pi-hole answers (dns)"),
        _panel("Probe duration", [(f"probe_duration_seconds{{{HOST}}}", "{{service}}")], unit="s"),
        _panel("Firing alerts", [
            (f'ALERTS{{alertstate="firing",{HOST}}}', "{{alertname}} {{host}}"),
        ], kind="table", showHeader=True),
        _panel("Targets up", [(f"up{{{HOST}}}", "{{job}} {{host}}")]),
    ])


DASHBOARDS: dict[str, Callable[[], str]] = {
    "host.json": _host_dashboard,
    "containers.json": _containers_dashboard,
    "gpu.json": _gpu_dashboard,
    "services.json": _services_dashboard,
}


def grafana_files(plan: MonitoringPlan) -> dict[str, str]:
    datasources = {
        "apiVersion": 1,
        "datasources": [{
            "name": "Prometheus",
            "type": "prometheus",
            "uid": DATASOURCE["uid"],
            "access": "proxy",
            "url": plan.prometheus_url,
            "isDefault": True,
            "editable": False,
        }],
    }
    providers = {
        "apiVersion": 1,
        "providers": [{
            "name": "homelab",
            "orgId": 1,
            "folder": "Homelab",
            "type": "file",
            "disableDeletion": True,
            "allowUiUpdates": False,
            "updateIntervalSeconds": 60,
            "options": {"path": DASHBOARDS_PATH, "foldersFromFilesStructure": False},
        }],
    }
    files = {"datasources/prometheus.yml": _yaml(datasources), "dashboards/homelab.yml": _yaml(providers)}
    for name, render in DASHBOARDS.items():
        files[f"dashboards/{name}"] = render()
    return files


# ------------------------------------------------------------------------------------------------ dispatch


def config_files(service: str, plan: MonitoringPlan, *, webhook_url: str | None,
                 ca_bundle: str | None) -> dict[str, str]:
    """The files of ``service``'s config/ folder (none for a service without configuration files)."""
    if service == "prometheus":
        return prometheus_files(plan)
    if service == "alertmanager":
        return alertmanager_files(plan, webhook_url)
    if service == "blackbox-exporter":
        return blackbox_files(plan, ca_bundle)
    if service == "grafana":
        return grafana_files(plan)
    return {}
