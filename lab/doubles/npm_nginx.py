"""The nginx of the NGINX Proxy Manager stand-in (LAB ONLY): serves the API double's proxy hosts for real.

NPM writes one nginx config per proxy host (``/data/nginx/proxy_host/<id>.conf``), runs ``nginx -t``
and reloads nginx; a config that nginx rejects is renamed ``<id>.conf.err``, so that host is not
served and its row says ``meta.nginx_online`` false. This module does the same with Debian's nginx,
so a request to port 80 with a proxy host's name reaches its upstream, as through the real NPM.

Served: ``server_name`` = domain_names, ``proxy_pass`` forward_scheme://forward_host:forward_port (the
upstream's name resolved at request time through the container's resolver, as NPM's template does
with variables), the websocket upgrade headers when allow_websocket_upgrade, advanced_config inside
the server block. A host with a certificate (``certificate_id``) is served on 443 too, with certbot's
files for it (/etc/letsencrypt/live/npm-<id>/; missing files fail ``nginx -t``, as in NPM), HTTP/2 when
http2_support, a redirect of plain HTTP when ssl_forced and HSTS when hsts_enabled (with ssl_forced,
as NPM's template has it). Not served: access lists, custom locations, redirection and 404 hosts,
streams. A name no proxy host holds gets the default server's placeholder page on 80; on 443 the
handshake is refused (no certificate for it), as NPM's default site does without one.

The double (lab.doubles.npm_double) calls ``configure`` where NPM regenerates a host's config and
``remove`` where NPM deletes it; its failure switches (``nginx_reject``) decide before nginx is asked:
a rejected host's config is kept only as ``.err``, never served.
"""

from __future__ import annotations

import ipaddress
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

PLACEHOLDER = "Congratulations! (lab stand-in for NPM)"
LETSENCRYPT = Path("/etc/letsencrypt")  # certbot's folder in NPM's container (its letsencrypt volume)


def resolvers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The nameservers of resolv.conf in nginx's notation (IPv6 in brackets), as NPM derives its
    ``resolver`` line; an upstream named by a container name needs one."""
    found = []
    try:
        lines = resolv_conf.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                address = ipaddress.ip_address(parts[1].split("%", 1)[0])
            except ValueError:
                continue
            found.append(f"[{address}]" if address.version == 6 else str(address))
    return found


def main_config(proxy_dir: Path, nameservers: list[str], port: int = 80, ssl_port: int = 443) -> str:
    """nginx.conf: the default server (the placeholder for unknown names) and every proxy host file."""
    resolver = f"    resolver {' '.join(nameservers)} valid=10s ipv6=off;\n" if nameservers else ""
    return (
        "# LAB STAND-IN: nginx of the NPM stand-in (lab.doubles.npm_nginx), written at start\n"
        "worker_processes 1;\n"
        "pid /run/nginx.pid;\n"
        "error_log stderr warn;\n"
        "events { worker_connections 512; }\n"
        "http {\n"
        "    access_log off;\n"
        "    server_tokens off;\n"
        # NPM's own setting (lab.doubles.npm_double.LONGEST_SERVER_NAME follows it)
        "    server_names_hash_bucket_size 1024;\n"
        f"{resolver}"
        "    server {\n"
        f"        listen {port} default_server;\n"
        "        server_name _;\n"
        '        default_type "text/plain; charset=utf-8";\n'
        "        add_header X-Lab-Standin 1 always;\n"
        f'        return 200 "{PLACEHOLDER}";\n'
        "    }\n"
        "    server {\n"
        f"        listen {ssl_port} ssl default_server;\n"
        "        server_name _;\n"
        "        ssl_reject_handshake on;\n"
        "    }\n"
        f"    include {proxy_dir}/*.conf;\n"
        "}\n"
    )


def _quoted(value: Any) -> str:
    """A value inside double quotes in nginx's syntax (a quote or backslash escaped)."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _on(host: dict[str, Any], key: str) -> bool:
    return host.get(key) in (True, 1)


def proxy_host_config(host: dict[str, Any], port: int = 80, ssl_port: int = 443,
                      letsencrypt: Path = LETSENCRYPT) -> str:
    """One proxy host's server block, after NPM's proxy_host template."""
    cert_id = int(host.get("certificate_id") or 0)
    lines = [
        f"# LAB STAND-IN: proxy host {host['id']} of the NPM double ({', '.join(host['domain_names'])})",
        "server {",
        f"    set $forward_scheme {host['forward_scheme']};",
        f"    set $server {_quoted(host['forward_host'])};",
        f"    set $port {int(host['forward_port'])};",
        f"    listen {port};",
    ]
    if cert_id:
        live = letsencrypt / "live" / f"npm-{cert_id}"
        lines += [
            f"    listen {ssl_port} ssl{' http2' if _on(host, 'http2_support') else ''};",
            f"    ssl_certificate {live}/fullchain.pem;",
            f"    ssl_certificate_key {live}/privkey.pem;",
        ]
    lines.append(f"    server_name {' '.join(host['domain_names'])};")
    if cert_id and _on(host, "ssl_forced"):
        if _on(host, "hsts_enabled"):
            subdomains = " includeSubDomains;" if _on(host, "hsts_subdomains") else ""
            hsts = f"max-age=63072000;{subdomains} preload"
            lines.append(f'    add_header Strict-Transport-Security "{hsts}" always;')
        lines += ['    if ($scheme = "http") {', "        return 301 https://$host$request_uri;", "    }"]
    if host.get("advanced_config"):
        lines.append(str(host["advanced_config"]))
    lines += [
        "    location / {",
        "        proxy_set_header Host $host;",
        "        proxy_set_header X-Forwarded-Scheme $scheme;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "        proxy_set_header X-Real-IP $remote_addr;",
    ]
    if host.get("allow_websocket_upgrade"):
        lines += [
            "        proxy_set_header Upgrade $http_upgrade;",
            "        proxy_set_header Connection $http_connection;",
            "        proxy_http_version 1.1;",
        ]
    lines += [
        "        proxy_pass $forward_scheme://$server:$port$request_uri;",
        "    }",
        "}",
        "",
    ]
    return "\n".join(lines)


class NpmNginx:
    """Proxy host configs in ``proxy_dir``, tested with ``nginx -t`` and served by one nginx process
    (``start``); ``nginx`` is the command (a list), replaceable in unit tests."""

    def __init__(self, proxy_dir: Path, main_conf: Path, nginx: list[str] | None = None,
                 port: int = 80, ssl_port: int = 443, letsencrypt: Path = LETSENCRYPT) -> None:
        self.proxy_dir = proxy_dir
        self.main_conf = main_conf
        self.nginx = nginx or ["nginx"]
        self.port = port
        self.ssl_port = ssl_port
        self.letsencrypt = letsencrypt
        self.process: subprocess.Popen | None = None

    def _paths(self, host: dict[str, Any]) -> tuple[Path, Path]:
        conf = self.proxy_dir / f"{host['id']}.conf"
        return conf, conf.with_name(conf.name + ".err")

    def write_main(self, nameservers: list[str] | None = None) -> None:
        self.proxy_dir.mkdir(parents=True, exist_ok=True)
        self.main_conf.parent.mkdir(parents=True, exist_ok=True)
        found = resolvers() if nameservers is None else nameservers
        self.main_conf.write_text(main_config(self.proxy_dir, found, self.port, self.ssl_port))

    def test(self) -> str | None:
        """``nginx -t``: None when the configuration passes, else nginx's own words."""
        proc = subprocess.run([*self.nginx, "-t", "-q", "-c", str(self.main_conf)],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            return None
        return proc.stderr.strip() + "\n" if proc.stderr.strip() else f"nginx -t failed ({proc.returncode})\n"

    def configure(self, host: dict[str, Any], rejected: str | None, reload: bool = True) -> str | None:
        """Write the host's config as NPM does and return the nginx error stored in its row (None:
        served). ``rejected`` is the double's switch deciding nginx refuses it: kept as ``.err``."""
        conf, err = self._paths(host)
        conf.unlink(missing_ok=True)
        err.unlink(missing_ok=True)
        if host.get("is_deleted") or not host.get("enabled", True):
            if reload:
                self.reload()
            return rejected
        self.proxy_dir.mkdir(parents=True, exist_ok=True)
        text = proxy_host_config(host, self.port, self.ssl_port, self.letsencrypt)
        if rejected is not None:
            err.write_text(text)
            if reload:
                self.reload()
            return rejected
        conf.write_text(text)
        error = self.test()
        if error is not None:
            conf.rename(err)
        if reload:
            self.reload()
        return error

    def remove(self, host: dict[str, Any]) -> None:
        """A deleted or disabled host: its config goes, nginx reloads."""
        for path in self._paths(host):
            path.unlink(missing_ok=True)
        self.reload()

    def clear(self) -> None:
        """Forget every host config (at start, before the stored hosts are written again)."""
        for path in [*self.proxy_dir.glob("*.conf"), *self.proxy_dir.glob("*.conf.err")]:
            path.unlink()

    def start(self) -> subprocess.Popen:
        self.process = subprocess.Popen([*self.nginx, "-c", str(self.main_conf), "-g", "daemon off;"])
        return self.process

    def reload(self) -> None:
        """SIGHUP, as ``nginx -s reload``: the master re-reads the tested configuration."""
        if self.process is None:
            return
        if self.process.poll() is not None:
            print(f"npm stand-in: nginx had exited ({self.process.returncode}); starting it again",
                  file=sys.stderr, flush=True)
            self.start()
            return
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
