"""`python -m lab up [--hosts N]` | `down [--images | --host NAME]` | `status [--json]`: the local lab.

The lab is a tool for trying and testing the deploys (see lab/hosts.py, lab/images.py); the deploys
never import it. State lives in .lab/ (git-ignored): the SSH key, hosts.json, the debootstrap cache.
"""

from __future__ import annotations

import argparse
import json
import sys

from lab import hosts as lab_hosts
from lab import state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="build the images (cached) and start the lab hosts")
    p_up.add_argument("--hosts", type=int, default=1, metavar="N",
                      help="how many hosts (default 1; running hosts are left alone, never removed)")
    p_down = sub.add_parser("down", help="remove the lab hosts, their volumes, the key and hosts.json")
    p_down.add_argument("--images", action="store_true", help="remove the lab's images too")
    p_down.add_argument("--host", metavar="NAME",
                        help="destroy only this host (everything on it); `up` brings a bare one back")
    p_status = sub.add_parser("status", help="print each host's name, SSH port, tailscale0 address, state")
    p_status.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "up":
        if args.hosts < 1:
            parser.error("--hosts must be at least 1")
        with state.locked():
            lab_hosts.up(args.hosts)
        _print_status(lab_hosts.status())
    elif args.command == "down":
        with state.locked():
            if args.host:
                lab_hosts.destroy(args.host)
            else:
                lab_hosts.down(remove_images=args.images)
    else:
        rows = lab_hosts.status()
        if args.json:
            print(json.dumps(rows, indent=2))
        elif not rows:
            print("no lab hosts (run `python -m lab up`)")
        else:
            _print_status(rows)
    return 0


def _print_status(rows: list[dict]) -> None:
    print(f"{'NAME':<16} {'SSH':<16} {'TAILSCALE0':<14} STATE")
    for r in rows:
        print(f"{r['name']:<16} 127.0.0.1:{r['ssh_port']!s:<6} {r['tailscale_ip'] or '-':<14} {r['state']}")


if __name__ == "__main__":
    sys.exit(main())
