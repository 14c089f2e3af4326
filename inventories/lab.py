"""The local disposable lab hosts (`python -m lab up`) as an inventory: every host is real SSH.

    python -m lab up --hosts 2
    pyinfra inventories/lab.py exec -- uname -a
    pyinfra inventories/lab.py deploys/server.py -y

Hosts come from `.lab/hosts.json` (written by `python -m lab up`): Debian 12 containers with
systemd, sshd on port 2222 inside (reached as 127.0.0.1:<port>), a generated key, Docker and
firewalld preinstalled (the deploy still manages them), compose v2 baked in and a `tailscale0`
stand-in link. The deploy logs in as an ordinary user with sudo (LAB_LOGIN, below).

Two ways to group the hosts:

- without LAB_GROUPS (the default) every lab host is in the one group `lab_hosts`: no `core` or
  `gpu` group, so the deploy places every enabled service on every host, as on a single server;
- `LAB_GROUPS=core,gpu` puts the lab hosts, in order, into the groups named: host 1 into `core`,
  host 2 into `gpu`, so the deploy places services across hosts as on a real multi-host homelab
  (inventories/home.py). An entry may name several groups joined by `+` (`core+gpu,gpu`). There is
  one entry per lab host; a count that does not match, an empty entry or a name that is not a plain
  identifier is refused with one line on stderr (exit 2). An empty LAB_GROUPS is the default.

    python -m lab up --hosts 2
    LAB_GROUPS=core,gpu pyinfra inventories/lab.py deploys/server.py -y

HTTPS as a tailnet-only owner gets it, by DNS-01: `LAB_TLS=dns` turns the deploy's TLS on against the
lab's own world (lab/acme.py): pebble as the ACME server, bind9 as the DNS provider (rfc2136 with the
lab's TSIG key), trusting the roots `python -m lab up` saved (HOMELAB_TLS_CA_FILE). `LAB_TLS=dns-wrong-key`
does the same with a TSIG secret bind9 does not know, so the certificate request fails.

    LAB_TLS=dns pyinfra inventories/lab.py deploys/server.py -y

`LAB_MONITORING=on` turns the monitoring set on (HOMELAB_MONITORING) with short lab timings, its
stand-in images from the lab registry, on every lab host (or on those named: `LAB_MONITORING=homelab-lab-1,
homelab-lab-2`); `LAB_MONITORING_WEBHOOK=URL` is where Alertmanager posts.

`LAB_SSH_OVER=tailnet` reaches the hosts over the simulated tailnet (their Tailscale addresses, sshd's
port 2222) from this machine's own tailnet address, as an owner's laptop in the tailnet does.

The hosts file is `.lab/hosts.json`, or `$LAB_STATE_DIR/hosts.json` when LAB_STATE_DIR is set (as
for `python -m lab`).

The data below are LAB-ONLY values: they make a deploy work against the lab with nothing set by
the user (stand-in images, the lab's Tailscale stand-in addresses, no tailscaled install, throwaway
secrets). Never copy them into a real inventory.
"""

import json
import os
import re
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
# where `python -m lab up` records the hosts (lab/state.py: LAB_STATE_DIR or .lab/)
_STATE_DIR = os.environ.get("LAB_STATE_DIR") or Path(__file__).resolve().parent.parent / ".lab"
HOSTS_FILE = Path(_STATE_DIR) / "hosts.json"
# LAB_GROUPS: one entry per lab host, in order, each naming its groups joined by `+`
_GROUP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

# LAB-ONLY settings, see lab/data.py
from lab.data import LAB_DATA, LAB_MONITORING_DATA, rfc2136_credentials  # noqa: E402

# LAB_SECRETS=env-file: the lab's secrets are left out of the host data, so that a deploy must read
# them from the settings file ($HOMELAB_ENV_FILE, e.g. an .env.age): how the lab proves that file
_SECRETS_FROM_FILE = os.environ.get("LAB_SECRETS", "") == "env-file"
_SECRET_SETTINGS = ("pihole_password", "npm_admin_password", "open_webui_admin_password",
                       "open_webui_secret_key")


# LAB_TLS=dns: HTTPS by DNS-01 against the lab's world (lab/acme.py): its pebble as the ACME server,
# its bind9 as the DNS provider (rfc2136, the lab's TSIG key), trusting the roots `up` saved. And
# LAB_TLS=dns-wrong-key: the same with a TSIG secret that bind9 does not know (LAB ONLY)
_TLS = os.environ.get("LAB_TLS", "")
_TLS_MODES = ("", "off", "dns", "dns-wrong-key")
if _TLS not in _TLS_MODES:
    sys.stderr.write(f"inventories/lab.py: LAB_TLS={_TLS!r}: expected one of {', '.join(_TLS_MODES[1:])}\n")
    raise SystemExit(2)
_WRONG_TSIG_SECRET = "bm90LXRoZS1sYWItdHNpZy1rZXktbm90LXRoZS1sYWI="  # noqa: S105 - LAB ONLY, wrong on purpose


def _tls(world: dict) -> dict:
    if _TLS in ("", "off"):
        return {}
    if not world.get("acme_directory"):
        _refuse(f"LAB_TLS={_TLS}: the lab's world has no ACME server on record; run `python -m lab up` again")
    secret = {"secret": _WRONG_TSIG_SECRET} if _TLS == "dns-wrong-key" else {}
    return {
        "tls": "dns",
        "tls_dns_provider": "rfc2136",
        "tls_dns_credentials": rfc2136_credentials(world["address"], **secret),
        "tls_propagation_seconds": 1,  # the lab's bind9 is the only server: nothing to wait for
        "tls_acme_server": world["acme_directory"],
        # LAB_TLS_ROOTS: trust another bundle instead (the lab tests' knob for a chain that must fail)
        "tls_ca_file": os.environ.get("LAB_TLS_ROOTS") or world["tls_roots"],
    }


# LAB_MONITORING=on: the monitoring set (HOMELAB_MONITORING) with the lab's short timings (lab/data.py
# LAB_MONITORING_DATA, so that an alert fires and resolves within a test) on every lab host, or on the
# lab hosts named (LAB_MONITORING=homelab-lab-1,homelab-lab-2); LAB_MONITORING_WEBHOOK: where
# Alertmanager posts (a receiver the test runs on this machine's tailnet address)
_MONITORING = os.environ.get("LAB_MONITORING", "") or "off"
if not re.fullmatch(r"on|off|[a-z0-9-]+(,[a-z0-9-]+)*", _MONITORING):
    sys.stderr.write(f"inventories/lab.py: LAB_MONITORING={_MONITORING!r}: expected on, off or lab host "
                     "names (homelab-lab-1,homelab-lab-2)\n")
    raise SystemExit(2)


def _monitoring(name: str) -> dict:
    if _MONITORING == "off" or (_MONITORING != "on" and name not in _MONITORING.split(",")):
        return {}
    webhook = os.environ.get("LAB_MONITORING_WEBHOOK")
    return {**LAB_MONITORING_DATA, **({"monitoring_webhook_url": webhook} if webhook else {})}


# LAB_SSH_OVER=tailnet: the deploy reaches each host over the simulated tailnet, at its Tailscale address
# and sshd's own port, from this machine's tailnet address (lab/hosts.py join_tailnet), as an owner's
# laptop in the tailnet does; the default reaches it through the port published on 127.0.0.1
_OVER = os.environ.get("LAB_SSH_OVER", "") or "local"
if _OVER not in ("local", "tailnet"):
    sys.stderr.write(f"inventories/lab.py: LAB_SSH_OVER={_OVER!r}: expected local or tailnet\n")
    raise SystemExit(2)
_INNER_SSH_PORT = 2222  # sshd's port inside every lab host (lab/images/host/Dockerfile)


def _ssh_address(entry: dict, world: dict) -> dict:
    if _OVER == "local":
        return {"ssh_hostname": entry.get("ssh_hostname", "127.0.0.1"), "ssh_port": entry["ssh_port"]}
    if not world.get("controller_tailnet_ip"):
        _refuse("LAB_SSH_OVER=tailnet: this machine is not on the lab tailnet (see `python -m lab up`)")
    return {"ssh_hostname": entry["tailscale_ip"], "ssh_port": _INNER_SSH_PORT}


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
    tls = _tls(world)
    hosts = []
    for entry in recorded["hosts"]:
        hosts.append(
            (
                f"@{CONNECTOR}/{entry['name']}",
                {
                    **{key: value for key, value in LAB_DATA.items()
                       if not (_SECRETS_FROM_FILE and key in _SECRET_SETTINGS)},
                    **upstream,
                    **tls,
                    **_monitoring(entry["name"]),
                    **_ssh_address(entry, world),
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


def _refuse(message: str) -> None:
    sys.stderr.write(f"inventories/lab.py: {message}\n")
    raise SystemExit(2)


def _groups_of_hosts(spec: str, count: int, taken: set[str]) -> list[list[str]]:
    """The groups of each lab host, in order, from LAB_GROUPS; refused (one line, exit 2) when the
    entries do not match the hosts one to one, or a name could not be a pyinfra group. Names this
    module already defines are refused too: a group is a module-level variable here."""
    entries = [[name.strip() for name in entry.split("+")] for entry in spec.split(",")]
    for index, names in enumerate(entries, start=1):
        if not all(names):
            _refuse(f"LAB_GROUPS={spec!r}: entry {index} (for host {index}) has an empty group name")
    if len(entries) != count:
        _refuse(
            f"LAB_GROUPS={spec!r} has {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, "
            f"the lab has {count} host(s): give one entry per host, in order (e.g. LAB_GROUPS=core,gpu)"
        )
    groups = []
    for names in entries:
        for name in names:
            if not _GROUP_NAME.match(name):
                _refuse(
                    f"LAB_GROUPS={spec!r}: {name!r} is not a group name; "
                    "use letters, digits and _ (starting with a letter), e.g. core, gpu"
                )
            if name in taken or name == "all":
                _refuse(f"LAB_GROUPS={spec!r}: {name!r} is a name this inventory uses itself; pick another")
        groups.append(list(dict.fromkeys(names)))
    return groups


_hosts = _lab_hosts()
_spec = os.environ.get("LAB_GROUPS", "").strip()
if not _spec:
    lab_hosts = _hosts
else:
    for _host, _names in zip(_hosts, _groups_of_hosts(_spec, len(_hosts), set(globals())), strict=True):
        for _name in _names:
            globals().setdefault(_name, []).append(_host)
