"""The local disposable lab hosts (`python -m lab up`) as an inventory: every host is real SSH.

    python -m lab up --hosts 2
    pyinfra inventories/lab.py exec -- uname -a
    pyinfra inventories/lab.py deploys/server.py -y

Hosts come from `.lab/hosts.json` (written by `python -m lab up`): Debian 12 containers with
systemd, sshd on port 2222 inside (reached as 127.0.0.1:<port>), a generated key, Docker and
firewalld preinstalled (the deploy still manages them), compose v2 baked in and a `tailscale0`
stand-in link. The deploy logs in as an ordinary user with sudo (LAB_LOGIN, below).

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
# How the deploy logs in (LAB_LOGIN), as a real owner would: `sudo` (default) is the user `homelab`
# with passwordless sudo, `sudo-password` the user `homelab-pw` whose sudo asks for its password,
# `root` root itself. sshd listens on port 2222 inside every lab host, never 22.
LOGINS = {
    "sudo": {"ssh_user": "homelab", "_sudo": True},
    # LAB ONLY password (lab/images/host/Dockerfile)
    "sudo-password": {"ssh_user": "homelab-pw", "_sudo": True, "_sudo_password": "lab-only-sudo-password"},
    "root": {"ssh_user": "root"},
}
LOGIN = os.environ.get("LAB_LOGIN", "sudo")
if LOGIN not in LOGINS:
    sys.stderr.write(f"inventories/lab.py: LAB_LOGIN={LOGIN!r}: expected one of {', '.join(LOGINS)}\n")
    raise SystemExit(2)
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
                    **LOGINS[LOGIN],
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
