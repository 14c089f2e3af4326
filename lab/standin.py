"""LAB STAND-IN service processes: what runs inside the `homelab-lab/standin-<role>:lab` images.

No upstream registry is reachable on the project's machines, so the five upstream images cannot be
pulled; the lab pushes these stand-ins to its own registry (lab/world.py) under the upstream images'
repository paths and tags, and the lab hosts pull them from there. Each stand-in listens on the
upstream image's ports, answers the health check the deploy's service catalog declares, and keeps
what the tests need of the service's data where the service does:

    nginx-proxy-manager  81 the NPM API double (lab.doubles.npm_double), 80 and 443 Debian's nginx
                         serving the double's proxy hosts (lab.doubles.npm_nginx) with the
                         certificates Debian's certbot gets for it (lab.doubles.npm_certbot)
                         health: curl -fsS http://localhost:81/api/
    pihole               53 udp+tcp DNS (pi.hole + the local DNS records set through the API),
                         80 the Pi-hole v6 API double (lab.doubles.pihole_double)
                         health: dig +short +norecurse +retry=0 @127.0.0.1 pi.hole
    ollama               11434 Ollama 0.12.6's /api/tags, /api/pull (the registry protocol, plain HTTP
                         with "insecure") and /api/delete (lab.doubles.ollama_double), the models
                         kept as Ollama keeps them under /root/.ollama/models; / -> "Ollama is running"
                         health: ollama list   (lab/images/standin/ollama; it fails when
                         LAB_STANDIN_HEALTH=fail: the lab registry's `ollama:lab-v3-unhealthy` is built
                         so, for the update tests)
    comfyui              8188 /system_stats
    open-webui           8080 /health -> {"status": true}, the account API (sign-in, sign-up, admin
                         config: lab.doubles.openwebui_double) on a real SQLite /app/backend/data/webui.db

Standard library only. `python3 -m lab.standin ROLE`.

The doubles run in this process, reading the variables the real images read (NPM:
INITIAL_ADMIN_EMAIL / INITIAL_ADMIN_PASSWORD; Pi-hole: FTLCONF_webserver_api_password or
WEBPASSWORD_FILE). The Pi-hole DNS responder answers from the API double's local DNS records, which
are also kept in a JSON file shaped like Pi-hole v6's `pihole.toml` keys,
    {"hosts": ["IP NAME", ...], "cnameRecords": ["ALIAS,TARGET", ...]}
at $LAB_PIHOLE_DNS_FILE (default /etc/pihole/lab-dns-records.json), so they survive a restart.
NPM's state as NPM keeps it in its database (users and passwords, proxy hosts, redirection and 404
hosts, streams, access lists, certificates, the id counters) is kept in a real SQLite file in NPM's
data folder, /data/database.sqlite ($LAB_NPM_DATA), written after every change and loaded at start,
so a recreated NPM stand-in keeps its proxy hosts (tokens are not kept: log in again). At start the
stand-in writes nginx's config (/etc/nginx/nginx.conf: a default server answering the placeholder
"Congratulations! (lab stand-in for NPM)" for unknown names) and one config per proxy host under
/data/nginx/proxy_host/, as NPM does, then runs nginx on port 80; every change of a proxy host
through the API rewrites its config, tests it (`nginx -t`) and reloads nginx. A host that nginx or a
failure switch rejects keeps only `<id>.conf.err` and is not served (meta.nginx_online false).
The Open WebUI stand-in creates (if missing) a real SQLite database /app/backend/data/webui.db
($LAB_WEBUI_DB) with Open WebUI's account tables (`user`, `auth` with bcrypt hashes, `config`), and its
image puts a small `open_webui` package (lab/openwebui_shim) on the PYTHONPATH with the account
functions of Open WebUI's backend, for `docker exec open-webui python3`.

The NPM double's failure switches (lab only): at start from LAB_NPM_LETSENCRYPT=fail (every Let's
Encrypt request fails as on a server without a working certbot) and LAB_NPM_NGINX_REJECT=NAME,...
(nginx rejects the config of the hosts holding these names: they are not served); while it runs,
from the control file $LAB_NPM_CONTROL_FILE (default /data/lab-npm-control.json, in NPM's data
volume, so on the lab host it is <cold storage>/services/nginx-proxy/data/lab-npm-control.json),
re-read whenever it changes:
    {"letsencrypt": "fail", "nginx_reject": ["chat.lab.test"]}
Only root on the lab host can write it: there is no network switch. Removing the file restores the
switches given at start.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROLES = ("nginx-proxy-manager", "pihole", "ollama", "comfyui", "open-webui")
PIHOLE_DNS_FILE = Path(os.environ.get("LAB_PIHOLE_DNS_FILE", "/etc/pihole/lab-dns-records.json"))
NPM_CONTROL_FILE = os.environ.get("LAB_NPM_CONTROL_FILE", "/data/lab-npm-control.json")
# NPM's data volume: its database and its per-host nginx configs live there, as in the real image
NPM_DATA = Path(os.environ.get("LAB_NPM_DATA", "/data"))
NPM_NGINX_CONF = Path(os.environ.get("LAB_NPM_NGINX_CONF", "/etc/nginx/nginx.conf"))
WEBUI_DB = Path(os.environ.get("LAB_WEBUI_DB", "/app/backend/data/webui.db"))
BIND = os.environ.get("LAB_STANDIN_BIND", "0.0.0.0")  # noqa: S104 - inside a lab container


def say(msg: str) -> None:
    print(msg, flush=True)


# --- tiny HTTP servers ---------------------------------------------------------------------------


def http_server(port: int, routes: dict[str, tuple[int, object]], default: tuple[int, object] | None = None):
    """Serve fixed answers: routes maps a path to (status, body); a str body is text, else JSON."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, head_only: bool = False) -> None:
            path = self.path.split("?", 1)[0]
            status, body = routes.get(path, default or (404, {"error": "not found (lab stand-in)"}))
            if isinstance(body, str):
                payload, ctype = body.encode(), "text/plain; charset=utf-8"
            else:
                payload, ctype = json.dumps(body).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-Lab-Standin", "1")
            self.end_headers()
            if not head_only:
                self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            self._answer()

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(head_only=True)

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self._answer()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer((BIND, port), Handler)
    server.daemon_threads = True
    return server


def start(server) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


def npm_api(port: int, nginx_port: int | None = None):
    """The NPM API double (lab.doubles.npm_double) in this process, its state loaded from and kept in
    NPM's database file (<data>/database.sqlite). Like the real image (2.13+), the first admin comes
    from INITIAL_ADMIN_EMAIL / INITIAL_ADMIN_PASSWORD when both are set and no user is stored yet.
    With ``nginx_port``, Debian's nginx serves the proxy hosts there (lab.doubles.npm_nginx): every
    stored host's config is written again, then nginx starts."""
    from lab.doubles import npm_certbot, npm_double, npm_nginx

    email, password = os.environ.get("INITIAL_ADMIN_EMAIL"), os.environ.get("INITIAL_ADMIN_PASSWORD")
    double = npm_double.NpmDouble(
        os.environ.get("LAB_NPM_VERSION", "2.15.1"),
        initial_admin=(email, password) if email and password else None,
        issuer=npm_certbot.issue,  # Debian's certbot, run as NPM runs it
    )
    npm_double.with_switches(double, dict(os.environ), NPM_CONTROL_FILE)
    double.store = npm_double.NpmDatabase(NPM_DATA / "database.sqlite")
    if double.store.load(double):
        hosts = sum(not h["is_deleted"] for h in double.proxy_hosts.values())
        say(f"lab stand-in: loaded {double.store.path}: {len(double.users)} user(s), {hosts} proxy host(s)")
    if nginx_port is not None:
        double.nginx = npm_nginx.NpmNginx(NPM_DATA / "nginx" / "proxy_host", NPM_NGINX_CONF, port=nginx_port)
        double.nginx.write_main()
        if double.control is not None:
            double.control.refresh()  # the switches in force now decide which stored hosts are served
        double.configure_all()
        double.nginx.start()
    double.store.save(double)
    return npm_double.serve(double, BIND, port)


def webui_database(path: Path = WEBUI_DB) -> Path:
    """Open WebUI keeps its users (and chats, settings) in a SQLite database, webui.db in its data
    folder: a real one with its account tables (lab.doubles.openwebui_double) is made if missing, so a
    backup of the data folder can be proven on a real SQLite file. An existing file is kept."""
    from lab.doubles import openwebui_double

    openwebui_double.connect(path).close()
    return path


def pihole_api(port: int):
    """The Pi-hole v6 API double (lab.doubles.pihole_double) in this process, its local DNS records
    shared with the DNS responder and kept in PIHOLE_DNS_FILE (under /etc/pihole, like the real
    pihole.toml) so they survive a restart of the container."""
    from lab.doubles import ServedDouble, pihole_double

    password = os.environ.get("FTLCONF_webserver_api_password", "")
    if os.environ.get("WEBPASSWORD_FILE"):
        password = Path(os.environ["WEBPASSWORD_FILE"]).read_text().strip()
    double = pihole_double.PiholeDouble(password)
    saved = _read_records()
    double.hosts[:] = saved.get("hosts", [])
    double.cname_records[:] = saved.get("cnameRecords", [])
    RECORDS["double"] = double

    def app(method: str, path: str, headers: dict[str, str], raw: bytes):
        try:
            return double(method, path, headers, raw)
        finally:
            if method != "GET":
                _write_records({"hosts": list(double.hosts), "cnameRecords": list(double.cname_records)})

    return ServedDouble(app, BIND, port)


# --- a stdlib DNS responder for the Pi-hole stand-in ---------------------------------------------

QTYPE_A, QTYPE_CNAME = 1, 5


RECORDS: dict[str, object] = {}  # "double": the Pi-hole API double running in this process


def _read_records() -> dict:
    try:
        data = json.loads(PIHOLE_DNS_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_records(data: dict) -> None:
    PIHOLE_DNS_FILE.parent.mkdir(parents=True, exist_ok=True)
    tmp = PIHOLE_DNS_FILE.with_suffix(".part")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(PIHOLE_DNS_FILE)


def load_records() -> tuple[dict[str, str], dict[str, str]]:
    """(A records name -> IP, CNAME records alias -> target): the API double's, else the file's."""
    data = _read_records()
    double = RECORDS.get("double")
    if double is not None:
        data["hosts"] = list(double.hosts)  # type: ignore[attr-defined]
        data["cnameRecords"] = list(double.cname_records)  # type: ignore[attr-defined]
    hosts: dict[str, str] = {}
    cnames: dict[str, str] = {}
    for line in data.get("hosts", []):
        parts = str(line).split()
        for name in parts[1:]:
            hosts[name.lower().rstrip(".")] = parts[0]
    for line in data.get("cnameRecords", []):
        parts = [p.strip() for p in str(line).split(",")]
        if len(parts) >= 2:
            cnames[parts[0].lower().rstrip(".")] = parts[1].lower().rstrip(".")
    return hosts, cnames


def _own_ip() -> str:
    if os.environ.get("FTLCONF_LOCAL_IPV4"):
        return os.environ["FTLCONF_LOCAL_IPV4"]
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def _rr(name: str, rtype: int, rdata: bytes) -> bytes:
    return _encode_name(name) + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata


def dns_answer(query: bytes) -> bytes | None:
    """Answer one DNS query message: A and CNAME from the records; other names from the upstream
    resolvers when recursion is asked for (SERVFAIL when none answers), else NXDOMAIN."""
    if len(query) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", query[:6])
    if qdcount != 1:
        return struct.pack("!HHHHHH", qid, 0x8000 | (flags & 0x0100) | 4, 0, 0, 0, 0)  # NOTIMP
    pos, labels = 12, []
    while pos < len(query) and query[pos]:
        n = query[pos]
        labels.append(query[pos + 1 : pos + 1 + n].decode(errors="replace"))
        pos += 1 + n
    pos += 1
    if pos + 4 > len(query):
        return None
    qtype, _qclass = struct.unpack("!HH", query[pos : pos + 4])
    question = query[12 : pos + 4]
    name = ".".join(labels).lower()

    hosts, cnames = load_records()
    hosts.setdefault("pi.hole", _own_ip())
    upstream = os.environ.get("FTLCONF_dns_upstreams")
    if name not in hosts and name not in cnames and flags & 0x0100 and upstream:
        # not a local record and recursion desired: the upstream answers, or SERVFAIL
        forwarded = forward_upstream(query)
        if forwarded is not None:
            return forwarded
        servfail = 0x8000 | (flags & 0x0100) | 0x0080 | 2
        return struct.pack("!HHHHHH", qid, servfail, 1, 0, 0, 0) + question
    answers: list[bytes] = []
    current, seen = name, set()
    while current in cnames and current not in seen:
        seen.add(current)
        answers.append(_rr(current, QTYPE_CNAME, _encode_name(cnames[current])))
        current = cnames[current]
    known = current in hosts or bool(answers)
    if current in hosts and qtype in (QTYPE_A, 255):
        answers.append(_rr(current, QTYPE_A, socket.inet_aton(hosts[current])))
    rcode = 0 if known else 3
    # QR, AA, RD copied, RA
    rflags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | rcode
    header = struct.pack("!HHHHHH", qid, rflags, 1, len(answers), 0, 0)
    return header + question + b"".join(answers)


def lab_upstreams() -> list[str]:
    """The upstream resolvers the real image reads (FTLCONF_dns_upstreams, `;`-separated), kept to
    lab addresses: a stand-in never sends anything off this machine, so a public resolver (the
    deploy's default) is refused and the query answered SERVFAIL, as Pi-hole does without upstream."""
    found = []
    for entry in os.environ.get("FTLCONF_dns_upstreams", "").split(";"):
        address = entry.strip().split("#", 1)[0]
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        if ip.is_private and not ip.is_loopback:
            found.append(address)
        else:
            say(f"lab stand-in: not forwarding to {address}: only lab addresses are used as upstream")
    return found


def forward_upstream(query: bytes) -> bytes | None:
    """Ask the upstreams in turn over UDP (2 s each); ``None`` when none answers."""
    for address in lab_upstreams():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2.0)
            try:
                sock.sendto(query, (address, 53))
                reply, _ = sock.recvfrom(4096)
            except OSError as error:
                say(f"lab stand-in: upstream {address} did not answer: {error}")
                continue
        if reply[:2] == query[:2]:
            return reply
    return None


def dns_servers(port: int = 53) -> list:
    class Udp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data, sock = self.request
            reply = dns_answer(data)
            if reply:
                sock.sendto(reply, self.client_address)

    class Tcp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            head = self.request.recv(2)
            if len(head) < 2:
                return
            (length,) = struct.unpack("!H", head)
            data = b""
            while len(data) < length:
                chunk = self.request.recv(length - len(data))
                if not chunk:
                    return
                data += chunk
            reply = dns_answer(data)
            if reply:
                self.request.sendall(struct.pack("!H", len(reply)) + reply)

    socketserver.ThreadingUDPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    udp = socketserver.ThreadingUDPServer((BIND, port), Udp)
    tcp = socketserver.ThreadingTCPServer((BIND, port), Tcp)
    udp.daemon_threads = tcp.daemon_threads = True
    return [udp, tcp]


# --- roles ---------------------------------------------------------------------------------------


def run(role: str) -> int:
    say(f"LAB STAND-IN for {role}: a small local image answering the health check, not the real service")
    servers: list = []
    if role == "nginx-proxy-manager":
        servers.append(npm_api(81, nginx_port=80))  # nginx serves 443 as well
    elif role == "pihole":
        servers.extend(dns_servers(53))
        servers.append(pihole_api(80))
    elif role == "ollama":
        from lab.doubles import ollama_double

        servers.append(ollama_double.main(host=BIND, port=11434))
    elif role == "comfyui":
        servers.append(http_server(8188, {
            "/": (200, "ComfyUI (lab stand-in)"),
            "/system_stats": (200, {
                "system": {"os": "posix", "comfyui_version": "lab-standin", "python_version": sys.version},
                "devices": [],
            }),
        }))
    elif role == "open-webui":
        from lab.doubles import openwebui_double

        say(f"lab stand-in: Open WebUI accounts in {webui_database()}")
        servers.append(openwebui_double.serve(openwebui_double.OpenWebUIDouble(), BIND, 8080))
    else:
        print(f"unknown role {role!r}; one of {', '.join(ROLES)}", file=sys.stderr)
        return 2
    for server in servers:
        start(server)
    # PID 1 in a container: without a handler SIGTERM is ignored and `docker stop` waits 10 s
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    role = args[0] if args else os.environ.get("LAB_STANDIN_ROLE", "")
    return run(role)


if __name__ == "__main__":
    sys.exit(main())
