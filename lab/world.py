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
  `world.lab.test` resolves only through Pi-hole, which the Ollama container does not ask;
- the lab's DNS-01 world (lab.acme): bind9, authoritative for the lab's domain and taking RFC 2136
  updates, and pebble, an ACME server checking its challenges at that bind9;
- the lab's image registry on port 443 with TLS: Debian's `docker-registry`, the real Distribution
  registry, under the LAB-ONLY name `registry.world.lab.test`. It holds the stand-in service images
  under the real images' repository paths and tags (lab/data.py LAB_IMAGES, plus the ComfyUI
  versions `lab-v2` and `lab-v3-unhealthy` for the update tests), pushed by `python -m lab up` from
  the machine's engine through this port published on 127.0.0.1. `up` copies the server certificate
  and key (signed by the lab CA it keeps in .lab/registry/, lab/registry.py) to REGISTRY_TLS before
  the container starts; every lab host trusts that CA at
  /etc/docker/certs.d/registry.world.lab.test/ca.crt and resolves the name through an /etc/hosts
  entry for this container's address, both rewritten at every `up`. So the lab hosts' Docker engines
  pull over verified TLS, exactly as from any registry, and the deploy knows nothing of the lab. The
  registry keeps its blobs in this container (/var/lib/docker-registry): a new world starts empty and
  the next `up` pushes again. No authentication: the registry is reachable only on the lab network
  and on this machine's loopback.

The lab inventory makes it Pi-hole's upstream resolver; the lab tests connect to it from every
service container. `python3 -m lab.world` (image homelab-lab/world:lab: the stand-in base, which
carries dnsmasq, plus docker-registry).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from lab import acme
from lab.doubles import model_registry
from lab.standin import http_server, say, start

ZONE = "world.lab.test"
HTTP_PORT = 80
ANSWER = "lab world"
REGISTRY_PORT = 443
REGISTRY_TLS = "/etc/lab-registry"  # server.crt and server.key, copied here by `python -m lab up`
REGISTRY_CONFIG = f"""\
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: :{REGISTRY_PORT}
  tls:
    certificate: {REGISTRY_TLS}/server.crt
    key: {REGISTRY_TLS}/server.key
  headers:
    X-Content-Type-Options: [nosniff]
"""


def own_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # picks the lab-network address; sends nothing
        return probe.getsockname()[0]


def main() -> int:
    address = own_address()
    say(f"LAB STAND-IN for the internet at {address}: DNS for {ZONE} (dnsmasq), HTTP on {HTTP_PORT}, "
        f"a model registry and files on {model_registry.PORT}, the lab image registry (docker-registry) "
        f"on {REGISTRY_PORT}, bind9 for {acme.LAB_DOMAIN} on {acme.ACME_DNS_PORT}, "
        f"pebble on {acme.ACME_PORT}")
    config = Path(REGISTRY_TLS) / "config.yml"
    config.write_text(REGISTRY_CONFIG)
    children = {
        "dnsmasq": subprocess.Popen([
            "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
            "--user=root", "--port=53", f"--address=/{ZONE}/{address}", "--log-queries", "--log-facility=-",
        ]),
        "docker-registry": subprocess.Popen(["docker-registry", "serve", str(config)]),
        **acme.start(address),
    }
    start(http_server(HTTP_PORT, {}, default=(200, ANSWER)))
    start(model_registry.serve("0.0.0.0", model_registry.PORT))  # noqa: S104 - the lab network only
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            for name, child in children.items():
                if child.poll() is not None:
                    say(f"{name} exited {child.returncode}")
                    return 1
            time.sleep(1)
    except (KeyboardInterrupt, SystemExit):
        return 0
    finally:
        for child in children.values():
            if child.poll() is None:
                child.terminate()


if __name__ == "__main__":
    sys.exit(main())
