"""The monitoring configuration files rendered from a MonitoringPlan (deploys.library.monitoring_config).

The last test runs Prometheus's own ``promtool test rules`` on the rendered rules.yml with
tests/fixtures/monitoring/rules-test.yml; it is skipped where ``promtool`` is not on PATH (Debian's
package ``prometheus`` provides it).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deploys.library.monitoring import ExpectedContainer, MonitoringPlan, Probe, ScrapeTarget, Thresholds
from deploys.library.monitoring_config import (
    SECRET_FILES,
    alertmanager_files,
    blackbox_files,
    config_files,
    grafana_files,
    prometheus_files,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "monitoring"
WEBHOOK = "https://hooks.example.com/services/T000/B000/very-secret-token"
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

THRESHOLDS = Thresholds(
    cold_storage_min_bytes=50 * 2**30,
    gpu_temperature_c=85,
    gpu_memory_percent=95,
    backup_max_age_seconds=36 * 3600,
    restarts=3,
    alert_for="5m",
    scrape_interval="30s",
    group_wait="30s",
    group_interval="5m",
    repeat_interval="4h",
)

# two hosts: "core" runs the monitoring set, the proxy and Pi-hole; "gpu" runs the AI services and DCGM
PLAN = MonitoringPlan(
    host="core",
    targets=(
        ScrapeTarget("node-exporter", "core", "node-exporter:9100"),
        ScrapeTarget("cadvisor", "core", "cadvisor:9338"),
        ScrapeTarget("node-exporter", "gpu", "100.64.0.11:9100"),
        ScrapeTarget("cadvisor", "gpu", "100.64.0.11:9338"),
        ScrapeTarget("dcgm-exporter", "gpu", "100.64.0.11:9400"),
        ScrapeTarget("prometheus", "core", "prometheus:9090"),
        ScrapeTarget("grafana", "core", "grafana:3000", path="/grafana/metrics"),
    ),
    probes=(
        Probe("open-webui", "http", "https://chat.home.example.com/", "core"),
        Probe("comfyui", "http", "https://comfyui.home.example.com/", "core"),
        Probe("pihole", "dns", "100.64.0.10:53", "core", query_name="chat.home.example.com"),
    ),
    containers=(
        ExpectedContainer("core", "nginx-proxy"),
        ExpectedContainer("core", "pihole"),
        ExpectedContainer("core", "prometheus"),
        ExpectedContainer("gpu", "ollama"),
        ExpectedContainer("gpu", "open-webui"),
    ),
    thresholds=THRESHOLDS,
    retention="30d",
    webhook=True,
    grafana_url="https://grafana.home.example.com/",
    prometheus_url="http://prometheus:9090",
    alertmanager_address="alertmanager:9093",
    blackbox_address="blackbox-exporter:9115",
    ca_bundle=True,
)
WITHOUT_WEBHOOK = dataclasses.replace(PLAN, webhook=False)


def prometheus():
    files = prometheus_files(PLAN)
    assert set(files) == {"prometheus.yml", "rules.yml"}
    return yaml.safe_load(files["prometheus.yml"])


def jobs():
    return {job["job_name"]: job for job in prometheus()["scrape_configs"]}


def rules(plan=PLAN):
    (group,) = yaml.safe_load(prometheus_files(plan)["rules.yml"])["groups"]
    assert group["name"] == "homelab"
    return group["rules"]


def alerts(name, plan=PLAN):
    return [r for r in rules(plan) if r["alert"] == name]


def alert(name, plan=PLAN):
    (rule,) = alerts(name, plan)
    return rule


# --- prometheus.yml


def test_global_settings_rule_file_and_alertmanager():
    config = prometheus()
    assert config["global"] == {"scrape_interval": "30s", "evaluation_interval": "30s"}
    assert config["rule_files"] == ["/etc/prometheus/rules.yml"]
    assert config["alerting"] == {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]}


def test_one_job_per_service_in_first_seen_order_with_a_host_label_per_target():
    config = prometheus()
    names = [job["job_name"] for job in config["scrape_configs"]]
    assert names == [
        "node-exporter", "cadvisor", "dcgm-exporter", "prometheus", "grafana",
        "blackbox-http", "blackbox-dns",
    ]
    by_name = jobs()
    assert by_name["node-exporter"]["static_configs"] == [
        {"targets": ["node-exporter:9100"], "labels": {"host": "core"}},
        {"targets": ["100.64.0.11:9100"], "labels": {"host": "gpu"}},
    ]
    assert by_name["dcgm-exporter"]["static_configs"] == [
        {"targets": ["100.64.0.11:9400"], "labels": {"host": "gpu"}},
    ]
    assert "metrics_path" not in by_name["node-exporter"]
    assert by_name["grafana"]["metrics_path"] == "/grafana/metrics"


def test_a_job_whose_targets_differ_in_path_gives_each_its_own():
    plan = dataclasses.replace(PLAN, targets=(
        ScrapeTarget("app", "core", "app:80"),
        ScrapeTarget("app", "gpu", "100.64.0.11:80", path="/stats"),
    ))
    (job, *_) = yaml.safe_load(prometheus_files(plan)["prometheus.yml"])["scrape_configs"]
    assert "metrics_path" not in job
    assert job["static_configs"] == [
        {"targets": ["app:80"], "labels": {"host": "core"}},
        {"targets": ["100.64.0.11:80"], "labels": {"host": "gpu", "__metrics_path__": "/stats"}},
    ]


def test_blackbox_jobs_probe_each_target_through_the_exporter():
    by_name = jobs()
    relabel = [
        {"source_labels": ["__address__"], "target_label": "__param_target"},
        {"source_labels": ["__param_target"], "target_label": "instance"},
        {"target_label": "__address__", "replacement": "blackbox-exporter:9115"},
    ]
    http, dns = by_name["blackbox-http"], by_name["blackbox-dns"]
    assert http["metrics_path"] == dns["metrics_path"] == "/probe"
    assert http["params"] == {"module": ["http_2xx"]}
    assert dns["params"] == {"module": ["dns_pihole"]}
    assert http["relabel_configs"] == dns["relabel_configs"] == relabel
    assert http["static_configs"] == [
        {"targets": ["https://chat.home.example.com/"], "labels": {"host": "core", "service": "open-webui"}},
        {"targets": ["https://comfyui.home.example.com/"], "labels": {"host": "core", "service": "comfyui"}},
    ]
    assert dns["static_configs"] == [
        {"targets": ["100.64.0.10:53"], "labels": {"host": "core", "service": "pihole"}},
    ]


def test_no_blackbox_job_without_probes():
    plan = dataclasses.replace(PLAN, probes=())
    config = yaml.safe_load(prometheus_files(plan)["prometheus.yml"])
    names = [job["job_name"] for job in config["scrape_configs"]]
    assert "blackbox-http" not in names and "blackbox-dns" not in names


def test_dns_probes_asking_different_names_are_refused():
    plan = dataclasses.replace(PLAN, probes=(
        *PLAN.probes, Probe("pihole", "dns", "100.64.0.11:53", "gpu", query_name="other.home.example.com"),
    ))
    with pytest.raises(ValueError, match="same name"):
        prometheus_files(plan)
    with pytest.raises(ValueError, match="same name"):
        blackbox_files(plan, None)
    nameless = dataclasses.replace(PLAN, probes=(Probe("pihole", "dns", "100.64.0.10:53", "core"),))
    with pytest.raises(ValueError, match="query_name"):
        blackbox_files(nameless, None)


# --- rules.yml


def test_every_alert_waits_alert_for_and_has_a_severity_and_a_readable_text():
    seen = set()
    for rule in rules():
        seen.add(rule["alert"])
        assert rule["for"] == "5m"
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert "{{ $labels.host }}" in rule["annotations"]["summary"] + rule["annotations"]["description"]
        assert len(rule["annotations"]["description"]) > 60
    assert seen == {
        "TargetDown", "ColdStorageLow", "ContainerDown", "ContainerUnhealthy", "ContainerRestarting",
        "GpuTemperatureHigh", "GpuMemoryHigh", "ProbeFailed", "BackupTooOld",
    }
    critical = {r["alert"] for r in rules() if r["labels"]["severity"] == "critical"}
    assert critical == {"TargetDown", "ContainerDown", "ColdStorageLow", "BackupTooOld", "ProbeFailed"}


def test_alert_expressions_carry_the_thresholds():
    assert alert("TargetDown")["expr"] == "up == 0"
    assert alert("ProbeFailed")["expr"] == "probe_success == 0"
    assert alert("ColdStorageLow")["expr"] == f"homelab_cold_storage_avail_bytes < {50 * 2**30}"
    assert alert("GpuTemperatureHigh")["expr"] == "DCGM_FI_DEV_GPU_TEMP > 85"
    assert alert("GpuMemoryHigh")["expr"] == (
        "100 * DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) > 95"
    )
    assert alert("BackupTooOld")["expr"] == "time() - homelab_backup_last_success_timestamp_seconds > 129600"
    assert "homelab_container_unhealthy == 1" in alert("ContainerUnhealthy")["expr"]
    # the restart count is a gauge: delta, not increase (meant for counters)
    assert "delta(homelab_container_restarts[15m]) > 3" in alert("ContainerRestarting")["expr"]
    assert "increase(" not in alert("ContainerRestarting")["expr"]


def test_container_alerts_name_the_container():
    for name in ("ContainerDown", "ContainerUnhealthy", "ContainerRestarting"):
        for rule in alerts(name):
            assert '"container", "' in rule["expr"], name


def test_container_down_covers_stopped_and_missing_expected_containers_per_host():
    stopped, *missing = alerts("ContainerDown")
    assert stopped["expr"] == (
        'label_replace(homelab_container_running{host="core",name=~"nginx-proxy|pihole|prometheus"} == 0'
        ' or homelab_container_running{host="gpu",name=~"ollama|open-webui"} == 0,'
        ' "container", "$1", "name", "(.*)")'
    )
    assert [rule["labels"] for rule in missing] == [
        {"severity": "critical", "host": "core"},
        {"severity": "critical", "host": "gpu"},
    ]
    assert missing[1]["expr"] == (
        'label_replace(absent(homelab_container_running{host="gpu",name="ollama"}), '
        '"container", "ollama", "", "")'
        ' or label_replace(absent(homelab_container_running{host="gpu",name="open-webui"}), '
        '"container", "open-webui", "", "")'
    )


def test_container_names_are_matched_literally():
    plan = dataclasses.replace(PLAN, containers=(ExpectedContainer("core", "web.1"),))
    assert 'name=~"web\\\\.1"' in alerts("ContainerDown", plan)[0]["expr"]


def test_no_container_down_without_expected_containers():
    assert alerts("ContainerDown", dataclasses.replace(PLAN, containers=())) == []


def test_no_backup_alert_without_backups():
    plan = dataclasses.replace(PLAN, thresholds=dataclasses.replace(THRESHOLDS, backup_max_age_seconds=None))
    assert alerts("BackupTooOld", plan) == []
    assert "homelab_backup" not in prometheus_files(plan)["rules.yml"]


# --- alertmanager.yml


def test_alertmanager_sends_to_the_webhook_with_resolved_notifications():
    files = alertmanager_files(PLAN, WEBHOOK)
    assert set(files) == set(SECRET_FILES["alertmanager"]) == {"alertmanager.yml"}
    config = yaml.safe_load(files["alertmanager.yml"])
    assert config["route"] == {
        "receiver": "webhook",
        "group_by": ["alertname", "host"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
    }
    assert config["receivers"] == [
        {"name": "webhook", "webhook_configs": [{"url": WEBHOOK, "send_resolved": True}]},
    ]


@pytest.mark.parametrize(("url", "integration", "key"), [
    ("https://discord.com/api/webhooks/123/abc", "discord_configs", "webhook_url"),
    ("https://hooks.slack.com/services/T0/B0/xyz", "slack_configs", "api_url"),
    ("https://ntfy.sh/homelab-alerts", "webhook_configs", "url"),
])
def test_discord_and_slack_get_their_own_integration(url, integration, key):
    """Discord and Slack refuse Alertmanager's generic webhook JSON: their URLs get Alertmanager's own
    integrations; any other URL the generic webhook."""
    (receiver,) = yaml.safe_load(alertmanager_files(PLAN, url)["alertmanager.yml"])["receivers"]
    assert set(receiver) == {"name", integration}
    (config,) = receiver[integration]
    assert config[key] == url and config["send_resolved"] is True


def test_alertmanager_without_a_webhook_delivers_nowhere():
    config = yaml.safe_load(alertmanager_files(WITHOUT_WEBHOOK, None)["alertmanager.yml"])
    assert config["route"]["receiver"] == "nowhere"
    assert config["receivers"] == [{"name": "nowhere"}]


@pytest.mark.parametrize("url", [
    "ftp://hooks.example.com/very-secret-token",
    "hooks.example.com/very-secret-token",
    "https:///very-secret-token",
])
def test_a_bad_webhook_url_is_refused_without_showing_it(url):
    with pytest.raises(ValueError) as caught:
        alertmanager_files(PLAN, url)
    assert "very-secret-token" not in str(caught.value)
    assert "hooks.example.com" not in str(caught.value)
    assert "http" in str(caught.value)


def test_the_plan_and_the_webhook_url_must_agree():
    with pytest.raises(ValueError) as caught:
        alertmanager_files(WITHOUT_WEBHOOK, WEBHOOK)
    assert "very-secret-token" not in str(caught.value)
    with pytest.raises(ValueError):
        alertmanager_files(PLAN, None)


def test_the_webhook_url_is_only_in_the_secret_file():
    for service in ("prometheus", "alertmanager", "blackbox-exporter", "grafana"):
        for path, text in config_files(service, PLAN, webhook_url=WEBHOOK, ca_bundle=CA).items():
            assert ("very-secret-token" in text) == (path in SECRET_FILES.get(service, ())), (service, path)


# --- blackbox.yml


def blackbox(plan=PLAN, ca=CA):
    files = blackbox_files(plan, ca)
    return files, yaml.safe_load(files["blackbox.yml"])["modules"]


def test_http_module_counts_a_login_page_as_up_and_a_bad_gateway_as_down():
    files, modules = blackbox()
    http = modules["http_2xx"]
    assert http["prober"] == "http"
    assert http["timeout"] == "10s"
    codes = http["http"]["valid_status_codes"]
    assert {200, 204, 301, 302, 303, 307, 308, 401, 403} <= set(codes)
    assert not {404, 500, 502, 503, 504} & set(codes)
    assert http["http"]["follow_redirects"] is True
    assert http["http"]["preferred_ip_protocol"] == "ip4"
    assert http["http"]["tls_config"] == {"ca_file": "/etc/blackbox/ca.pem"}
    assert files["ca.pem"] == CA


def test_without_a_private_ca_there_is_no_ca_file():
    files, modules = blackbox(ca=None)
    assert set(files) == {"blackbox.yml"}
    assert "tls_config" not in modules["http_2xx"]["http"]


def test_dns_module_asks_pihole_the_probe_name_and_needs_an_answer():
    dns = blackbox()[1]["dns_pihole"]
    assert dns["prober"] == "dns"
    assert dns["dns"]["transport_protocol"] == "udp"
    assert dns["dns"]["query_type"] == "A"
    assert dns["dns"]["query_name"] == "chat.home.example.com"
    assert dns["dns"]["valid_rcodes"] == ["NOERROR"]
    assert dns["dns"]["validate_answer_rrs"]["fail_if_not_matches_regexp"]


def test_no_dns_module_without_a_dns_probe():
    plan = dataclasses.replace(PLAN, probes=PLAN.probes[:2])
    assert set(blackbox(plan)[1]) == {"http_2xx"}


# --- Grafana


def test_grafana_provisions_the_prometheus_data_source_and_the_dashboards_folder():
    files = grafana_files(PLAN)
    assert set(files) == {
        "datasources/prometheus.yml", "dashboards/homelab.yml", "dashboards/host.json",
        "dashboards/containers.json", "dashboards/gpu.json", "dashboards/services.json",
    }
    sources = yaml.safe_load(files["datasources/prometheus.yml"])
    assert sources["apiVersion"] == 1
    (source,) = sources["datasources"]
    assert source["uid"] == "prometheus"
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["access"] == "proxy"
    assert source["isDefault"] is True
    (provider,) = yaml.safe_load(files["dashboards/homelab.yml"])["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "Homelab"
    assert provider["allowUiUpdates"] is False
    assert provider["options"]["path"] == "/etc/grafana/provisioning/dashboards"


def dashboards():
    files = grafana_files(PLAN)
    return {name: json.loads(files[f"dashboards/{name}"]) for name in
            ("host.json", "containers.json", "gpu.json", "services.json")}


def test_dashboards_have_fixed_uids_a_host_variable_and_real_queries():
    boards = dashboards()
    assert {name: board["uid"] for name, board in boards.items()} == {
        "host.json": "homelab-host",
        "containers.json": "homelab-containers",
        "gpu.json": "homelab-gpu",
        "services.json": "homelab-services",
    }
    for name, board in boards.items():
        assert 36 <= board["schemaVersion"] <= 41
        (variable,) = board["templating"]["list"]
        assert variable["name"] == "host"
        assert variable["query"]["query"] == "label_values(up, host)"
        assert len(board["panels"]) >= 4, name
        ids = [panel["id"] for panel in board["panels"]]
        assert len(set(ids)) == len(ids)
        for panel in board["panels"]:
            assert panel["targets"], (name, panel["title"])
            assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
            for target in panel["targets"]:
                assert target["datasource"] == {"type": "prometheus", "uid": "prometheus"}
                assert target["expr"].count("(") == target["expr"].count(")")
                assert '$host"' in target["expr"], (name, target["expr"])


def test_dashboards_read_the_metrics_of_their_subject():
    exprs = {name: " ".join(t["expr"] for p in board["panels"] for t in p["targets"])
             for name, board in dashboards().items()}
    for metric in ("node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_load1",
                   "node_filesystem_avail_bytes", "homelab_cold_storage_avail_bytes",
                   "node_network_receive_bytes_total"):
        assert metric in exprs["host.json"]
    for metric in ("homelab_container_running", "homelab_container_unhealthy", "homelab_container_restarts",
                   "container_cpu_usage_seconds_total", "container_memory_usage_bytes"):
        assert metric in exprs["containers.json"]
    for metric in ("DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
                   "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_POWER_USAGE"):
        assert metric in exprs["gpu.json"]
    for metric in ("probe_success", "probe_duration_seconds", "ALERTS"):
        assert metric in exprs["services.json"]


# --- all of them


def test_rendering_is_deterministic():
    for service in ("prometheus", "alertmanager", "blackbox-exporter", "grafana"):
        first = config_files(service, PLAN, webhook_url=WEBHOOK, ca_bundle=CA)
        again = config_files(service, dataclasses.replace(PLAN), webhook_url=WEBHOOK, ca_bundle=CA)
        assert first and first == again, service


def test_services_without_configuration_files_get_none():
    assert config_files("node-exporter", PLAN, webhook_url=WEBHOOK, ca_bundle=CA) == {}
    assert config_files("cadvisor", PLAN, webhook_url=None, ca_bundle=None) == {}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian: prometheus) is not installed")
def test_promtool_unit_tests_of_the_rules(tmp_path):
    (tmp_path / "rules.yml").write_text(prometheus_files(PLAN)["rules.yml"])
    shutil.copy(FIXTURES / "rules-test.yml", tmp_path / "rules-test.yml")
    result = subprocess.run(["promtool", "test", "rules", "rules-test.yml"], cwd=tmp_path,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
