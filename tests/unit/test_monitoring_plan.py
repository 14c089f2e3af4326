"""The monitoring set in the host plan: where each part runs, what it publishes, what Prometheus
watches, and the compose documents of its services."""

import pytest

from deploys.library.catalog import Service
from deploys.library.compose_files import compose_document, render_compose
from deploys.library.plan import plan_host
from deploys.library.settings import SettingsError, load_settings
from tests.planning import BASE, RESOURCES, WITH_GPU, WITHOUT_GPU, inventory, settings

WATCHED = {"monitoring": "true", "grafana_admin_password": "grafana-secret-value"}
CENTRAL = (Service.PROMETHEUS, Service.ALERTMANAGER, Service.BLACKBOX_EXPORTER, Service.GRAFANA)
EVERYWHERE = (Service.NODE_EXPORTER, Service.CADVISOR)
ADDRESSES = {"core-host": "100.64.0.1", "gpu-host": "100.64.0.2", "watch-host": "100.64.0.3"}


def two_hosts(**changes):
    s = settings(**{**WATCHED, **changes})
    return inventory(("core-host", ("core",), s), ("gpu-host", ("gpu",), s), addresses=ADDRESSES,
                     gpus={"core-host": False, "gpu-host": True})


def plan(plans, name):
    gpu = WITH_GPU if plans.gpu_of(name) else WITHOUT_GPU
    return plan_host(plans, name, tailscale_ip=plans.address_of(name), gpu=gpu, resources=RESOURCES)


def test_the_central_part_runs_on_the_core_host_and_the_exporters_everywhere_dcgm_on_gpu_hosts():
    plans = two_hosts()
    core, gpu = plan(plans, "core-host"), plan(plans, "gpu-host")
    assert plans.monitoring_host == "core-host"
    assert set(CENTRAL) | set(EVERYWHERE) <= set(core.services)
    assert Service.DCGM_EXPORTER not in core.services  # no GPU there
    assert not set(CENTRAL) & set(gpu.services)
    assert {*EVERYWHERE, Service.DCGM_EXPORTER} <= set(gpu.services)


def test_a_monitoring_group_takes_the_central_part():
    s = settings(**WATCHED)
    plans = inventory(("core-host", ("core",), s), ("gpu-host", ("gpu",), s),
                      ("watch-host", ("monitoring",), s), addresses=ADDRESSES, gpus={"gpu-host": True})
    assert plans.monitoring_host == "watch-host"
    watch = plan(plans, "watch-host")
    assert set(CENTRAL) <= set(watch.services)
    assert watch.monitoring is not None
    assert plan(plans, "core-host").monitoring is None
    # Grafana's subdomain is routed from the core host's proxy to the monitoring host
    routes = {r.domain: (r.forward_host, r.forward_port) for r in plan(plans, "core-host").routes}
    assert routes["grafana.home.example.com"] == ("100.64.0.3", 3000)


def test_without_groups_the_first_host_watches_and_every_host_is_scraped():
    s = settings(**WATCHED)
    plans = inventory(("a", (), s), ("b", (), s), addresses={"a": "100.64.0.1", "b": "100.64.0.2"})
    assert plans.monitoring_host == "a"
    targets = {(t.job, t.host, t.address) for t in plan(plans, "a").monitoring.targets}
    assert ("node-exporter", "a", "node-exporter:9100") in targets
    assert ("node-exporter", "b", "100.64.0.2:9100") in targets
    assert ("cadvisor", "b", "100.64.0.2:9338") in targets


def test_only_the_scraped_hosts_publish_their_exporters_and_only_on_the_tailscale_ip():
    plans = two_hosts()
    core, gpu = plan(plans, "core-host"), plan(plans, "gpu-host")
    assert [str(p.port) for p in gpu.published if p.service in (*EVERYWHERE, Service.DCGM_EXPORTER)] == [
        "9100/tcp", "9338/tcp", "9400/tcp"]
    assert {"9100/tcp", "9338/tcp", "9400/tcp"} <= set(gpu.zone.ports)
    # on the monitoring host Prometheus reaches them over the Docker network: nothing is published
    assert not [p for p in core.published if p.service in (*CENTRAL, *EVERYWHERE)]
    assert not {"9090/tcp", "9093/tcp", "9100/tcp", "9338/tcp", "3000/tcp"} & set(core.zone.ports)
    for service in gpu.services:
        assert "0.0.0.0" not in render_compose(gpu, service)
    node = compose_document(gpu, Service.NODE_EXPORTER)["services"]["node-exporter"]
    assert node["ports"] == ["100.64.0.2:9100:9100/tcp"]


def test_what_prometheus_watches():
    watched = plan(two_hosts(), "core-host").monitoring
    targets = {(t.job, t.host, t.address) for t in watched.targets}
    assert targets == {
        ("prometheus", "core-host", "prometheus:9090"),
        ("alertmanager", "core-host", "alertmanager:9093"),
        ("blackbox-exporter", "core-host", "blackbox-exporter:9115"),
        ("grafana", "core-host", "grafana:3000"),
        ("node-exporter", "core-host", "node-exporter:9100"),
        ("cadvisor", "core-host", "cadvisor:9338"),
        ("node-exporter", "gpu-host", "100.64.0.2:9100"),
        ("cadvisor", "gpu-host", "100.64.0.2:9338"),
        ("dcgm-exporter", "gpu-host", "100.64.0.2:9400"),
    }
    http = {p.name: p.target for p in watched.probes if p.kind == "http"}
    assert http == {
        "pihole": "http://hole.home.example.com/", "ollama": "http://ollama.home.example.com/",
        "comfyui": "http://comfy.home.example.com/", "open-webui": "http://chat.home.example.com/",
        "grafana": "http://grafana.home.example.com/",
    }
    assert {p.host for p in watched.probes} == {"core-host"}
    (dns,) = [p for p in watched.probes if p.kind == "dns"]
    assert (dns.target, dns.query_name) == ("100.64.0.1:53", "hole.home.example.com")
    containers = {(c.host, c.name) for c in watched.containers}
    assert ("gpu-host", "ollama") in containers and ("gpu-host", "dcgm-exporter") in containers
    assert ("core-host", "prometheus") in containers and ("core-host", "ollama") not in containers
    assert watched.thresholds.cold_storage_min_bytes == 50 * 2**30
    assert watched.thresholds.backup_max_age_seconds is None  # no backups configured
    assert not watched.webhook
    assert watched.grafana_url == "http://grafana.home.example.com/"


def test_thresholds_and_webhook_come_from_the_settings():
    watched = plan(two_hosts(min_free_disk_gb=5, alert_gpu_temperature_c=80, monitoring_alert_for="1m",
                             monitoring_webhook_url="https://ntfy.example/homelab-alerts",
                             backup_repository="/mnt/backup/restic", backup_password="restic-secret",
                             backup_max_age_hours=24, tls="dns", tls_dns_provider="cloudflare",
                             tls_dns_credentials="dns_cloudflare_api_token = x"),
                   "core-host").monitoring
    assert watched.thresholds.cold_storage_min_bytes == 5 * 2**30
    assert watched.thresholds.gpu_temperature_c == 80
    assert watched.thresholds.alert_for == "1m"
    assert watched.thresholds.backup_max_age_seconds == 24 * 3600
    assert watched.webhook
    assert all(p.target.startswith("https://") for p in watched.probes if p.kind == "http")
    assert "ntfy.example" not in repr(watched)  # the URL is a secret: never part of the plan


def test_with_monitoring_off_nothing_of_it_is_placed_or_published():
    s = settings()
    plans = inventory(("core-host", ("core",), s), ("gpu-host", ("gpu",), s), addresses=ADDRESSES,
                      gpus={"gpu-host": True})
    assert plans.monitoring_host is None
    for name in ("core-host", "gpu-host"):
        one = plan(plans, name)
        assert not set(one.services) & {*CENTRAL, *EVERYWHERE, Service.DCGM_EXPORTER}
        assert one.monitoring is None
        assert "9100/tcp" not in one.zone.ports


def test_the_compose_documents_of_the_set():
    plans = two_hosts(monitoring_retention="14d")
    core, gpu = plan(plans, "core-host"), plan(plans, "gpu-host")
    prometheus = compose_document(core, Service.PROMETHEUS)["services"]["prometheus"]
    assert "--storage.tsdb.retention.time=14d" in prometheus["command"]
    assert "/opt/homelab/prometheus/config:/etc/prometheus:ro" in prometheus["volumes"]
    assert "/srv/cold/monitoring/prometheus:/prometheus" in prometheus["volumes"]
    assert "ports" not in prometheus
    alertmanager = compose_document(core, Service.ALERTMANAGER)["services"]["alertmanager"]
    assert alertmanager["user"] == "0"  # reads its 0600 configuration (the webhook URL)
    blackbox = compose_document(core, Service.BLACKBOX_EXPORTER)["services"]["blackbox-exporter"]
    assert blackbox["dns"] == ["100.64.0.1"]  # the subdomains resolve as a user's do: at Pi-hole
    grafana = compose_document(core, Service.GRAFANA)["services"]["grafana"]
    assert grafana["environment"]["GF_SERVER_ROOT_URL"] == "http://grafana.home.example.com/"
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD}"
    assert "grafana-secret-value" not in render_compose(core, Service.GRAFANA)
    node = compose_document(gpu, Service.NODE_EXPORTER)["services"]["node-exporter"]
    assert node["volumes"] == ["/:/host:ro", "/var/lib/homelab/metrics:/textfile:ro"]
    assert node["command"] == ["--path.rootfs=/host", "--collector.textfile.directory=/textfile"]
    dcgm = compose_document(gpu, Service.DCGM_EXPORTER)["services"]["dcgm-exporter"]
    assert dcgm["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


def test_settings_of_the_set_are_checked_before_any_host():
    with pytest.raises(SettingsError, match="part of the monitoring set"):
        settings(services="pihole,prometheus")
    with pytest.raises(SettingsError, match="HOMELAB_MONITORING_ALERT_FOR.*expected a duration"):
        settings(monitoring_alert_for="5 minutes")
    with pytest.raises(SettingsError) as refused:
        settings(monitoring_webhook_url="ftp://secret-token@example")
    assert "secret-token" not in str(refused.value) and "http:// or https://" in str(refused.value)
    with pytest.raises(SettingsError) as missing:
        load_settings({**BASE, "monitoring": "true"}, env_file=None)
    wanted = "HOMELAB_GRAFANA_ADMIN_PASSWORD: required while HOMELAB_MONITORING is true (grafana)"
    assert wanted in str(missing.value)


def test_the_plan_renders_into_each_services_configuration():
    """What the deploy uploads: every configured service's files render from a real plan (plain strings
    all through: YAML refuses anything else)."""
    from deploys.library.monitoring_config import config_files

    watched = plan(two_hosts(monitoring_webhook_url="https://ntfy.example/topic"), "core-host").monitoring
    for service in CENTRAL:
        files = config_files(service, watched, webhook_url="https://ntfy.example/topic", ca_bundle=None)
        assert files, service
    prometheus = config_files("prometheus", watched, webhook_url=None, ca_bundle=None)["prometheus.yml"]
    assert "100.64.0.2:9100" in prometheus and "hole.home.example.com" in prometheus


def test_a_host_with_monitoring_off_is_not_watched():
    on, off = settings(**WATCHED), settings()
    plans = inventory(("core-host", ("core",), on), ("gpu-host", ("gpu",), on), ("spare", ("core",), off),
                      addresses={**ADDRESSES, "spare": "100.64.0.9"}, gpus={"gpu-host": True})
    watched = plan(plans, "core-host").monitoring
    assert "spare" not in {t.host for t in watched.targets}
    assert "spare" not in {c.host for c in watched.containers}
