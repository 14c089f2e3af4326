"""The local disposable lab hosts (`python -m lab up`) as an inventory: every host is real SSH.

    python -m lab up --hosts 2
    pyinfra inventories/lab.py exec -- uname -a
    pyinfra inventories/lab.py deploys/server.py -y

Hosts come from `.lab/hosts.json` (written by `python -m lab up`): Debian 12 containers with
systemd, sshd on 127.0.0.1:<port>, a generated key, Docker and firewalld preinstalled (the deploy
still manages them), compose v2 baked in and a `tailscale0` stand-in link.

The data below are LAB-ONLY values: they make a deploy work against the lab with nothing set by
the user (stand-in images, the lab's Tailscale stand-in addresses, no tailscaled install, throwaway
secrets). Never copy them into a real inventory.
"""

import json
import os
import sys
from pathlib import Path

# `homelab` (default): settings checked before connecting, TCP_NODELAY. `ssh`: pyinfra's stock
# connector, for the benchmark's before/after comparison only.
CONNECTOR = os.environ.get("HOMELAB_LAB_CONNECTOR", "homelab")
HOSTS_FILE = Path(__file__).resolve().parent.parent / ".lab" / "hosts.json"

from lab.data import LAB_DATA  # noqa: E402  (LAB-ONLY settings, see lab/data.py)


def _lab_hosts():
    if not HOSTS_FILE.exists():
        sys.stderr.write(
            f"inventories/lab.py: no lab hosts ({HOSTS_FILE} is missing).\n"
            "Start them first:  python -m lab up   (or `python -m lab up --hosts 2`)\n"
        )
        raise SystemExit(2)
    recorded = json.loads(HOSTS_FILE.read_text())
    # the lab's stand-in for the internet (lab/world.py): Pi-hole's upstream resolver, so that no
    # query ever leaves this machine
    world = recorded.get("world") or {}
    upstream = {"pihole_upstream_dns": world["address"]} if world.get("address") else {}
    hosts = []
    for entry in recorded["hosts"]:
        hosts.append(
            (
                f"@{CONNECTOR}/{entry['name']}",
                {
                    **LAB_DATA,
                    **upstream,
                    "ssh_hostname": entry.get("ssh_hostname", "127.0.0.1"),
                    "ssh_port": entry["ssh_port"],
                    "ssh_user": entry.get("ssh_user", "root"),
                    "ssh_key": entry["ssh_key"],
                    # lab hosts are recreated at will: their host keys mean nothing (LAB ONLY)
                    "ssh_strict_host_key_checking": "no",
                    "ssh_known_hosts_file": "/dev/null",
                    "tailscale_ip": entry["tailscale_ip"],
                },
            )
        )
    return hosts


lab_hosts = _lab_hosts()
