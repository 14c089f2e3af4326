"""The lab's monitoring stand-ins (lab/monitoring_standin.py) served over real HTTP in-process: Grafana's
auth, data sources and dashboards from provisioning files and its refusal to start on a bad one,
cAdvisor's metrics from a fake Docker Engine API on a unix socket, and the DCGM exporter's fixture."""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from lab import monitoring_standin as ms

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_DCGM = ("DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_UTIL",
                 "DCGM_FI_DEV_POWER_USAGE")

# one sample line of the Prometheus text format: name, optional {label="value",...}, value
SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*'
    r'(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*\})?'
    r' [-+]?(\d+(\.\d*)?([eE][-+]?\d+)?|NaN|[-+]?Inf)( -?\d+)?$'
)


def parse_exposition(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Check `text` line by line as the Prometheus text format and return name -> [(labels, value)];
    every sample's name must have had its # TYPE line before it."""
    typed: set[str] = set()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("counter", "gauge", "untyped", "summary", "histogram"), line
            typed.add(name)
        elif line.startswith("#") or not line:
            continue
        else:
            assert SAMPLE.match(line), f"not a Prometheus sample line: {line!r}"
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            assert name in typed, f"{name} has no # TYPE line before its samples"
            labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"', line.partition("}")[0]))
            samples.setdefault(name, []).append((labels, float(line.rsplit(" ", 1)[1])))
    return samples


@contextmanager
def serving(route):
    server = ms.serve(route, 0, "127.0.0.1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- Grafana ------------------------------------------------------------------------------------


def provisioning(tmp_path: Path) -> Path:
    """The deploy's layout: datasources/prometheus.yml, the file provider and its dashboards."""
    prov = tmp_path / "provisioning"
    (prov / "datasources").mkdir(parents=True)
    (prov / "dashboards").mkdir()
    (prov / "datasources" / "prometheus.yml").write_text(
        "apiVersion: 1\n"
        "datasources:\n"
        "  - name: Prometheus\n    type: prometheus\n    uid: prometheus\n"
        "    url: http://prometheus:9090\n    access: proxy\n    isDefault: true\n"
    )
    (prov / "dashboards" / "homelab.yml").write_text(
        "apiVersion: 1\n"
        "providers:\n"
        f"  - name: homelab\n    type: file\n    options:\n      path: {prov / 'dashboards'}\n"
    )
    (prov / "dashboards" / "host.json").write_text(json.dumps({"uid": "homelab-host", "title": "Host"}))
    (prov / "dashboards" / "gpu.json").write_text(json.dumps({"uid": "homelab-gpu", "title": "GPU & Power"}))
    return prov


def grafana(tmp_path: Path, prov: Path, password: str = "s3cret") -> ms.Grafana:
    env = {"GF_PATHS_PROVISIONING": str(prov), "GF_PATHS_DATA": str(tmp_path / "data"),
           "GF_SECURITY_ADMIN_USER": "admin", "GF_SECURITY_ADMIN_PASSWORD": password}
    return ms.grafana_from_env(env, lambda _msg: None)


def test_grafana_health_and_metrics_need_no_login(tmp_path):
    with serving(grafana(tmp_path, provisioning(tmp_path)).route) as url:
        health = requests.get(f"{url}/api/health", timeout=5)
        assert health.status_code == 200
        assert health.json()["database"] == "ok" and health.json()["version"] == "lab-standin"
        assert requests.head(f"{url}/api/health", timeout=5).status_code == 200  # wget --spider
        metrics = parse_exposition(requests.get(f"{url}/metrics", timeout=5).text)
        assert metrics["grafana_build_info"][0][1] == 1


@pytest.mark.parametrize("auth", [None, ("admin", "wrong"), ("root", "s3cret"), ("admin", "")])
def test_grafana_api_refuses_without_the_admin_password(tmp_path, auth):
    with serving(grafana(tmp_path, provisioning(tmp_path)).route) as url:
        for path in ("/api/datasources", "/api/search?type=dash-db"):
            resp = requests.get(f"{url}{path}", auth=auth, timeout=5)
            assert resp.status_code == 401
            assert resp.json() == {"message": "invalid username or password"}


def test_grafana_lists_the_provisioned_data_sources_and_dashboards(tmp_path):
    prov = provisioning(tmp_path)
    with serving(grafana(tmp_path, prov).route) as url:
        sources = requests.get(f"{url}/api/datasources", auth=("admin", "s3cret"), timeout=5).json()
        assert [(s["name"], s["type"], s["uid"], s["url"], s["access"], s["isDefault"]) for s in sources] == [
            ("Prometheus", "prometheus", "prometheus", "http://prometheus:9090", "proxy", True)
        ]
        boards = requests.get(f"{url}/api/search?type=dash-db", auth=("admin", "s3cret"), timeout=5).json()
        assert [(b["uid"], b["title"], b["type"], b["uri"], b["url"]) for b in boards] == [
            ("homelab-gpu", "GPU & Power", "dash-db", "db/gpu-power", "/d/homelab-gpu/gpu-power"),
            ("homelab-host", "Host", "dash-db", "db/host", "/d/homelab-host/host"),
        ]
        # the provider's folder is read again at every search, as Grafana's provider polls it
        (prov / "dashboards" / "containers.json").write_text(json.dumps({"uid": "c", "title": "Containers"}))
        (prov / "dashboards" / "broken.json").write_text("{not json")
        boards = requests.get(f"{url}/api/search?type=dash-db", auth=("admin", "s3cret"), timeout=5).json()
        assert [b["title"] for b in boards] == ["Containers", "GPU & Power", "Host"]
        folders = requests.get(f"{url}/api/search?type=dash-folder", auth=("admin", "s3cret"), timeout=5)
        assert folders.json() == []


def test_grafana_reads_the_password_from_a_file(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    env = {"GF_PATHS_PROVISIONING": str(provisioning(tmp_path)), "GF_PATHS_DATA": str(tmp_path / "data"),
           "GF_SECURITY_ADMIN_PASSWORD__FILE": str(secret)}
    with serving(ms.grafana_from_env(env, lambda _msg: None).route) as url:
        resp = requests.get(f"{url}/api/datasources", auth=("admin", "from-a-file"), timeout=5)
        assert resp.status_code == 200


def test_grafana_keeps_a_database_in_its_data_folder(tmp_path):
    stand_in = grafana(tmp_path, provisioning(tmp_path))
    stand_in.init_data()
    stand_in.init_data()  # a restart keeps it
    db = tmp_path / "data" / "grafana.db"
    assert db.read_bytes().startswith(b"SQLite format 3\0")


UNREADABLE = "failed to read provisioning file"


@pytest.mark.parametrize(("file", "text", "error"), [
    ("datasources/prometheus.yml", "apiVersion: 1\ndatasources: [name: x\n", UNREADABLE),
    ("datasources/prometheus.yml", "apiVersion: 1\ndatasources:\n  - type: prometheus\n", "has no name"),
    ("datasources/prometheus.yml", "apiVersion: 1\ndatasources: {name: x}\n", "is not a list"),
    ("dashboards/homelab.yml", "providers:\n  - name: homelab\n   type: file\n", UNREADABLE),
    ("dashboards/homelab.yml", "providers:\n  - name: homelab\n    type: file\n", "has no options.path"),
])
def test_a_provisioning_file_grafana_refuses_stops_the_stand_in(tmp_path, file, text, error):
    prov = provisioning(tmp_path)
    (prov / file).write_text(text)
    with pytest.raises(ms.ProvisioningError, match=error):
        grafana(tmp_path, prov)
    # as the image runs it: exit status 1, the error on stderr, nothing listening
    proc = subprocess.run(
        [sys.executable, "-m", "lab.monitoring_standin", "grafana"], cwd=ROOT, capture_output=True, text=True,
        timeout=30, env={"GF_PATHS_PROVISIONING": str(prov), "GF_PATHS_DATA": str(tmp_path / "data"),
                         "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 1
    assert error in proc.stderr and str(prov / file) in proc.stderr


def test_slugs_are_grafanas():
    assert ms.slugify("Host") == "host"
    assert ms.slugify("GPU & Power (W)") == "gpu-power-w"
    assert ms.slugify("  Containers: by host  ") == "containers-by-host"


# --- cAdvisor -----------------------------------------------------------------------------------


CONTAINERS = {
    "a" * 64: {"name": "prometheus", "image": "registry.world.lab.test/prom/prometheus:v2.55.1",
               "started": "2026-01-02T03:04:05.5Z", "memory": 52428800, "cpu_ns": 12_500_000_000},
    "b" * 64: {"name": "grafana", "image": "registry.world.lab.test/grafana/grafana:12.2.1",
               "started": "2026-01-02T03:04:06.123456789Z", "memory": 1048576, "cpu_ns": 3_000_000_000},
}


class FakeDocker(ThreadingHTTPServer):
    """The Docker Engine API's calls cAdvisor's stand-in makes, on a unix socket."""

    address_family = socket.AF_UNIX

    def __init__(self, path: str, containers: dict, stats_delay: float = 0.0):
        self.containers = containers
        self.stats_delay = stats_delay
        self.calls: list[str] = []
        super().__init__(path, self.Handler)

    def server_bind(self):
        self.socket.bind(self.server_address)

    class Handler(BaseHTTPRequestHandler):
        def address_string(self):
            return "unix"

        def do_GET(self):  # noqa: N802
            server: FakeDocker = self.server
            server.calls.append(self.path)
            path = self.path.split("?")[0]
            parts = path.strip("/").split("/")
            if path == "/containers/json":
                body = [{"Id": cid, "Names": [f"/{c['name']}"], "Image": c["image"], "State": "running"}
                        for cid, c in server.containers.items()]
            elif path == "/version":
                body = {"Version": "20.10.24+dfsg1", "KernelVersion": "6.1.0", "Os": "linux"}
            elif len(parts) == 3 and parts[0] == "containers" and parts[1] in server.containers:
                c = server.containers[parts[1]]
                if parts[2] == "json":
                    body = {"Name": f"/{c['name']}", "State": {"Running": True, "StartedAt": c["started"]}}
                else:
                    assert "stream=false" in self.path
                    time.sleep(server.stats_delay)
                    body = {"memory_stats": {"usage": c["memory"]},
                            "cpu_stats": {"cpu_usage": {"total_usage": c["cpu_ns"]}}}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass


@contextmanager
def fake_docker(tmp_path, containers=CONTAINERS, stats_delay=0.0):
    path = str(tmp_path / "docker.sock")
    server = FakeDocker(path, containers, stats_delay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, path
    finally:
        server.shutdown()
        server.server_close()


def test_cadvisor_reports_the_running_containers_from_the_docker_socket(tmp_path):
    with fake_docker(tmp_path) as (_docker, sock), \
            serving(ms.CAdvisor(sock, clock=lambda: 1_800_000_000.7).route) as url:
        assert requests.get(f"{url}/healthz", timeout=5).text == "ok"
        text = requests.get(f"{url}/metrics", timeout=5).text
    metrics = parse_exposition(text)
    assert metrics["cadvisor_version_info"] == [(
        {"cadvisorRevision": "lab-standin", "cadvisorVersion": "lab-standin",
         "dockerVersion": "20.10.24+dfsg1", "kernelVersion": "6.1.0", "osVersion": "linux"}, 1.0)]

    def by_name(metric):
        return {labels["name"]: (labels, value) for labels, value in metrics[metric]}

    prom = {"id": f"/docker/{'a' * 64}", "image": CONTAINERS["a" * 64]["image"], "name": "prometheus"}
    assert by_name("container_last_seen")["prometheus"] == (prom, 1_800_000_000)
    assert by_name("container_start_time_seconds")["prometheus"] == (prom, 1767323045.5)
    assert by_name("container_start_time_seconds")["grafana"][1] == pytest.approx(1767323046.123456789)
    assert by_name("container_memory_usage_bytes")["prometheus"] == (prom, 52428800)
    assert by_name("container_cpu_usage_seconds_total")["prometheus"] == ({"cpu": "total", **prom}, 12.5)
    assert set(by_name("container_cpu_usage_seconds_total")) == {"prometheus", "grafana"}
    for name in ("container_last_seen", "container_start_time_seconds", "container_memory_usage_bytes",
                 "container_cpu_usage_seconds_total"):
        assert f"# HELP {name} " in text
    assert "# TYPE container_cpu_usage_seconds_total counter" in text


def test_cadvisor_reads_the_containers_concurrently_and_caches_for_a_while(tmp_path):
    containers = {f"{i:064x}": {**CONTAINERS["a" * 64], "name": f"c{i}"} for i in range(6)}
    now = [1000.0]
    with fake_docker(tmp_path, containers, stats_delay=0.5) as (docker, sock):
        cadvisor = ms.CAdvisor(sock, ttl=5, clock=lambda: now[0])
        started = time.monotonic()
        first = cadvisor.metrics()
        assert time.monotonic() - started < 2  # six stats calls of 0.5 s each, side by side
        assert len(parse_exposition(first)["container_memory_usage_bytes"]) == 6
        calls = len(docker.calls)
        now[0] += 4
        assert cadvisor.metrics() == first and len(docker.calls) == calls
        now[0] += 2
        del containers[f"{0:064x}"]
        assert len(parse_exposition(cadvisor.metrics())["container_memory_usage_bytes"]) == 5


def test_cadvisor_takes_its_port_flag_and_ignores_the_others():
    assert ms.cadvisor_port(["--port=9338", "--docker_only=true", "--housekeeping_interval=15s"]) == 9338
    assert ms.cadvisor_port(["-port", "9339"]) == 9339
    assert ms.cadvisor_port(["--docker_only=true"]) == 8080
    with pytest.raises(SystemExit):
        ms.cadvisor_port(["--port=abc"])


def test_docker_times_with_nanoseconds():
    assert ms.parse_docker_time("2026-01-02T03:04:05Z") == 1767323045
    assert ms.parse_docker_time("2026-01-02T03:04:05.25+01:00") == 1767319445.25


# --- DCGM exporter ------------------------------------------------------------------------------


def test_dcgm_serves_the_fixture_with_the_contract_metrics_and_labels(tmp_path):
    with serving(ms.DcgmExporter(ms.DCGM_FIXTURE, "gpu-host-1").route) as url:
        resp = requests.get(f"{url}/metrics", timeout=5)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
    metrics = parse_exposition(resp.text)
    for name in CONTRACT_DCGM:
        [(labels, _value)] = metrics[name]
        assert {"gpu", "UUID", "device", "modelName", "Hostname"} <= set(labels), name
        assert labels["Hostname"] == "gpu-host-1" and labels["gpu"] == "0"
    assert "LAB STAND-IN" not in resp.text  # the fixture's own comment header stays out
    fb = metrics["DCGM_FI_DEV_FB_USED"][0][1] + metrics["DCGM_FI_DEV_FB_FREE"][0][1]
    assert 1000 < fb < 200_000  # MiB
    assert "BUILT FROM THE DOCUMENTED FORMAT, NOT CAPTURED FROM A REAL GPU" in ms.DCGM_FIXTURE.read_text()


def test_dcgm_listen_address():
    assert ms.dcgm_port([], {}) == 9400
    assert ms.dcgm_port(["-a", ":9401"], {}) == 9401
    assert ms.dcgm_port([], {"DCGM_EXPORTER_LISTEN": "0.0.0.0:9402"}) == 9402


def test_the_parser_check_rejects_what_prometheus_would():
    with pytest.raises(AssertionError):
        parse_exposition("# TYPE x gauge\nx{a=b} 1\n")
    with pytest.raises(AssertionError):
        parse_exposition("x 1\n")  # no TYPE
    with pytest.raises(AssertionError):
        parse_exposition('# TYPE x gauge\nx{a="b"} one\n')


def test_unknown_role_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "lab.monitoring_standin", "kibana"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "usage" in proc.stderr


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_grafana_basic_auth_header_parsing(tmp_path):
    stand_in = grafana(tmp_path, provisioning(tmp_path))
    assert stand_in.authorized({"Authorization": f"Basic {_b64('admin:s3cret')}"})
    assert stand_in.authorized({"authorization": f"basic {_b64('admin:s3cret')}"})
    assert not stand_in.authorized({"Authorization": "Basic !!!"})
    assert not stand_in.authorized({"Authorization": f"Bearer {_b64('admin:s3cret')}"})
    assert not stand_in.authorized({"Authorization": f"Basic {_b64('admin:s3cret:x')}"})
