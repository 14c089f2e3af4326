"""Talk to a lab host's NGINX Proxy Manager through an SSH tunnel, in a process of its own.

The test process has gevent's monkey-patching (pyinfra's CLI package is imported by the fixture
harness), under which sshtunnel's forwarding threads can block the process; a plain interpreter
keeps the tunnel simple. Reads the lab-only password from $NPM_PASSWORD.

    python tests/lab/npm_probe.py HOSTS_JSON_ENTRY list
    python tests/lab/npm_probe.py HOSTS_JSON_ENTRY set-forward-port DOMAIN PORT
    python tests/lab/npm_probe.py HOSTS_JSON_ENTRY certificates
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import sshtunnel

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from lab.data import LAB_DATA  # noqa: E402
from operations.clients.npm import NpmClient  # noqa: E402


def main(argv: list[str]) -> int:
    host, action, *rest = json.loads(argv[0]), argv[1], *argv[2:]
    with sshtunnel.SSHTunnelForwarder(
        ("127.0.0.1", host["ssh_port"]),
        ssh_username="root",
        ssh_pkey=host["ssh_key"],
        remote_bind_address=(host["tailscale_ip"], 81),
        local_bind_address=("127.0.0.1", 0),
    ) as tunnel:
        client = NpmClient(
            f"http://127.0.0.1:{tunnel.local_bind_port}",
            LAB_DATA["npm_admin_email"],
            os.environ["NPM_PASSWORD"],
        )
        try:
            if action == "list":
                print(json.dumps(client.list_proxy_hosts()))
            elif action == "certificates":
                print(json.dumps(client.list_certificates()))
            elif action == "set-forward-port":
                domain, port = rest
                found = next(h for h in client.list_proxy_hosts() if h["domain_names"] == [domain])
                client.update_proxy_host(found["id"], {"forward_port": int(port)})
            else:
                raise SystemExit(f"unknown action {action!r}")
        finally:
            client.session.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
