"""tests/verify/host_rules.py: the expected zone and the wildcard-listener rule, over canned outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "verify"))

from host_rules import (  # noqa: E402
    LIMITS_FORMAT,
    TLS_PROBE,
    ZONE,
    ZONE_SERVICES,
    certificate_problems,
    container_limits,
    expected_zone_ports,
    limit_mismatches,
    proxy_hosts_nginx_rejected,
    sshd_expected,
    wildcard_listeners,
)

from facts.host import ListeningSockets  # noqa: E402


def sockets(case: str) -> list[dict]:
    return json.loads((TESTS / "facts" / "host.ListeningSockets" / f"{case}.json").read_text())["fact"]


def parsed(*lines: str) -> list[dict]:
    return ListeningSockets().process([*lines, "### pyinfra-ss exit 0"])


def test_zone_is_stated_literally():
    assert ZONE == "self-hosted"
    assert ZONE_SERVICES == ["ssh"]


def test_zone_ports_follow_the_services_placed_on_the_host():
    every = ["nginx-proxy-manager", "pihole", "ollama", "comfyui", "open-webui"]
    assert expected_zone_ports(every) == ["80/tcp", "443/tcp", "81/tcp", "53/tcp", "53/udp"]
    assert expected_zone_ports(["pihole"]) == ["53/tcp", "53/udp"]
    assert expected_zone_ports(["ollama", "comfyui", "open-webui"]) == []
    # behind a proxy on another host: the proxied ports, and not 80/443/81/53
    assert expected_zone_ports(["ollama", "comfyui", "open-webui"], proxy_elsewhere=True) == [
        "11434/tcp", "8188/tcp", "8080/tcp"
    ]
    assert expected_zone_ports(["pihole"], proxy_elsewhere=True) == ["53/tcp", "53/udp", "80/tcp"]


def test_recorded_lab_host_has_only_sshd_on_every_interface():
    assert wildcard_listeners(sockets("recorded-debian12-lab")) == []


def test_anything_else_on_every_interface_is_named():
    found = wildcard_listeners(parsed(
        'tcp  LISTEN 0  4096  0.0.0.0:81  0.0.0.0:*  users:(("docker-proxy",pid=9,fd=7))',
        'tcp  LISTEN 0  4096  [::]:81  [::]:*  users:(("docker-proxy",pid=10,fd=7))',
        'udp  UNCONN 0  0  *:5353  *:*  users:(("avahi-daemon",pid=5,fd=12))',
        'tcp  LISTEN 0  128  0.0.0.0:2222  0.0.0.0:*',
        'tcp  LISTEN 0  128  0.0.0.0:22  0.0.0.0:*  users:(("sshd",pid=1,fd=3))',
    ))
    assert found == [
        "tcp 0.0.0.0:81 (docker-proxy)",
        "tcp :::81 (docker-proxy)",
        "udp *:5353 (avahi-daemon)",
        "tcp 0.0.0.0:2222 (process unknown: not root?)",
    ]


def test_tailscaled_wireguard_port_and_dhcp_clients_are_allowed_but_not_a_tailscaled_tcp_listener():
    found = wildcard_listeners(parsed(
        'udp  UNCONN 0  0  0.0.0.0:41641  0.0.0.0:*  users:(("tailscaled",pid=7,fd=9))',
        'udp  UNCONN 0  0  [::]:41641  [::]:*  users:(("tailscaled",pid=7,fd=10))',
        'udp  UNCONN 0  0  0.0.0.0:68  0.0.0.0:*  users:(("dhclient",pid=3,fd=6))',
        'tcp  LISTEN 0  4096  0.0.0.0:8080  0.0.0.0:*  users:(("tailscaled",pid=7,fd=11))',
        'tcp  LISTEN 0  4096  100.64.0.10:80  0.0.0.0:*  users:(("docker-proxy",pid=8,fd=7))',
    ))
    assert found == ["tcp 0.0.0.0:8080 (tailscaled)"]


def test_proxy_hosts_nginx_rejected_names_each_offline_host_of_ours():
    err = 'nginx: [emerg] unknown directive "x"\nnginx: configuration file /etc/nginx/nginx.conf test failed'
    ours = "homelab-pyinfra"
    hosts = [
        {"id": 1, "domain_names": ["chat.home.test"], "meta": {"managed_by": ours, "nginx_online": True}},
        {"id": 2, "domain_names": ["comfy.home.test"],
         "meta": {"managed_by": ours, "nginx_online": False, "nginx_err": err}},
        {"id": 3, "domain_names": ["Hole.Home.Test"], "meta": {"nginx_online": False, "nginx_err": err}},
        {"id": 4, "domain_names": ["other.home.test"], "meta": {"nginx_online": False, "nginx_err": err}},
        {"id": 5, "domain_names": ["ollama.home.test"], "meta": {"managed_by": ours}},
    ]
    line = 'nginx: [emerg] unknown directive "x" nginx: configuration file /etc/nginx/nginx.conf test failed'
    assert proxy_hosts_nginx_rejected(hosts, ["hole.home.test", "chat.home.test"]) == [
        f"#2 comfy.home.test: {line}",
        f"#3 Hole.Home.Test: {line}",
        "#5 ollama.home.test: no config written",
    ]
    assert proxy_hosts_nginx_rejected(hosts[:1], ["chat.home.test"]) == []


def test_the_deploy_and_its_verification_agree():
    """tests/verify states what a host must look like on its own (so a wrong value in the deploy
    fails there); this fast test says early when the two disagree, and then one of them is wrong."""
    from host_rules import (
        DATA_FOLDERS,
        DATA_OWNER,
        GPU_SERVICES,
        HOST_PORTS_BY_SERVICE,
        NETWORK,
        NPM_API_PORT,
        PRIVATE_FILES,
        PROJECTS_ROOT,
        PROXIED_PORTS,
        SERVICES,
        SUBDOMAINS,
        UPSTREAMS,
    )

    from deploys.library.catalog import CATALOG as EVERY_SERVICE
    from deploys.library.catalog import NETWORK as DEPLOY_NETWORK
    from deploys.library.catalog import PROJECTS_ROOT as DEPLOY_PROJECTS_ROOT
    from deploys.library.catalog import Service, selectable_services

    assert SERVICES == selectable_services()
    CATALOG = {s: EVERY_SERVICE[s] for s in SERVICES}  # noqa: N806 - the five (the monitoring set: below)
    assert {s: CATALOG[s].name for s in SERVICES} == {s: s for s in SERVICES}
    assert set(GPU_SERVICES) == {s for s, spec in CATALOG.items() if spec.gpu}
    published = {s: [f"{p.number}/{p.protocol}" for p in c.host_ports] for s, c in CATALOG.items()}
    assert HOST_PORTS_BY_SERVICE == {s: ports for s, ports in published.items() if ports}
    assert NPM_API_PORT == CATALOG[Service.NGINX_PROXY_MANAGER].upstream_port
    assert {s: port for s, (port, _) in UPSTREAMS.items()} == {
        s: CATALOG[s].upstream_port for s in UPSTREAMS
    }
    assert SUBDOMAINS == {spec.subdomain: s for s, spec in CATALOG.items() if spec.subdomain}
    assert PROXIED_PORTS == {s: f"{spec.upstream_port}/tcp" for s, spec in CATALOG.items() if spec.subdomain}
    assert (NETWORK, PROJECTS_ROOT) == (DEPLOY_NETWORK, str(DEPLOY_PROJECTS_ROOT))
    generated = {secret.generated_file for spec in CATALOG.values() for secret in spec.secrets}
    assert generated - {None} <= set(PRIVATE_FILES)
    assert DATA_FOLDERS == {s: [v.source for v in spec.volumes] for s, spec in CATALOG.items()}
    assert {v.owner for spec in CATALOG.values() for v in spec.volumes} == {DATA_OWNER}


def test_backup_rules_are_stated_literally_and_the_age_is_checked():
    from host_rules import BACKUP_LAST_SUCCESS, BACKUP_TIMER, backup_age_problem

    assert BACKUP_TIMER == "homelab-backup.timer"
    assert BACKUP_LAST_SUCCESS == "/var/lib/homelab-backup/last-success"
    now = 1796145195
    assert backup_age_problem(now, f"{now - 3600}\n", 48) is None
    old = backup_age_problem(now, f"{now - 49 * 3600}\n", 48)
    assert old == "the last good backup is 49 h old (more than 48 h)"
    assert "no backup has completed" in backup_age_problem(now, "", 48)
    assert "not epoch seconds" in backup_age_problem(now, "yesterday", 48)


@pytest.mark.parametrize("password_logins", [None, True, False])
@pytest.mark.parametrize("root_login", ["auto", "no", "prohibit-password", "unchanged"])
@pytest.mark.parametrize(("user", "password"), [("root", False), ("root", True), ("admin", False),
                                               ("admin", True)])
def test_sshd_expectations_agree_with_what_the_deploy_writes(password_logins, root_login, user, password):
    from deploys.library.hardening import Login, sshd_policy
    from deploys.library.settings import load_settings
    from operations.sshd import expected_values

    data = {"domain": "home.example.com", "tailscale_allowed_ips": "100.64.0.0/10",
            "ssh_root_login": root_login, "services": "ollama"}
    if password_logins is not None:
        data["ssh_password_logins"] = password_logins
    settings = load_settings(data, env_file=None)
    written = expected_values(list(sshd_policy(settings, Login(True, user, password)).lines))
    assert sshd_expected(password_logins, root_login, user, password) == written
# `docker inspect --format LIMITS_FORMAT pihole ollama open-webui` (Docker 20.10): pihole with 512m and one
# CPU, ollama with 40% of a 32 GiB host and no CPU limit, Open WebUI stopped
INSPECTED = (
    '"/pihole" running 536870912 536870912 1000000000\n'
    '"/ollama" running 12884901888 12884901888 0\n'
    '"/open-webui" exited 2147483648 2147483648 2000000000\n'
)
PLANNED = {"pihole": (512 * 2**20, 10**9), "ollama": (12 * 2**30, 0), "open-webui": (2 * 2**30, 2 * 10**9)}


def test_limits_format_reads_state_memory_swap_and_cpus():
    assert "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}}" in LIMITS_FORMAT
    assert container_limits(INSPECTED + "[]\n") == {
        "pihole": {"state": "running", "memory": 536870912, "memory_swap": 536870912, "nano_cpus": 10**9},
        "ollama": {"state": "running", "memory": 12884901888, "memory_swap": 12884901888, "nano_cpus": 0},
        "open-webui": {"state": "exited", "memory": 2147483648, "memory_swap": 2147483648,
                       "nano_cpus": 2 * 10**9},
    }


def test_running_containers_with_the_planned_limits_pass():
    assert limit_mismatches(PLANNED, container_limits(INSPECTED)) == []


def test_a_32_bit_float_cpu_count_from_compose_still_matches():
    found = container_limits('"/pihole" running 536870912 536870912 100000001\n')
    assert limit_mismatches({"pihole": (512 * 2**20, 10**8)}, found) == []


def test_a_kernel_that_dropped_the_swap_limit_is_no_mismatch():
    found = container_limits('"/pihole" running 536870912 -1 1000000000\n')
    assert limit_mismatches({"pihole": (512 * 2**20, 10**9)}, found) == []


def test_limits_other_than_planned_are_named():
    found = container_limits(
        '"/pihole" running 0 0 0\n'  # deployed before limits: none
        '"/ollama" running 12884901888 25769803776 4000000000\n'  # swap allowed, CPUs capped
    )
    assert limit_mismatches(PLANNED, found) == [
        "pihole: memory limit 0 bytes, planned 536870912",
        "pihole: 0 CPUs, planned 1",
        "ollama: memory + swap limit 25769803776 bytes, planned 12884901888 (no swap)",
        "ollama: 4 CPUs, planned 0",
    ]


def test_limit_safety_is_stated_here_not_taken_from_the_plan():
    from host_rules import container_limits, limit_safety_problems

    gib = 2**30
    found = container_limits("\n".join([
        f'"/pihole" running {gib // 2} {gib // 2} 1000000000',
        '"/ollama" running 0 0 0',  # no memory limit
        f'"/comfyui" running {32 * gib} {32 * gib} 0',  # the host's whole memory: limits nothing
        f'"/open-webui" running {2 * gib} {4 * gib} 2000000000',  # swap beyond its limit
        f'"/nginx-proxy-manager" running {gib} -1 1000000000',  # no swap accounting: accepted
    ]))
    assert limit_safety_problems(found, 32 * gib, lifted=()) == [
        "ollama: runs without a memory limit",
        f"comfyui: memory limit {32 * gib} bytes is not below the host's {32 * gib}",
        f"open-webui: may swap beyond its memory limit ({4 * gib} bytes)",
    ]
    assert limit_safety_problems(found, 32 * gib, lifted=("ollama", "comfyui", "open-webui")) == []


# -- HTTPS --------------------------------------------------------------------------------------------
NOW = 1_800_000_000.0  # 2027-01-15


def _probe(names, days_left):
    import time as _time

    not_after = _time.strftime("%b %d %H:%M:%S %Y GMT", _time.gmtime(NOW + days_left * 86400))
    return {"verified": True, "names": names, "not_after": not_after}


def test_the_wildcard_with_time_left_passes():
    assert certificate_problems(_probe(["*.example.test", "example.test"], 60), "chat.example.test",
                                "example.test", NOW) == ([], [])


def test_another_certificate_expired_or_unverified_fails_and_close_expiry_warns():
    chat, domain, wildcard = "chat.example.test", "example.test", ["*.example.test", "example.test"]
    failures, _ = certificate_problems(_probe([chat], 60), chat, domain, NOW)
    assert failures and "another certificate than the wildcard" in failures[0]
    failures, _ = certificate_problems(_probe(wildcard, -1), chat, domain, NOW)
    assert failures and "expired" in failures[0]
    failures, warned = certificate_problems(_probe(wildcard, 20), chat, domain, NOW)
    assert not failures and warned and "expires in 20 days" in warned[0]
    failures, _ = certificate_problems({"verified": False, "error": "self-signed certificate"},
                                       "chat.example.test", "example.test", NOW)
    assert failures == ["https://chat.example.test/ does not verify: self-signed certificate"]


def test_the_probe_verifies_the_chain_and_the_name_against_the_given_roots(tmp_path):
    """TLS_PROBE against a real TLS server on this machine (openssl-made CA and wildcard certificate)."""
    import socket
    import ssl
    import subprocess
    import threading

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
            "-subj", "/CN=test root", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")
    openssl("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=*.example.test")
    (tmp_path / "ext").write_text("subjectAltName=DNS:*.example.test,DNS:example.test\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "leaf.pem", "-days", "30", "-extfile", "ext")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        for _ in range(3):
            conn, _ = listener.accept()
            try:
                with server.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    threading.Thread(target=serve, daemon=True).start()

    def probe(name, roots):
        out = subprocess.run([sys.executable, "-c", TLS_PROBE, name, "127.0.0.1", str(port)], input=roots,
                             capture_output=True, text=True, timeout=30, check=True).stdout
        return json.loads(out)

    roots = (tmp_path / "ca.pem").read_text()
    good = probe("chat.example.test", roots)
    assert good["verified"] and set(good["names"]) == {"*.example.test", "example.test"}, good
    assert not probe("chat.other.test", roots)["verified"]  # the name is checked
    assert not probe("chat.example.test", "")["verified"]  # the system's roots do not know the test root
    listener.close()


def test_monitoring_rules_read_prometheus_and_the_host_metrics():
    from host_rules import firing_alerts, host_metric_names, target_problems

    answer = {"data": {"activeTargets": [
        {"labels": {"job": "node-exporter", "host": "a", "instance": "node-exporter:9100"}, "health": "up"},
        {"labels": {"job": "cadvisor", "host": "b", "instance": "100.64.0.2:9338"}, "health": "down",
         "lastError": "connection refused"},
    ]}}
    expected = {("node-exporter", "a"), ("cadvisor", "b"), ("node-exporter", "b")}
    assert target_problems(answer, expected) == [
        "node-exporter on b: not scraped",
        "cadvisor 100.64.0.2:9338 (b): down: connection refused",
    ]
    assert target_problems(answer, {("node-exporter", "a")})[0].startswith("cadvisor")
    alerts = {"data": {"alerts": [
        {"labels": {"alertname": "ContainerDown", "host": "a", "container": "comfyui"}, "state": "firing"},
        {"labels": {"alertname": "TargetDown", "host": "b", "instance": "x:9100"}, "state": "pending"},
    ]}}
    assert firing_alerts(alerts) == ["ContainerDown a comfyui"]
    text = ('# TYPE homelab_container_running gauge\nhomelab_container_running{name="pihole"} 1\n'
            'homelab_container_running{name="comfyui"} 0\nhomelab_cold_storage_avail_bytes 1e9\n')
    assert host_metric_names(text) == {"pihole": 1.0, "comfyui": 0.0}


def test_the_monitoring_expectations_agree_with_the_deploy():
    from host_rules import (
        EXPORTER_PORTS,
        GRAFANA_DASHBOARDS,
        GRAFANA_PORT,
        HOST_METRICS_FILE,
        MONITORING_CENTRAL,
        MONITORING_EVERY_HOST,
        MONITORING_GPU_HOST,
        MONITORING_HOST_PROXIED_PORTS,
        SCRAPED,
    )

    from deploys.library import monitoring_steps
    from deploys.library.catalog import CATALOG, EVERY_HOST, METRICS_ROOT, MONITORING_GROUP, set_members
    from deploys.library.monitoring_config import grafana_files
    from tests.unit.test_monitoring_plan import plan, two_hosts

    members = set_members("monitoring")
    assert set(MONITORING_CENTRAL) == {s for s in members if CATALOG[s].group == MONITORING_GROUP}
    assert set(MONITORING_EVERY_HOST) == {s for s in members if CATALOG[s].group == EVERY_HOST
                                          and not CATALOG[s].needs_gpu}
    assert set(MONITORING_GPU_HOST) == {s for s in members if CATALOG[s].needs_gpu}
    assert set(SCRAPED) == {s for s in members if CATALOG[s].metrics}
    assert GRAFANA_PORT == CATALOG["grafana"].upstream_port
    assert EXPORTER_PORTS == {s: f"{CATALOG[s].upstream_port}/tcp" for s in members
                              if CATALOG[s].group == EVERY_HOST}
    assert MONITORING_HOST_PROXIED_PORTS == {s: f"{CATALOG[s].upstream_port}/tcp" for s in members
                                             if CATALOG[s].subdomain}
    assert HOST_METRICS_FILE == f"{METRICS_ROOT}/homelab.prom"
    assert monitoring_steps.UNIT == "homelab-metrics"
    files = grafana_files(plan(two_hosts(), "core-host").monitoring)
    uids = sorted(json.loads(text)["uid"] for name, text in files.items() if name.endswith(".json"))
    assert uids == sorted(GRAFANA_DASHBOARDS)


def test_the_zone_opens_the_exporters_where_prometheus_is_elsewhere_and_grafana_for_other_proxies():
    from host_rules import expected_zone_ports

    watched = ("pihole", "node-exporter", "cadvisor")
    assert expected_zone_ports(watched) == ["53/tcp", "53/udp"]
    assert expected_zone_ports(watched, watched_from_elsewhere=True) == [
        "53/tcp", "53/udp", "9100/tcp", "9338/tcp"]
    central = ("nginx-proxy-manager", "grafana", "prometheus")
    assert expected_zone_ports(central) == ["80/tcp", "443/tcp", "81/tcp"]
    assert expected_zone_ports(central, proxies_elsewhere=True) == ["80/tcp", "443/tcp", "81/tcp", "3000/tcp"]
