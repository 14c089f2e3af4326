"""Lab images: the `debian:bookworm` base, the lab host image, the stand-in service images, the
monitoring stand-in images (Debian's Prometheus programs and lab/monitoring_standin.py) and the world
stand-in's image (the stand-in base plus Debian's docker-registry, lab/world.py).

Everything is built locally. Where no container registry answers (as on the project's CI machines)
the base image `debian:bookworm` is created with debootstrap from the Debian registry, and the
rootfs tarball is cached under `.lab/cache/` so a rebuilt engine does not debootstrap again.

Builds are skipped when an image with the expected tag already carries a label with the hash of
its inputs (build context files + parent image ID), so a second `python -m lab up` takes seconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from lab import state
from lab.data import LAB_IMAGES, OLLAMA_LAB_V2, OLLAMA_LAB_V3_UNHEALTHY
from lab.docker import docker, image_id, log

BASE_IMAGE = "debian:bookworm"
HOST_IMAGE = "homelab-lab/host:lab"
STANDIN_BASE_IMAGE = "homelab-lab/standin-base:lab"
STANDIN_BUILD_IMAGE = "homelab-lab/standin-build:lab"
INPUTS_LABEL = "homelab.lab.inputs"

WORLD_IMAGE = "homelab-lab/world:lab"

# service role -> the stand-in's build tag on this machine; `up` pushes it to the lab registry as
# lab.data.LAB_IMAGES[role], which the lab inventory selects
STANDIN_ROLES = ("nginx-proxy-manager", "pihole", "ollama", "comfyui", "open-webui")
STANDIN_IMAGES = {role: f"homelab-lab/standin-{role}:lab" for role in STANDIN_ROLES}
# further Ollama versions for the update tests: Dockerfile.roles target -> build tag
EXTRA_STANDIN_IMAGES = {
    "ollama-lab-v2": "homelab-lab/standin-ollama:lab-v2",
    "ollama-lab-v3-unhealthy": "homelab-lab/standin-ollama:lab-v3-unhealthy",
}
# the monitoring stack's stand-ins (lab/images/monitoring): service -> build tag, pushed as
# lab.data.LAB_IMAGES[service]; their own flattened base, so the five above stay small
MONITORING_BASE_IMAGE = "homelab-lab/standin-monitoring-base:lab"
MONITORING_BUILD_IMAGE = "homelab-lab/standin-monitoring-build:lab"
MONITORING_ROLES = (
    "prometheus", "alertmanager", "blackbox-exporter", "grafana", "node-exporter", "cadvisor",
    "dcgm-exporter",
)
MONITORING_IMAGES = {role: f"homelab-lab/standin-{role}:lab" for role in MONITORING_ROLES}
# build tag -> reference in the lab registry: what `python -m lab up` pushes
REGISTRY_PUSHES = {
    **{STANDIN_IMAGES[role]: LAB_IMAGES[role] for role in STANDIN_ROLES},
    **{MONITORING_IMAGES[role]: LAB_IMAGES[role] for role in MONITORING_ROLES},
    EXTRA_STANDIN_IMAGES["ollama-lab-v2"]: OLLAMA_LAB_V2,
    EXTRA_STANDIN_IMAGES["ollama-lab-v3-unhealthy"]: OLLAMA_LAB_V3_UNHEALTHY,
}

LAB_DIR = Path(__file__).resolve().parent
IMAGES_DIR = LAB_DIR / "images"
DCGM_FIXTURE = LAB_DIR.parent / "tests" / "fixtures" / "dcgm" / "metrics.txt"
DEBIAN_MIRROR = os.environ.get("LAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What the rootfs carries besides minbase: close to the official image, plus what every lab image
# installs anyway (the Dockerfiles still list them, so they build from the official image too).
DEBOOTSTRAP_INCLUDE = "ca-certificates,python3,curl"
COMPOSE_VERSION = "2.40.3"


def _hash_tree(h: hashlib._Hash, root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or path.suffix == ".pyc" or not path.is_file():
            continue
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(path.read_bytes())


def _inputs_hash(*parts: str | Path) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            if part.is_dir():
                _hash_tree(h, part)
            else:
                h.update(part.read_bytes())
        else:
            h.update(part.encode())
        h.update(b"\1")
    return h.hexdigest()[:16]


def _label(image: str) -> str | None:
    out = docker(
        "image", "inspect", "--format", "{{index .Config.Labels \"" + INPUTS_LABEL + "\"}}", image,
        check=False, capture=True,
    )
    return out.stdout.strip() if out.returncode == 0 else None


# --- base image ---------------------------------------------------------------------------------


def ensure_base_image() -> None:
    """Make sure `debian:bookworm` exists locally: pull it, else import the debootstrap rootfs."""
    if image_id(BASE_IMAGE):
        return
    pulled = docker("pull", "-q", BASE_IMAGE, check=False, capture=True)
    if pulled.returncode == 0:
        log(f"pulled {BASE_IMAGE}")
        return
    tarball = state.CACHE_DIR / "debian-bookworm-rootfs.tar"
    if not tarball.exists():
        _debootstrap(tarball)
    log(f"importing {BASE_IMAGE} from {tarball.relative_to(state.ROOT)} (no registry reachable)")
    with tarball.open("rb") as f:
        subprocess.run(
            ["docker", "import", "--change", 'CMD ["bash"]', "-", BASE_IMAGE],
            stdin=f, check=True, stdout=subprocess.DEVNULL,
        )


def _debootstrap(tarball: Path) -> None:
    if not shutil.which("debootstrap"):
        raise SystemExit(
            "no registry answers and debootstrap is missing: run `bash lab/setup-machine.sh` "
            "(or `apt-get install debootstrap`)"
        )
    state.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    log("creating debian:bookworm with debootstrap (about a minute; cached afterwards)")
    with tempfile.TemporaryDirectory(dir=state.CACHE_DIR, prefix="rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={DEBOOTSTRAP_INCLUDE}", "bookworm",
             str(rootfs), DEBIAN_MIRROR],
            check=True, stdout=subprocess.DEVNULL,
        )
        # like the official image: no package caches, the usual suites
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for p in (rootfs / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
        (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(
            "Types: deb\n"
            f"URIs: {DEBIAN_MIRROR}\n"
            "Suites: bookworm bookworm-updates\n"
            "Components: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            "Types: deb\n"
            "URIs: http://deb.debian.org/debian-security\n"
            "Suites: bookworm-security\n"
            "Components: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
        part = tarball.with_suffix(".part")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(part), "."], check=True)
        part.rename(tarball)


# --- lab images ---------------------------------------------------------------------------------


def compose_binary() -> Path:
    """The compose v2 binary that setup-machine.sh cached (baked into the lab host image)."""
    cached = state.STATE_DIR / f"docker-compose-{COMPOSE_VERSION}"
    if cached.exists():
        return cached
    plugin = Path("/usr/local/lib/docker/cli-plugins/docker-compose")
    if plugin.exists():
        return plugin
    raise SystemExit(
        f"no compose v2 binary at {cached} or {plugin}: run `bash lab/setup-machine.sh` first"
    )


def _build(tag: str, context: Path, inputs: str, *, target: str | None = None,
           dockerfile: Path | None = None) -> bool:
    """Build `tag` unless it already carries `inputs`; return True when it built."""
    if _label(tag) == inputs:
        return False
    log(f"building {tag}")
    args = ["build", "-q", "-t", tag, "--label", f"{INPUTS_LABEL}={inputs}"]
    if target:
        args += ["--target", target]
    if dockerfile:
        args += ["-f", str(dockerfile)]
    docker(*args, str(context), capture=True)
    return True


def ensure_host_image() -> str:
    ensure_base_image()
    src = IMAGES_DIR / "host"
    binary = compose_binary()
    inputs = _inputs_hash(image_id(BASE_IMAGE) or "", src, binary)
    if _label(HOST_IMAGE) != inputs:
        with tempfile.TemporaryDirectory(dir=state.CACHE_DIR, prefix="host-ctx-") as tmp:
            ctx = Path(tmp)
            shutil.copytree(src, ctx, dirs_exist_ok=True)
            try:
                os.link(binary, ctx / "docker-compose")
            except OSError:
                shutil.copy2(binary, ctx / "docker-compose")
            _build(HOST_IMAGE, ctx, inputs)
    return HOST_IMAGE


def ensure_standin_images() -> dict[str, str]:
    """Build the stand-in family: one flattened base (python3, curl, dig, the lab package), then
    one tag per role adding only ENV and CMD. Flattening matters: the lab hosts' inner engine uses
    the vfs storage driver, which stores every layer as a full copy."""
    ensure_base_image()
    src = IMAGES_DIR / "standin"
    inputs = _standin_inputs()
    if _label(STANDIN_BASE_IMAGE) != inputs:
        _build(STANDIN_BUILD_IMAGE, LAB_DIR, inputs, target="base", dockerfile=src / "Dockerfile")
        _flatten(STANDIN_BUILD_IMAGE, STANDIN_BASE_IMAGE, inputs)
    roles_inputs = _inputs_hash(image_id(STANDIN_BASE_IMAGE) or "", src / "Dockerfile.roles")
    for target, tag in [*STANDIN_IMAGES.items(), *EXTRA_STANDIN_IMAGES.items()]:
        _build(tag, src, roles_inputs, target=target, dockerfile=src / "Dockerfile.roles")
    return dict(STANDIN_IMAGES)


def _standin_inputs() -> str:
    src = IMAGES_DIR / "standin"
    return _inputs_hash(
        image_id(BASE_IMAGE) or "", src / "Dockerfile", src / "ollama",
        LAB_DIR / "__init__.py", LAB_DIR / "standin.py", LAB_DIR / "doubles", LAB_DIR / ".dockerignore",
    )


def ensure_monitoring_images() -> dict[str, str]:
    """Build the monitoring stand-ins: one flattened base (Debian's prometheus, alertmanager, node and
    blackbox exporters, wget, python3 with lab.monitoring_standin and the DCGM fixture), then one tag
    per service adding only its user, ENTRYPOINT and CMD. Rebuilt only when their inputs change."""
    ensure_base_image()
    src = IMAGES_DIR / "monitoring"
    inputs = _monitoring_inputs()
    if _label(MONITORING_BASE_IMAGE) != inputs:
        state.CACHE_DIR.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=state.CACHE_DIR, prefix="monitoring-ctx-") as tmp:
            # the context holds what the image runs and nothing else
            ctx = Path(tmp)
            (ctx / "lab").mkdir()
            (ctx / "tests/fixtures/dcgm").mkdir(parents=True)
            for name in ("__init__.py", "monitoring_standin.py"):
                shutil.copy2(LAB_DIR / name, ctx / "lab" / name)
            shutil.copy2(DCGM_FIXTURE, ctx / "tests/fixtures/dcgm/metrics.txt")
            shutil.copy2(src / "Dockerfile", ctx / "Dockerfile")
            _build(MONITORING_BUILD_IMAGE, ctx, inputs, target="base")
        _flatten(MONITORING_BUILD_IMAGE, MONITORING_BASE_IMAGE, inputs,
                 cmd='CMD ["python3", "-m", "lab.monitoring_standin"]')
    roles_inputs = _inputs_hash(image_id(MONITORING_BASE_IMAGE) or "", src / "Dockerfile.roles")
    for target, tag in MONITORING_IMAGES.items():
        _build(tag, src, roles_inputs, target=target, dockerfile=src / "Dockerfile.roles")
    return dict(MONITORING_IMAGES)


def _monitoring_inputs() -> str:
    return _inputs_hash(
        image_id(BASE_IMAGE) or "", IMAGES_DIR / "monitoring" / "Dockerfile",
        LAB_DIR / "__init__.py", LAB_DIR / "monitoring_standin.py", DCGM_FIXTURE,
    )


def ensure_world_image() -> str:
    """The world stand-in's image: the stand-in base stage plus Debian's docker-registry (stage
    `world` of the stand-in Dockerfile), not flattened and never pushed."""
    ensure_base_image()
    # what the world runs: lab/world.py and the modules it imports beyond the stand-in base's
    inputs = _inputs_hash(_standin_inputs(), LAB_DIR / "world.py", LAB_DIR / "acme.py", LAB_DIR / "data.py")
    _build(WORLD_IMAGE, LAB_DIR, inputs, target="world", dockerfile=IMAGES_DIR / "standin" / "Dockerfile")
    return WORLD_IMAGE


def _flatten(source: str, tag: str, inputs: str, *,
             cmd: str = 'CMD ["python3", "-m", "lab.standin"]') -> None:
    """Squash `source` into a one-layer image `tag` (export a container, import it again)."""
    log(f"flattening {source} into {tag}")
    cid = docker("create", source, capture=True).stdout.strip()
    try:
        export = subprocess.Popen(["docker", "export", cid], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "import",
             "--change", "ENV PYTHONPATH=/opt/lab PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1",
             "--change", "LABEL homelab.lab.standin=1",
             "--change", f"LABEL {INPUTS_LABEL}={inputs}",
             "--change", cmd,
             "-", tag],
            stdin=export.stdout, check=True, stdout=subprocess.DEVNULL,
        )
        if export.wait() != 0:
            raise SystemExit(f"docker export {source} failed")
    finally:
        docker("rm", "-f", cid, check=False, capture=True)

