"""Lab hosts: disposable Debian 12 "servers" in containers, reached over real SSH.

Each host runs systemd as PID 1, sshd on its own 127.0.0.1 port, its own Docker engine (its
/var/lib/docker is an anonymous volume on the machine's filesystem, so the inner engine can use
overlay2 instead of vfs), a `tailscale0` stand-in link and a /cold-storage directory (in the
container's filesystem: it survives `docker compose down` and host reboots, not `python -m lab down`).

The hosts pull their service images from the lab registry (lab/world.py, lab/registry.py): every
`up` writes the lab CA to /etc/docker/certs.d/registry.world.lab.test/ca.crt on each host and keeps its
/etc/hosts entry for that name at the world's current address. Nothing is preloaded: a new host has no
service image until a deploy pulls it.

The simulated tailnet keeps lab traffic in the lab: each host routes its peers' tailscale0 addresses
over the tailnet network and nothing else of 100.64.0.0/10 or fd7a:115c:a1e0::/48 (`unreachable`,
see lab/images/host/lab-tailscale0-standin). Every `up` writes the full peer list to every host and
re-applies the routes, so hosts already running learn a host added by `up --hosts N`. This machine
joins the tailnet too (CONTROLLER_TAILNET_IP, see join_tailnet), so a deploy can reach a host over the
tailnet as an owner's laptop does.

Container flags follow ../shared/LAB.md: `--privileged` fails on the project's machines (no
CAP_SYS_RESOURCE), so every other capability is named instead.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import socket
import subprocess
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lab import acme, images, registry, state
from lab.data import LAB_REGISTRY
from lab.docker import docker, engine_ok, image_id, log

NAME_PREFIX = "homelab-lab-"
LABEL = "homelab.lab"
# the simulated tailnet: one more Docker network, bridged to each host's tailscale0 stand-in
TAILNET_NETWORK = "homelab-lab-tailnet"
# "the internet": one container on the lab network that no deploy touches (lab/world.py)
WORLD_NAME = "homelab-lab-world"
WORLD_LABEL = "homelab.lab.world"
# the world's label holding a hash of the registry certificate it was given (a new one makes a new world)
WORLD_CERT_LABEL = f"{WORLD_LABEL}.registry_cert"
FIRST_SSH_PORT = 2221
TAILSCALE_PREFIX = "100.64.0."
# this machine's own address on the simulated tailnet (join_tailnet): the lab's "owner laptop"
CONTROLLER_TAILNET_IP = f"{TAILSCALE_PREFIX}254"
BOOT_TIMEOUT = 120.0
# sshd inside a lab host listens here (lab/images/host/Dockerfile), not on 22
INNER_SSH_PORT = 2222
# the ordinary logins with sudo (LAB ONLY accounts): name -> uid; `python -m lab up` authorises the
# lab key for them as for root
SUDO_USERS = {"homelab": 1000, "homelab-pw": 1001}

RUN_FLAGS = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock",
    # the inner engine's data on the machine's own filesystem (overlay2 works there, vfs otherwise)
    "--mount", "type=volume,dst=/var/lib/docker",
]


# --- keys and ports ------------------------------------------------------------------------------


def ensure_key() -> Path:
    state.ensure_dirs()
    key = state.KEY_FILE
    if not key.exists():
        log(f"generating the lab's SSH key {key.relative_to(state.ROOT)}")
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "homelab-lab", "-f", str(key)],
            check=True,
        )
    key.chmod(0o600)
    return key


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_port(taken: set[int]) -> int:
    port = FIRST_SSH_PORT
    while port in taken or not _port_free(port):
        port += 1
    return port


# --- containers ----------------------------------------------------------------------------------


def lab_containers() -> dict[str, dict]:
    """Containers this lab made (label homelab.lab=1): name -> {running, ssh_port, tailscale_ip}."""
    out = docker("ps", "-a", "--filter", f"label={LABEL}=1", "--format", "{{.Names}}", capture=True)
    names = [n for n in out.stdout.split() if n]
    if not names:
        return {}
    inspect = json.loads(docker("inspect", *names, capture=True).stdout)
    found = {}
    for c in inspect:
        labels = c["Config"]["Labels"] or {}
        found[c["Name"].lstrip("/")] = {
            "running": bool(c["State"]["Running"]),
            "image": c["Image"],
            "ssh_port": int(labels.get(f"{LABEL}.ssh_port", 0)),
            "tailscale_ip": labels.get(f"{LABEL}.tailscale_ip", ""),
            "tailnet": TAILNET_NETWORK in (c["NetworkSettings"]["Networks"] or {}),
        }
    return found


def _boot_files(pubkey: str, tailscale_ip: str, tailnet_subnet: str = "", lab_gateway: str = "",
                peers: list[str] | None = None) -> bytes:
    """A tar stream (for `docker cp -`) with the authorized key, the tailscale0 address, the simulated
    tailnet's subnet, the lab network's gateway and the tailnet peers (the lab hosts' tailscale0
    addresses; read by lab-tailscale0-standin at boot)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(path: str, data: bytes | None, mode: int, uid: int = 0) -> None:
            info = tarfile.TarInfo(path)
            info.mode, info.uid, info.gid, info.mtime = mode, uid, uid, int(time.time())
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        add("root/.ssh", None, 0o700)
        add("root/.ssh/authorized_keys", pubkey.encode(), 0o600)
        for user, uid in SUDO_USERS.items():
            add(f"home/{user}/.ssh", None, 0o700, uid)
            add(f"home/{user}/.ssh/authorized_keys", pubkey.encode(), 0o600, uid)
        add("etc/lab", None, 0o755)
        add("etc/lab/tailscale-ip", f"{tailscale_ip}\n".encode(), 0o644)
        add("etc/lab/tailnet-subnet", f"{tailnet_subnet}\n".encode(), 0o644)
        add("etc/lab/lab-gateway", f"{lab_gateway}\n".encode(), 0o644)
        add("etc/lab/tailnet-peers", _peers_file(peers or []), 0o644)
    return buf.getvalue()


def _peers_file(peers: list[str]) -> bytes:
    return "".join(f"{peer}\n" for peer in peers).encode()


def create_host(name: str, ssh_port: int, tailscale_ip: str, image: str, pubkey: str,
                tailnet_subnet: str, lab_gateway: str, peers: list[str]) -> None:
    log(f"starting {name} (ssh 127.0.0.1:{ssh_port}, tailscale0 {tailscale_ip})")
    docker(
        "create", "--name", name, "--hostname", name,
        "--label", f"{LABEL}=1", "--label", f"{LABEL}.ssh_port={ssh_port}",
        "--label", f"{LABEL}.tailscale_ip={tailscale_ip}",
        *RUN_FLAGS, "-p", f"127.0.0.1:{ssh_port}:{INNER_SSH_PORT}", image,
        capture=True,
    )
    docker("network", "connect", TAILNET_NETWORK, name, capture=True)
    files = _boot_files(pubkey, tailscale_ip, tailnet_subnet, lab_gateway, peers)
    docker("cp", "-a", "-", f"{name}:/", input=files, capture=True)
    docker("start", name, capture=True)


# --- the simulated tailnet and the world ------------------------------------------------------------


def ensure_tailnet() -> str:
    """The simulated tailnet's Docker network (created once; Docker picks a free subnet): its subnet.

    A plain bridge network, not `--internal`: Docker's isolation rules for internal networks drop
    traffic whose addresses lie outside the network's subnet, and the tailnet carries 100.64.0.0/10.
    """
    proc = docker("network", "inspect", TAILNET_NETWORK, "--format", "{{json .IPAM.Config}}",
                  check=False, capture=True)
    if proc.returncode != 0:
        docker("network", "create", "--label", f"{LABEL}.tailnet=1", TAILNET_NETWORK, capture=True)
        proc = docker("network", "inspect", TAILNET_NETWORK, "--format", "{{json .IPAM.Config}}",
                      capture=True)
    return json.loads(proc.stdout)[0]["Subnet"]


def _tailnet_bridge() -> str:
    """The name of the tailnet network's bridge on this machine (Docker names it br-<id>)."""
    net_id = docker("network", "inspect", TAILNET_NETWORK, "--format", "{{.Id}}", capture=True).stdout.strip()
    return f"br-{net_id[:12]}"


def join_tailnet(host_ips: list[str]) -> bool:
    """This machine as a tailnet peer: CONTROLLER_TAILNET_IP on the tailnet network's bridge and a route to
    each lab host's tailscale0 address through it (from that address), as an owner's laptop in the tailnet
    reaches the servers. Nothing leaves the machine: the routes lead to the lab hosts only, and go with the
    network at `down`. False (said once) when this machine may not change its own routes."""
    bridge = _tailnet_bridge()
    commands = [["ip", "addr", "replace", f"{CONTROLLER_TAILNET_IP}/32", "dev", bridge]]
    commands += [["ip", "route", "replace", f"{address}/32", "dev", bridge, "src", CONTROLLER_TAILNET_IP]
                 for address in host_ips]
    for command in commands:
        try:
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
            said = proc.stderr.strip() if proc.returncode != 0 else None
        except OSError as error:  # no `ip` on this machine
            said = str(error)
        if said is not None:
            log(f"this machine cannot join the lab tailnet ({' '.join(command)}: {said}): "
                "deploys over the tailnet (LAB_SSH_OVER=tailnet) cannot reach the hosts")
            return False
    return True


def ensure_world(certs: registry.Certificates) -> dict:
    """The world stand-in (lab/world.py) running on the lab network: {"name", "address", "gateway",
    "registry_port"}, the gateway being the lab network's (the lab hosts' default route) and the
    registry port the world's 443 as published on this machine's 127.0.0.1 (for pushes)."""
    world_image = images.WORLD_IMAGE
    cert_hash = _cert_hash(certs)
    proc = docker("inspect", WORLD_NAME, "--format",
                  '{{.State.Running}} {{.Image}} {{index .Config.Labels "' + WORLD_CERT_LABEL + '"}}',
                  check=False, capture=True)
    running, image, labelled = (proc.stdout.split() + ["", "", ""])[:3]
    # a world made from an older image (its code is in the image) or with another certificate is made again
    outdated = running != "true" or image != image_id(world_image) or labelled != cert_hash
    if proc.returncode == 0 and outdated:
        docker("rm", "-f", WORLD_NAME, capture=True)
        proc = docker("inspect", WORLD_NAME, check=False, capture=True)
    if proc.returncode != 0:
        log(f"starting {WORLD_NAME} (the lab's stand-in for the internet, and its image registry)")
        docker("create", "--name", WORLD_NAME, "--hostname", WORLD_NAME, "--label", f"{WORLD_LABEL}=1",
               "--label", f"{WORLD_CERT_LABEL}={cert_hash}", "--cap-add", "NET_BIND_SERVICE",
               "-p", "127.0.0.1::443", world_image, capture=True)
        docker("cp", "-a", "-", f"{WORLD_NAME}:/", input=_registry_tls_files(certs), capture=True)
        docker("start", WORLD_NAME, capture=True)
    address, gateway = docker("inspect", WORLD_NAME, "--format",
                              "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}}",
                              capture=True).stdout.split()
    published = docker("port", WORLD_NAME, "443/tcp", capture=True).stdout.split()[0]
    port = int(published.rpartition(":")[2])
    registry.wait_ready(port, certs)
    return {"name": WORLD_NAME, "address": address, "gateway": gateway, "registry_port": port,
            "acme_directory": acme.directory_url(address), "tls_roots": str(_save_acme_roots())}


def _save_acme_roots() -> Path:
    """What a client of the world's ACME server trusts (lab.acme.roots: the directory's CA and pebble's
    root, which pebble makes anew at every start), kept current in the lab's state folder."""
    roots = docker("exec", WORLD_NAME, "python3", "-m", "lab.acme", "roots", capture=True).stdout
    path = state.STATE_DIR / "acme-roots.pem"
    if not path.exists() or path.read_text() != roots:
        path.write_text(roots)
    return path


def _cert_hash(certs: registry.Certificates) -> str:
    return hashlib.sha256(certs.server_cert.read_bytes()).hexdigest()[:16]


def _registry_tls_files(certs: registry.Certificates) -> bytes:
    """A tar stream (for `docker cp -`) with the registry's certificate and key for the world."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("etc/lab-registry")
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o700, int(time.time())
        tar.addfile(info)
        for path, mode in ((certs.server_cert, 0o644), (certs.server_key, 0o600)):
            data = path.read_bytes()
            info = tarfile.TarInfo(f"etc/lab-registry/{path.name}")
            info.mode, info.size, info.mtime = mode, len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sync_registry(name: str, certs: registry.Certificates, world_address: str) -> None:
    """Make a running host trust the lab registry the Docker way (its CA under /etc/docker/certs.d/) and
    resolve its name to the world's current address (/etc/hosts, written in place: Docker bind-mounts it).
    Folders that exist keep their owner and mode (the deploy manages /etc/docker)."""
    address = str(ipaddress.ip_address(world_address))
    folder = f"/etc/docker/certs.d/{LAB_REGISTRY}"
    docker("exec", "-i", name, "sh", "-c", f"mkdir -p {folder} && cat > {folder}/ca.crt",
           input=certs.ca_cert.read_bytes(), capture=True)
    current = docker("exec", name, "cat", "/etc/hosts", capture=True).stdout
    wanted = registry.with_registry_entry(current, address)
    if wanted != current:
        docker("exec", "-i", name, "sh", "-c", "cat > /etc/hosts", input=wanted.encode(), capture=True)


def sync_tailnet(name: str, peers: list[str]) -> str:
    """Give a running host the current tailnet peers and re-apply its routes (the stand-in script is
    safe to run again): a host added since it booted becomes reachable from it. Returns what the
    script said."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = _peers_file(peers)
        info = tarfile.TarInfo("etc/lab/tailnet-peers")
        info.mode, info.size, info.mtime = 0o644, len(data), int(time.time())
        tar.addfile(info, io.BytesIO(data))
    docker("cp", "-a", "-", f"{name}:/", input=buf.getvalue(), capture=True)
    proc = docker("exec", name, "/usr/local/sbin/lab-tailscale0-standin", capture=True)
    return proc.stdout.strip()


def sync_key(name: str, pubkey: str) -> None:
    """Keep a running host's authorized key equal to the lab key (it may have been regenerated)."""
    docker("cp", "-a", "-", f"{name}:/", input=_boot_files_key_only(pubkey), capture=True)


def _boot_files_key_only(pubkey: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, uid in [("root", 0), *((f"home/{user}", uid) for user, uid in SUDO_USERS.items())]:
            info = tarfile.TarInfo(f"{path}/.ssh/authorized_keys")
            info.mode, info.uid, info.gid, info.size = 0o600, uid, uid, len(pubkey.encode())
            tar.addfile(info, io.BytesIO(pubkey.encode()))
    return buf.getvalue()


def ssh_command(host: dict, *command: str) -> list[str]:
    return [
        "ssh", "-i", host["ssh_key"], "-p", str(host["ssh_port"]),
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5",
        "root@127.0.0.1", *command,
    ]


def wait_ready(host: dict, timeout: float = BOOT_TIMEOUT) -> str:
    """Wait for systemd to finish booting, the inner Docker engine and sshd; return the boot state."""
    name = host["name"]
    deadline = time.monotonic() + timeout
    boot = ""
    while time.monotonic() < deadline:
        proc = docker("exec", name, "systemctl", "is-system-running", "--wait",
                      check=False, capture=True, timeout=max(1.0, deadline - time.monotonic()))
        boot = proc.stdout.strip()
        if boot in ("running", "degraded"):
            break
        time.sleep(0.5)
    else:
        raise SystemExit(f"{name}: systemd did not finish booting ({boot or 'no answer'})")
    if boot == "degraded":
        failed = docker("exec", name, "systemctl", "--failed", "--no-legend", "--plain",
                        check=False, capture=True).stdout.strip()
        log(f"{name}: systemd is degraded: {failed}")
    while True:
        active = docker("exec", name, "systemctl", "is-active", "docker", check=False, capture=True)
        if active.stdout.strip() == "active":
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: the inner Docker engine is not active ({active.stdout.strip()})")
        time.sleep(0.5)
    while True:
        proc = subprocess.run(ssh_command(host, "true"), capture_output=True, text=True)
        if proc.returncode == 0:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: ssh on 127.0.0.1:{host['ssh_port']} failed: {proc.stderr.strip()}")
        time.sleep(0.5)
    return boot


# --- commands ------------------------------------------------------------------------------------


def _need_engine() -> None:
    if not engine_ok():
        raise SystemExit(
            "no Docker engine answers: start one "
            "(as root, `bash lab/setup-machine.sh` installs and starts it)"
        )


def up(count: int = 1) -> list[dict]:
    _need_engine()
    started = time.monotonic()
    key = ensure_key()
    pubkey = Path(f"{key}.pub").read_text()
    images.ensure_base_image()
    with ThreadPoolExecutor(max_workers=3) as pool:  # independent builds (cached: no-ops)
        host_build = pool.submit(images.ensure_host_image)
        standin_build = pool.submit(lambda: (images.ensure_standin_images(), images.ensure_world_image()))
        monitoring_build = pool.submit(images.ensure_monitoring_images)
        host_image = host_build.result()
        standin_build.result()
        monitoring_build.result()
    certs = registry.ensure_certificates(state.REGISTRY_DIR)

    existing = lab_containers()
    known = {h["name"]: h for h in state.load_hosts()}
    tailnet_subnet = ensure_tailnet()
    world = ensure_world(certs)
    gateway = world["gateway"]
    count = max(count, len(existing))  # never drop hosts that are already there
    taken = {c["ssh_port"] for c in existing.values()} | {h["ssh_port"] for h in known.values()}
    # every host's tailscale0 address, known before any host starts (a new host boots with its peers)
    peers = [existing[f"{NAME_PREFIX}{i}"]["tailscale_ip"] if f"{NAME_PREFIX}{i}" in existing
             else f"{TAILSCALE_PREFIX}{i}" for i in range(1, count + 1)]
    peers.append(CONTROLLER_TAILNET_IP)  # this machine, a peer the hosts route over their tailscale0
    hosts = []
    for i in range(1, count + 1):
        name = f"{NAME_PREFIX}{i}"
        found = existing.get(name)
        if found:
            host = {"name": name, "ssh_port": found["ssh_port"], "tailscale_ip": found["tailscale_ip"]}
            if not found["running"]:
                log(f"starting stopped {name}")
                docker("start", name, capture=True)
            sync_key(name, pubkey)
            if found["image"] != image_id(host_image) or not found["tailnet"]:
                log(f"{name} runs an older lab host image: `python -m lab down` then `up` to renew it")
        else:
            port = known.get(name, {}).get("ssh_port") or _pick_port(taken)
            if not _port_free(port):
                port = _pick_port(taken | {port})
            taken.add(port)
            host = {"name": name, "ssh_port": port, "tailscale_ip": f"{TAILSCALE_PREFIX}{i}"}
            create_host(name, port, host["tailscale_ip"], host_image, pubkey, tailnet_subnet, gateway, peers)
        host["ssh_key"] = str(key)
        host["ssh_user"] = "root"
        host["ssh_hostname"] = "127.0.0.1"
        hosts.append(host)
    if join_tailnet([h["tailscale_ip"] for h in hosts]):
        world["controller_tailnet_ip"] = CONTROLLER_TAILNET_IP
    state.save_hosts(hosts, world)

    with ThreadPoolExecutor(max_workers=len(hosts) + 1) as pool:
        # the stand-ins go into the lab registry while the hosts boot (pushes only what it lacks)
        pushing = pool.submit(registry.push, images.REGISTRY_PUSHES, world["registry_port"], certs)
        boots = list(pool.map(wait_ready, hosts))
        list(pool.map(lambda h: sync_tailnet(h["name"], peers), hosts))
        list(pool.map(lambda h: sync_registry(h["name"], certs, world["address"]), hosts))
        pushed = pushing.result()
    if pushed:
        log(f"lab registry {LAB_REGISTRY}: pushed {len(pushed)} image(s)")
    for host, boot in zip(hosts, boots, strict=True):
        host["boot_state"] = boot
    state.save_hosts(hosts, world)
    log(f"lab up: {len(hosts)} host(s) in {time.monotonic() - started:.1f}s")
    return hosts


def down(remove_images: bool = False) -> None:
    _need_engine()
    names = list(lab_containers())
    if docker("inspect", WORLD_NAME, check=False, capture=True).returncode == 0:
        names.append(WORLD_NAME)
    if names:
        log(f"removing {', '.join(names)}")
        docker("rm", "-f", "-v", *names, capture=True)
    docker("network", "rm", TAILNET_NETWORK, check=False, capture=True)
    for path in (state.HOSTS_FILE, state.KEY_FILE, Path(f"{state.KEY_FILE}.pub")):
        path.unlink(missing_ok=True)
    if remove_images:
        tags = [images.HOST_IMAGE, images.WORLD_IMAGE, *images.STANDIN_IMAGES.values(),
                *images.EXTRA_STANDIN_IMAGES.values(), images.STANDIN_BASE_IMAGE, images.STANDIN_BUILD_IMAGE,
                *images.MONITORING_IMAGES.values(), images.MONITORING_BASE_IMAGE,
                images.MONITORING_BUILD_IMAGE]
        docker("rmi", *tags, check=False, capture=True)
    log("lab down")


def destroy(name: str) -> None:
    """Remove one lab host entirely (its container, its Docker engine's volume, everything on it), as a
    dead disk would; `up` brings up a new, bare one under the same name, SSH port and tailnet address."""
    _need_engine()
    if name not in lab_containers():
        raise SystemExit(f"no lab host {name} (see `python -m lab status`)")
    log(f"destroying {name}")
    docker("rm", "-f", "-v", name, capture=True)


def status() -> list[dict]:
    known = {h["name"]: h for h in state.load_hosts()}
    containers = lab_containers() if engine_ok() else {}
    rows = []
    for name in sorted(set(known) | set(containers), key=lambda n: (len(n), n)):
        c = containers.get(name, {})
        r = known.get(name, {})
        rows.append({
            "name": name,
            "ssh_port": r.get("ssh_port") or c.get("ssh_port"),
            "tailscale_ip": r.get("tailscale_ip") or c.get("tailscale_ip"),
            "state": "running" if c.get("running") else ("stopped" if c else "missing"),
        })
    return rows
