"""LAB STAND-IN service processes: what runs inside the `homelab-lab/standin-<role>:lab` images.

No container registry is reachable on the project's machines, so the five upstream images cannot be
pulled. Each stand-in listens on the upstream image's ports and answers the health check the deploy's
service catalog declares, nothing more:

    nginx-proxy-manager  81 the NPM API double (lab.doubles.npm_double), 80 plain HTTP, 443 TCP
                         health: curl -fsS http://localhost:81/api/
    pihole               53 udp+tcp DNS (pi.hole + the local DNS records set through the API),
                         80 the Pi-hole v6 API double (lab.doubles.pihole_double)
                         health: dig +short +norecurse +retry=0 @127.0.0.1 pi.hole
    ollama               11434 /api/tags -> {"models": []}, / -> "Ollama is running"
                         health: ollama list   (lab/images/standin/ollama)
    comfyui              8188 /system_stats
    open-webui           8080 /health -> {"status": true}

Standard library only. `python3 -m lab.standin ROLE`.

The Pi-hole DNS responder and the Pi-hole API double share the local DNS records through a JSON
file shaped like Pi-hole v6's `pihole.toml` keys:
    {"hosts": ["IP NAME", ...], "cnameRecords": ["ALIAS,TARGET", ...]}
at $LAB_PIHOLE_DNS_FILE (default /etc/pihole/lab-dns-records.json), re-read on every query.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROLES = ("nginx-proxy-manager", "pihole", "ollama", "comfyui", "open-webui")
PIHOLE_DNS_FILE = Path(os.environ.get("LAB_PIHOLE_DNS_FILE", "/etc/pihole/lab-dns-records.json"))
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


def tcp_listener(port: int) -> socketserver.ThreadingTCPServer:
    """Accept and close: something listens on the port (NPM's 443 without certificates)."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.close()

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer((BIND, port), Handler)
    server.daemon_threads = True
    return server


def start(server) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


def run_double(module: str, *args: str) -> subprocess.Popen | None:
    """Run one of lab.doubles' CLIs as a child process; None when that double is not there."""
    try:
        __import__(module)
    except ImportError:
        say(f"lab stand-in: {module} missing, serving a fixed answer instead")
        return None
    return subprocess.Popen([sys.executable, "-m", module, *args])  # noqa: S603


# --- a stdlib DNS responder for the Pi-hole stand-in ---------------------------------------------

QTYPE_A, QTYPE_CNAME = 1, 5


def load_records() -> tuple[dict[str, str], dict[str, str]]:
    """(A records name -> IP, CNAME records alias -> target) from the shared JSON file."""
    hosts: dict[str, str] = {}
    cnames: dict[str, str] = {}
    try:
        data = json.loads(PIHOLE_DNS_FILE.read_text())
    except (OSError, ValueError):
        data = {}
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
    """Answer one DNS query message (A and CNAME from the records; NXDOMAIN for unknown names)."""
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
    children: list[subprocess.Popen] = []
    servers: list = []
    if role == "nginx-proxy-manager":
        child = run_double("lab.doubles.npm_double", "--port", "81")
        if child:
            children.append(child)
        else:
            servers.append(http_server(81, {"/api/": (200, {"status": "OK", "version": {"major": 2}})}))
        servers.append(http_server(80, {}, default=(200, "Congratulations! (lab stand-in for NPM)")))
        servers.append(tcp_listener(443))
    elif role == "pihole":
        PIHOLE_DNS_FILE.parent.mkdir(parents=True, exist_ok=True)
        servers.extend(dns_servers(53))
        child = run_double("lab.doubles.pihole_double", "--port", "80")
        if child:
            children.append(child)
        else:
            servers.append(http_server(80, {"/admin/": (200, "Pi-hole (lab stand-in)")}))
    elif role == "ollama":
        servers.append(http_server(11434, {
            "/": (200, "Ollama is running"),
            "/api/tags": (200, {"models": []}),
            "/api/version": (200, {"version": "0.0.0-lab-standin"}),
        }))
    elif role == "comfyui":
        servers.append(http_server(8188, {
            "/": (200, "ComfyUI (lab stand-in)"),
            "/system_stats": (200, {
                "system": {"os": "posix", "comfyui_version": "lab-standin", "python_version": sys.version},
                "devices": [],
            }),
        }))
    elif role == "open-webui":
        servers.append(http_server(8080, {
            "/": (200, "Open WebUI (lab stand-in)"),
            "/health": (200, {"status": True}),
        }))
    else:
        print(f"unknown role {role!r}; one of {', '.join(ROLES)}", file=sys.stderr)
        return 2
    for server in servers:
        start(server)
    # PID 1 in a container: without a handler SIGTERM is ignored and `docker stop` waits 10 s
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            for child in children:
                if child.poll() is not None:
                    print(f"lab stand-in: a double exited with {child.returncode}", file=sys.stderr)
                    return child.returncode or 1
            time.sleep(1)
    except (KeyboardInterrupt, SystemExit):
        return 0
    finally:
        for child in children:
            child.terminate()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    role = args[0] if args else os.environ.get("LAB_STANDIN_ROLE", "")
    return run(role)


if __name__ == "__main__":
    sys.exit(main())
