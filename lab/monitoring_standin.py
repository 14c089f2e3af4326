"""LAB STAND-IN monitoring services: what runs inside the grafana, cadvisor and dcgm-exporter stand-in
images (lab/images/monitoring), for the services Debian does not package. The other four (Prometheus,
Alertmanager, the node exporter and the blackbox exporter) run as Debian's own programs in the same
image family.

    grafana        3000  GET /api/health -> {"database": "ok", "version": "lab-standin"} (no auth)
                         GET /metrics -> grafana_build_info (no auth, as Grafana's default)
                         with HTTP basic auth (GF_SECURITY_ADMIN_USER, default admin, and
                         GF_SECURITY_ADMIN_PASSWORD or the file named by GF_SECURITY_ADMIN_PASSWORD__FILE):
                         GET /api/datasources -> the data sources of the provisioning files,
                         GET /api/search?type=dash-db -> the dashboards of the file providers;
                         401 {"message": "invalid username or password"} otherwise
                         GET / -> 302 /login, GET /login -> a page naming the stand-in
    cadvisor       --port=N (default 8080; cAdvisor's other flags are accepted and ignored)
                         GET /healthz -> ok
                         GET /metrics -> cAdvisor's container_last_seen, container_start_time_seconds,
                         container_memory_usage_bytes and container_cpu_usage_seconds_total for every
                         running container, read from the Docker Engine API on /var/run/docker.sock,
                         and cadvisor_version_info
    dcgm-exporter  9400  GET /metrics -> the DCGM exporter's output for one GPU, from the fixture
                         tests/fixtures/dcgm/metrics.txt (built from the exporter's documented format,
                         not captured from a GPU), with its Hostname label set to this host's name;
                         GET /health -> OK

Grafana's provisioning folder ($GF_PATHS_PROVISIONING, default /etc/grafana/provisioning) is read as
Grafana reads it: `datasources/*.yml` (`apiVersion: 1`, `datasources: [{name, type, url, access,
isDefault, uid, jsonData}]`) once at start, and the dashboards of every file provider in
`dashboards/*.yml` (`providers: [{name, type: file, options: {path}}]`: each `*.json` under the path)
at every search, as Grafana's provider polls them. A provisioning file that does not parse, or a data
source without a name, stops the stand-in at start with the error on stderr and exit status 1, as it
stops Grafana; a dashboard that does not parse is logged and left out, as Grafana does. Grafana's data
folder ($GF_PATHS_DATA, default /var/lib/grafana) gets a SQLite `grafana.db` holding one row that names
the stand-in, so the folder is used as Grafana uses it.

Standard library only (and python3-yaml for Grafana's provisioning files, as in the image).
`python3 -m lab.monitoring_standin ROLE [ARGS]`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

ROLES = ("grafana", "cadvisor", "dcgm-exporter")
VERSION = "lab-standin"
DCGM_FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "dcgm" / "metrics.txt"
DOCKER_SOCKET = "/var/run/docker.sock"


class ProvisioningError(Exception):
    """A Grafana provisioning file Grafana would refuse to start with."""


# --- HTTP plumbing ------------------------------------------------------------------------------


class Response:
    def __init__(self, status: int, body: str | bytes, content_type: str = "text/plain; charset=utf-8",
                 headers: dict[str, str] | None = None):
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.content_type = content_type
        self.headers = headers or {}


def json_response(status: int, data: object) -> Response:
    return Response(status, json.dumps(data), "application/json")


def metrics_response(text: str) -> Response:
    return Response(200, text, "text/plain; version=0.0.4; charset=utf-8")


Route = Callable[[str, dict[str, list[str]], dict[str, str]], Response]


def make_handler(route: Route) -> type[BaseHTTPRequestHandler]:
    """A request handler class that answers GET and HEAD (wget --spider sends HEAD) through `route`,
    called with the path, the query and the request headers."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "lab-standin"

        def _answer(self, with_body: bool) -> None:
            url = urlsplit(self.path)
            try:
                resp = route(url.path, parse_qs(url.query), dict(self.headers.items()))
            except Exception as exc:  # noqa: BLE001 - a stand-in answers 500 as the service would
                resp = json_response(500, {"message": f"lab stand-in error: {exc}"})
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if with_body:
                self.wfile.write(resp.body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self._answer(True)

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
            self._answer(False)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
            pass

    return Handler


def serve(route: Route, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:  # noqa: S104 - in a container
    server = ThreadingHTTPServer((host, port), make_handler(route))
    server.daemon_threads = True
    return server


# --- Grafana ------------------------------------------------------------------------------------


def slugify(title: str) -> str:
    """Grafana's dashboard slug: lower case, runs of other characters as one dash."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _stable_uid(kind: str, name: str) -> str:
    return hashlib.sha256(f"{kind}:{name}".encode()).hexdigest()[:14]


def _load_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ProvisioningError(f"failed to read provisioning file {path}: {exc}") from exc


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())


def load_datasources(provisioning: Path) -> list[dict]:
    """The data sources of `provisioning/datasources/*.yml`, as Grafana's /api/datasources lists them."""
    found: list[dict] = []
    for path in _yaml_files(provisioning / "datasources"):
        doc = _load_yaml(path)
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ProvisioningError(f"datasource provisioning file {path}: not a mapping")
        entries = doc.get("datasources") or []
        if not isinstance(entries, list):
            raise ProvisioningError(f"datasource provisioning file {path}: `datasources` is not a list")
        for entry in entries:
            if not isinstance(entry, dict) or not entry.get("name"):
                raise ProvisioningError(f"datasource provisioning file {path}: a data source has no name")
            if not entry.get("type"):
                raise ProvisioningError(
                    f"datasource provisioning file {path}: data source {entry['name']!r} has no type"
                )
            found.append({
                "id": len(found) + 1,
                "uid": str(entry.get("uid") or _stable_uid("datasource", entry["name"])),
                "orgId": int(entry.get("orgId", 1)),
                "name": entry["name"],
                "type": entry["type"],
                "access": entry.get("access", "proxy"),
                "url": entry.get("url", ""),
                "isDefault": bool(entry.get("isDefault", False)),
                "jsonData": entry.get("jsonData") or {},
                "readOnly": not entry.get("editable", False),
            })
    defaults = [d["name"] for d in found if d["isDefault"]]
    if len(defaults) > 1:
        raise ProvisioningError(f"datasource provisioning: more than one default data source: {defaults}")
    return found


def load_dashboard_providers(provisioning: Path) -> list[dict]:
    """The file providers of `provisioning/dashboards/*.yml`: [{name, folder, path}]."""
    providers = []
    for path in _yaml_files(provisioning / "dashboards"):
        doc = _load_yaml(path)
        if doc is None:
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("providers") or [], list):
            raise ProvisioningError(f"dashboard provisioning file {path}: `providers` is not a list")
        for entry in doc.get("providers") or []:
            if not isinstance(entry, dict):
                raise ProvisioningError(f"dashboard provisioning file {path}: a provider is not a mapping")
            if entry.get("type", "file") != "file":
                continue
            folder = (entry.get("options") or {}).get("path")
            if not folder:
                raise ProvisioningError(
                    f"dashboard provisioning file {path}: provider {entry.get('name')!r} has no options.path"
                )
            providers.append({"name": entry.get("name", ""), "folder": entry.get("folder", ""),
                              "path": Path(folder)})
    return providers


def load_dashboards(providers: list[dict], log: Callable[[str], None] = lambda _msg: None) -> list[dict]:
    """Every dashboard the file providers hold, as Grafana's /api/search?type=dash-db lists them
    (sorted by title); a file that does not parse is logged and left out."""
    found = []
    for provider in providers:
        if not provider["path"].is_dir():
            log(f"dashboard provider {provider['name']!r}: no folder {provider['path']}")
            continue
        for path in sorted(provider["path"].rglob("*.json")):
            try:
                board = json.loads(path.read_text())
                title = board["title"]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log(f"failed to load dashboard from {path}: {exc!r}")
                continue
            uid = str(board.get("uid") or _stable_uid("dashboard", str(path)))
            slug = slugify(title)
            found.append({
                "id": 0, "uid": uid, "orgId": 1, "title": title, "uri": f"db/{slug}",
                "url": f"/d/{uid}/{slug}", "slug": slug, "type": "dash-db",
                "tags": list(board.get("tags") or []), "isStarred": False,
                "folderTitle": provider["folder"] or None,
            })
    found.sort(key=lambda d: d["title"].lower())
    for i, board in enumerate(found, start=1):
        board["id"] = i
        if board["folderTitle"] is None:
            del board["folderTitle"]
    return found


def admin_password(env: dict[str, str]) -> str:
    """GF_SECURITY_ADMIN_PASSWORD, or the file GF_SECURITY_ADMIN_PASSWORD__FILE names; Grafana's default
    `admin` when neither is set."""
    file = env.get("GF_SECURITY_ADMIN_PASSWORD__FILE")
    if file:
        return Path(file).read_text().rstrip("\r\n")
    return env.get("GF_SECURITY_ADMIN_PASSWORD", "admin")


class Grafana:
    def __init__(self, provisioning: Path, data: Path, user: str, password: str,
                 log: Callable[[str], None] = lambda _msg: None):
        self.log = log
        self.user = user
        self.password = password
        self.datasources = load_datasources(provisioning)  # Grafana reads them once, at start
        self.providers = load_dashboard_providers(provisioning)
        self.data = data
        load_dashboards(self.providers, log)  # logs what does not load once at start

    def init_data(self) -> None:
        """Grafana's data folder: a SQLite grafana.db (created once), as Grafana keeps one there."""
        self.data.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(self.data / "grafana.db") as db:
            db.execute("CREATE TABLE IF NOT EXISTS lab_standin (note TEXT NOT NULL)")
            if not db.execute("SELECT 1 FROM lab_standin").fetchone():
                db.execute("INSERT INTO lab_standin VALUES (?)",
                           ("LAB STAND-IN for Grafana (lab.monitoring_standin)",))
        db.close()

    def authorized(self, headers: dict[str, str]) -> bool:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        scheme, _, encoded = auth.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user.encode(), self.user.encode()) and \
            hmac.compare_digest(password.encode(), self.password.encode())

    def route(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Response:
        if path == "/api/health":
            return json_response(200, {"commit": VERSION, "database": "ok", "version": VERSION})
        if path == "/metrics":
            return metrics_response(
                "# HELP grafana_build_info A metric with a constant '1' value labeled by version, revision, "
                "branch, and goversion from which Grafana was built\n"
                "# TYPE grafana_build_info gauge\n"
                f'grafana_build_info{{branch="lab",edition="oss",revision="{VERSION}",'
                f'version="{VERSION}"}} 1\n'
            )
        if path in ("", "/"):
            return Response(302, "", headers={"Location": "/login"})
        if path == "/login":
            return Response(200, "<!doctype html><title>Grafana</title><p>LAB STAND-IN for Grafana</p>\n",
                            "text/html; charset=utf-8")
        if path.startswith("/api/"):
            if not self.authorized(headers):
                return json_response(401, {"message": "invalid username or password"})
            if path == "/api/datasources":
                return json_response(200, self.datasources)
            if path == "/api/search":
                kinds = query.get("type", ["dash-db"])
                if "dash-db" not in kinds:
                    return json_response(200, [])
                boards = load_dashboards(self.providers)
                words = query.get("query", [""])[0].lower()
                return json_response(200, [b for b in boards if words in b["title"].lower()])
        return json_response(404, {"message": "Not found"})


def grafana_from_env(env: dict[str, str], log: Callable[[str], None]) -> Grafana:
    return Grafana(
        Path(env.get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning")),
        Path(env.get("GF_PATHS_DATA", "/var/lib/grafana")),
        env.get("GF_SECURITY_ADMIN_USER", "admin"),
        admin_password(env),
        log,
    )


# --- cAdvisor -----------------------------------------------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout: float = 10):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def docker_get(socket_path: str, path: str) -> object:
    """GET `path` of the Docker Engine API on the unix socket; the decoded JSON."""
    conn = UnixHTTPConnection(socket_path)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise OSError(f"docker API GET {path}: {resp.status} {body[:200]!r}")
        return json.loads(body)
    finally:
        conn.close()


def parse_docker_time(value: str) -> float:
    """Docker's RFC 3339 time with nanoseconds (2025-01-02T03:04:05.123456789Z) as unix seconds."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", value)
    if not m:
        raise ValueError(f"not a Docker time: {value!r}")
    base, frac, zone = m.groups()
    stamp = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone)).timestamp()
    return stamp + (float(f"0.{frac}") if frac else 0.0)


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


CADVISOR_METRICS = (
    ("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", "counter"),
    ("container_last_seen", "Last time a container was seen by the exporter", "gauge"),
    ("container_memory_usage_bytes",
     "Current memory usage in bytes, including all memory regardless of when it was accessed", "gauge"),
    ("container_start_time_seconds", "Start time of the container since unix epoch in seconds.", "gauge"),
)


class CAdvisor:
    """cAdvisor's Prometheus metrics for the running containers, from the Docker Engine API; cached
    for `ttl` seconds (Docker's stats call takes about a second per container), the containers read
    concurrently."""

    def __init__(self, socket_path: str = DOCKER_SOCKET, ttl: float = 5.0,
                 clock: Callable[[], float] = time.time):
        self.socket_path = socket_path
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, str] | None = None

    def _container(self, summary: dict) -> dict:
        cid = summary["Id"]
        inspect = docker_get(self.socket_path, f"/containers/{cid}/json")
        stats = docker_get(self.socket_path, f"/containers/{cid}/stats?stream=false&one-shot=true")
        name = (summary.get("Names") or [f"/{inspect.get('Name', cid)}"])[0].lstrip("/")
        return {
            "labels": f'id="/docker/{cid}",image="{_label_value(summary.get("Image", ""))}",'
                      f'name="{_label_value(name)}"',
            "started": parse_docker_time(inspect["State"]["StartedAt"]),
            "memory": (stats.get("memory_stats") or {}).get("usage", 0),
            "cpu": ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0) / 1e9,
        }

    def render(self) -> str:
        now = self.clock()
        listed = docker_get(self.socket_path, "/containers/json")  # running ones only, by default
        running = [c for c in listed if c.get("State", "running") == "running"]
        with ThreadPoolExecutor(max_workers=8) as pool:
            containers = list(pool.map(self._container, running))
        containers.sort(key=lambda c: c["labels"])
        version = docker_get(self.socket_path, "/version")
        values = {
            "container_cpu_usage_seconds_total": lambda c: ("cpu=\"total\"," + c["labels"], c["cpu"]),
            "container_last_seen": lambda c: (c["labels"], int(now)),
            "container_memory_usage_bytes": lambda c: (c["labels"], c["memory"]),
            "container_start_time_seconds": lambda c: (c["labels"], c["started"]),
        }
        lines = [
            "# HELP cadvisor_version_info A metric with a constant '1' value labeled by kernel version, OS "
            "version, docker version, cadvisor version & cadvisor revision.",
            "# TYPE cadvisor_version_info gauge",
            f'cadvisor_version_info{{cadvisorRevision="{VERSION}",cadvisorVersion="{VERSION}",'
            f'dockerVersion="{_label_value(str(version.get("Version", "")))}",'
            f'kernelVersion="{_label_value(str(version.get("KernelVersion", "")))}",'
            f'osVersion="{_label_value(str(version.get("Os", "")))}"}} 1',
        ]
        for name, help_text, kind in CADVISOR_METRICS:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            for c in containers:
                labels, value = values[name](c)
                lines.append(f"{name}{{{labels}}} {_number(value)}")
        return "\n".join(lines) + "\n"

    def metrics(self) -> str:
        with self._lock:
            now = self.clock()
            if self._cached is None or now - self._cached[0] >= self.ttl:
                self._cached = (now, self.render())
            return self._cached[1]

    def route(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Response:
        if path == "/healthz":
            return Response(200, "ok")
        if path == "/metrics":
            return metrics_response(self.metrics())
        if path in ("", "/"):
            return Response(307, "", headers={"Location": "/containers/"})
        if path.startswith("/containers"):
            return Response(200, "LAB STAND-IN for cAdvisor: see /metrics\n")
        return Response(404, "404 page not found\n")


def _number(value: float | int) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def cadvisor_port(args: list[str]) -> int:
    """cAdvisor's `--port=N` (or `-port N`); every other flag is accepted and ignored."""
    port = 8080
    for i, arg in enumerate(args):
        name, eq, value = arg.lstrip("-").partition("=")
        if name == "port":
            if not eq:
                value = args[i + 1] if i + 1 < len(args) else ""
            if not value.isdigit():
                raise SystemExit(f"cadvisor stand-in: bad --port value {value!r}")
            port = int(value)
    return port


# --- DCGM exporter ------------------------------------------------------------------------------


def dcgm_metrics(fixture: Path, hostname: str) -> str:
    """The fixture's samples with the Hostname label set to `hostname`, its comment header left out."""
    lines = []
    for line in fixture.read_text().splitlines():
        if line.startswith("#") and not line.startswith(("# HELP ", "# TYPE ")):
            continue
        lines.append(re.sub(r'Hostname="[^"]*"', f'Hostname="{_label_value(hostname)}"', line))
    return "\n".join(lines) + "\n"


class DcgmExporter:
    def __init__(self, fixture: Path, hostname: str):
        self.text = dcgm_metrics(fixture, hostname)

    def route(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Response:
        if path == "/metrics":
            return metrics_response(self.text)
        if path == "/health":
            return Response(200, "OK")
        return Response(404, "404 page not found\n")


def dcgm_port(args: list[str], env: dict[str, str]) -> int:
    """The DCGM exporter's listen address: `-a/--address ADDR` or DCGM_EXPORTER_LISTEN (default :9400)."""
    address = env.get("DCGM_EXPORTER_LISTEN", ":9400")
    for i, arg in enumerate(args):
        name, eq, value = arg.lstrip("-").partition("=")
        if name in ("a", "address"):
            address = value if eq else (args[i + 1] if i + 1 < len(args) else "")
    return int(address.rpartition(":")[2])


# --- main ---------------------------------------------------------------------------------------


def _log(role: str) -> Callable[[str], None]:
    return lambda msg: print(f"[{role} lab stand-in] {msg}", file=sys.stderr, flush=True)


def build(role: str, args: list[str], env: dict[str, str]) -> tuple[Route, int]:
    """The route and port of `role`; raises ProvisioningError where Grafana would not start."""
    if role == "grafana":
        grafana = grafana_from_env(env, _log(role))
        grafana.init_data()
        return grafana.route, 3000
    if role == "cadvisor":
        return CAdvisor(env.get("LAB_DOCKER_SOCKET", DOCKER_SOCKET)).route, cadvisor_port(args)
    if role == "dcgm-exporter":
        fixture = Path(env.get("LAB_DCGM_METRICS", str(DCGM_FIXTURE)))
        return DcgmExporter(fixture, socket.gethostname()).route, dcgm_port(args, env)
    raise SystemExit(f"usage: python3 -m lab.monitoring_standin {{{','.join(ROLES)}}} [ARGS]")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ROLES:
        print(f"usage: python3 -m lab.monitoring_standin {{{','.join(ROLES)}}} [ARGS]", file=sys.stderr)
        return 2
    role, args = argv[0], argv[1:]
    try:
        route, port = build(role, args, dict(os.environ))
    except ProvisioningError as exc:
        _log(role)(f"error: {exc}")
        return 1
    server = serve(route, port)
    # PID 1 in its container: stop at once on `docker stop`, as the real services do
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _log(role)(f"LAB STAND-IN listening on :{port}")
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
