"""LAB STAND-IN for "the internet": what the `homelab-lab-world` container runs.

A real server's containers reach the world: Pi-hole asks its upstream resolvers, Ollama pulls
models, NPM fetches certificates. The lab has no world to reach (nothing may leave this machine),
so one more container on the lab network plays it, reached only at its lab-network address:

- a DNS server, Debian's dnsmasq, authoritative for the test zone `world.lab.test` only
  (`--no-resolv`: it never forwards anywhere); every name in that zone resolves to this
  container's own address, so a name resolved through Pi-hole can be connected to;
- an HTTP listener on port 80 answering "lab world";
- a model source on port 5000 (lab.doubles.model_registry): a tiny Ollama registry
  (`<address>:5000/library/tiny:1`, `…/small:1`, `…/broken:1`, pulled with Ollama's `insecure`: plain
  HTTP) and plain HTTP files (`http://<address>:5000/files/tiny-checkpoint.safetensors`, a ComfyUI
  checkpoint). The lab's containers reach the world at its address, not by a name: the name
  `world.lab.test` resolves only through Pi-hole, which the Ollama container does not ask.

The lab inventory makes it Pi-hole's upstream resolver; the lab tests connect to it from every
service container. `python3 -m lab.world` (in the stand-in base image, which carries dnsmasq).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

from lab.doubles import model_registry
from lab.standin import http_server, say, start

ZONE = "world.lab.test"
HTTP_PORT = 80
ANSWER = "lab world"


def own_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # picks the lab-network address; sends nothing
        return probe.getsockname()[0]


def main() -> int:
    address = own_address()
    say(f"LAB STAND-IN for the internet at {address}: DNS for {ZONE} (dnsmasq), HTTP on {HTTP_PORT}, "
        f"a model registry and files on {model_registry.PORT}")
    dnsmasq = subprocess.Popen([
        "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
        "--user=root", "--port=53", f"--address=/{ZONE}/{address}", "--log-queries", "--log-facility=-",
    ])
    start(http_server(HTTP_PORT, {}, default=(200, ANSWER)))
    start(model_registry.serve("0.0.0.0", model_registry.PORT))  # noqa: S104 - the lab network only
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while dnsmasq.poll() is None:
            time.sleep(1)
        say(f"dnsmasq exited {dnsmasq.returncode}")
        return 1
    except (KeyboardInterrupt, SystemExit):
        dnsmasq.terminate()
        return 0


if __name__ == "__main__":
    sys.exit(main())
