"""The lab's image registry (LAB ONLY): its TLS certificates, and the stand-in images pushed into it.

Debian's `docker-registry` (the Distribution registry, the real program) runs in the world stand-in
(lab/world.py) on port 443 with TLS, under the lab-only name `registry.world.lab.test`
(lab.data.LAB_REGISTRY). `python -m lab up`:

- makes a lab CA once, with the openssl CLI, and keeps it in `.lab/registry/` (ca.crt, ca.key); the
  registry's server certificate, signed by it for the registry's name and 127.0.0.1, lies beside it
  (server.crt, server.key) and is issued again when missing, expired or not the CA's. Private keys
  are files with mode 0600 in the 0700 state folder, never on a command line;
- copies the server certificate and key into the world container, and to every lab host the CA, at
  /etc/docker/certs.d/registry.world.lab.test/ca.crt (where a Docker engine looks for a registry's
  CA when it pulls) and the name, as an /etc/hosts entry for the world's current address;
- pushes the stand-in images from this machine's engine through the world's port 443 published on
  127.0.0.1 (Docker treats registries on 127.0.0.0/8 as insecure: it does not check the certificate of
  a push there; the lab hosts, pulling by name, do). An image is pushed only when the registry does not
  hold it under that tag already: the manifest's config digest is the image ID, so a second `up` asks
  the registry once per tag and pushes nothing.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lab.data import LAB_REGISTRY
from lab.docker import docker, image_id, log

CA_SUBJECT = "/CN=homelab lab registry CA (LAB ONLY)"
CA_DAYS = 3650
SERVER_DAYS = 825
# what the server certificate names: the lab hosts pull by name, this machine pushes to 127.0.0.1
SERVER_NAMES = (f"DNS:{LAB_REGISTRY}", "IP:127.0.0.1")
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)


@dataclass(frozen=True)
class Certificates:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def certificate_paths(folder: Path) -> Certificates:
    return Certificates(folder / "ca.crt", folder / "ca.key", folder / "server.crt", folder / "server.key")


def _openssl(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"openssl {args[0]} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _server_valid(certs: Certificates) -> bool:
    """The server certificate is the CA's, not expired, and names what SERVER_NAMES lists."""
    if not (certs.server_cert.exists() and certs.server_key.exists()):
        return False
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(certs.ca_cert), str(certs.server_cert)],
                            capture_output=True, text=True)
    if verify.returncode != 0:
        return False
    return sorted(SERVER_NAMES) == sorted(subject_alt_names(certs.server_cert))


def subject_alt_names(cert: Path) -> list[str]:
    """The certificate's subjectAltName entries as openssl's config spells them (DNS:x, IP:y)."""
    text = _openssl("x509", "-noout", "-ext", "subjectAltName", "-in", str(cert)).stdout
    names = []
    for line in text.splitlines()[1:]:
        for entry in line.split(","):
            kind, _, value = entry.strip().partition(":")
            if value:
                names.append(f"{'IP' if kind == 'IP Address' else kind}:{value}")
    return names


def ensure_certificates(folder: Path) -> Certificates:
    """The lab CA (made once) and the registry's server certificate signed by it, under ``folder``."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    certs = certificate_paths(folder)
    if not (certs.ca_cert.exists() and certs.ca_key.exists()):
        log(f"making the lab registry's CA in {folder}")
        _openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", str(certs.ca_key), "-out", str(certs.ca_cert),
                 "-days", str(CA_DAYS), "-subj", CA_SUBJECT,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        certs.ca_key.chmod(0o600)
        certs.server_cert.unlink(missing_ok=True)
    if not _server_valid(certs):
        log(f"issuing the lab registry's certificate for {LAB_REGISTRY}")
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            csr, ext = Path(tmp) / "server.csr", Path(tmp) / "server.ext"
            ext.write_text(
                f"subjectAltName={','.join(SERVER_NAMES)}\n"
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
            )
            _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-keyout", str(certs.server_key), "-out", str(csr), "-subj", f"/CN={LAB_REGISTRY}")
            certs.server_key.chmod(0o600)
            _openssl("x509", "-req", "-in", str(csr), "-CA", str(certs.ca_cert), "-CAkey", str(certs.ca_key),
                     "-set_serial", f"0x{int(time.time() * 1000):x}", "-days", str(SERVER_DAYS),
                     "-extfile", str(ext), "-out", str(certs.server_cert))
    return certs


# --- what the registry holds ----------------------------------------------------------------------


def split_reference(ref: str) -> tuple[str, str]:
    """`registry.world.lab.test/jc21/nginx-proxy-manager:2.15.1` -> ("jc21/nginx-proxy-manager", "2.15.1")."""
    registry, _, path = ref.partition("/")
    if registry != LAB_REGISTRY or not path:
        raise ValueError(f"{ref!r} is not a reference in the lab registry {LAB_REGISTRY}")
    repository, _, tag = path.rpartition(":")
    if not repository or "/" in tag:
        raise ValueError(f"{ref!r} has no tag")
    return repository, tag


def holds_image(manifest: dict | None, wanted_id: str) -> bool:
    """Whether a tag's manifest is the image ``wanted_id``: an image manifest's config digest is the
    image ID. A missing tag, or an index of several images, is not."""
    if not manifest or not wanted_id:
        return False
    return (manifest.get("mediaType") in MANIFEST_TYPES or manifest.get("schemaVersion") == 2) and \
        (manifest.get("config") or {}).get("digest") == wanted_id


def _context(certs: Certificates) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.ca_cert))


def fetch_manifest(port: int, certs: Certificates, repository: str, tag: str) -> dict | None:
    """The manifest the registry holds for repository:tag (over TLS checked against the lab CA), or None."""
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/v2/{repository}/manifests/{tag}",
        headers={"Accept": ", ".join(MANIFEST_TYPES)},
    )
    try:
        with urllib.request.urlopen(request, context=_context(certs), timeout=10) as answer:  # noqa: S310
            return json.load(answer)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def wait_ready(port: int, certs: Certificates, timeout: float = 30.0) -> None:
    """Wait until the registry answers `/v2/` as a Distribution registry does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/v2/", context=_context(certs),  # noqa: S310
                                        timeout=5) as answer:
                if answer.headers.get("Docker-Distribution-Api-Version") == "registry/2.0":
                    return
        except (OSError, urllib.error.URLError) as error:
            last = error
        else:
            last = "no Docker-Distribution-Api-Version header"
        if time.monotonic() > deadline:
            raise SystemExit(f"the lab registry on 127.0.0.1:{port} does not answer: {last}")
        time.sleep(0.3)


def push(images: dict[str, str], port: int, certs: Certificates) -> list[str]:
    """Push each local image (local tag -> lab registry reference) the registry does not hold yet;
    return the references pushed."""
    pushed = []
    for local, ref in images.items():
        wanted = image_id(local)
        if not wanted:
            raise SystemExit(f"no local image {local} to push as {ref}")
        repository, tag = split_reference(ref)
        if holds_image(fetch_manifest(port, certs, repository, tag), wanted):
            continue
        via = f"127.0.0.1:{port}/{repository}:{tag}"
        log(f"pushing {local} as {ref}")
        docker("tag", local, via, capture=True)
        try:
            docker("push", via, capture=True, timeout=600)
        finally:
            docker("rmi", via, check=False, capture=True)  # the tag only: the image stays
        if not holds_image(fetch_manifest(port, certs, repository, tag), wanted):
            raise SystemExit(f"pushed {ref}, but the lab registry does not hold image {wanted} under it")
        pushed.append(ref)
    return pushed


def with_registry_entry(hosts_text: str, address: str) -> str:
    """/etc/hosts with one line for the lab registry's name, at ``address`` (older ones dropped)."""
    kept = [line for line in hosts_text.splitlines() if LAB_REGISTRY not in line.split("#", 1)[0].split()[1:]]
    return "\n".join([*kept, f"{address}\t{LAB_REGISTRY}"]) + "\n"
