"""The lab registry's pure parts (lab/registry.py, lab/data.py): its certificates, the references it
holds, the push check by image ID and the /etc/hosts entry. The registry itself runs in the lab tests
(tests/lab/test_lab_registry.py)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import threading

import pytest

from deploys.library.catalog import CATALOG
from lab import registry
from lab.data import LAB_DATA, LAB_IMAGES, LAB_REGISTRY, OLLAMA_LAB_V2, OLLAMA_LAB_V3_UNHEALTHY
from lab.images import IMAGES_DIR, MONITORING_IMAGES, MONITORING_ROLES, REGISTRY_PUSHES, STANDIN_IMAGES

needs_openssl = pytest.mark.skipif(not shutil.which("openssl"), reason="no openssl CLI")


@pytest.fixture(scope="module")
def issued(tmp_path_factory):
    folder = tmp_path_factory.mktemp("registry")
    return folder, registry.ensure_certificates(folder)


def _verifies(certs: registry.Certificates) -> bool:
    return subprocess.run(["openssl", "verify", "-CAfile", str(certs.ca_cert), str(certs.server_cert)],
                          capture_output=True).returncode == 0


@needs_openssl
def test_the_ca_signs_a_server_certificate_for_the_registry_name_and_loopback(issued):
    folder, certs = issued
    assert _verifies(certs)
    names = registry.subject_alt_names(certs.server_cert)
    assert sorted(names) == sorted([f"DNS:{LAB_REGISTRY}", "IP:127.0.0.1"])
    assert certs.ca_key.stat().st_mode & 0o777 == 0o600
    assert certs.server_key.stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700


@needs_openssl
def test_a_second_call_keeps_everything(issued):
    folder, certs = issued
    before = {p: p.read_bytes() for p in folder.iterdir()}
    assert registry.ensure_certificates(folder) == certs
    assert {p: p.read_bytes() for p in folder.iterdir()} == before


@needs_openssl
def test_a_missing_server_certificate_is_issued_again_by_the_same_ca(tmp_path):
    certs = registry.ensure_certificates(tmp_path)
    ca, old = certs.ca_cert.read_bytes(), certs.server_cert.read_bytes()
    certs.server_cert.unlink()
    registry.ensure_certificates(tmp_path)
    assert certs.ca_cert.read_bytes() == ca
    assert certs.server_cert.read_bytes() != old
    assert _verifies(certs)


@needs_openssl
def test_a_new_ca_issues_a_new_server_certificate(tmp_path):
    certs = registry.ensure_certificates(tmp_path)
    old = certs.server_cert.read_bytes()
    certs.ca_key.unlink()  # e.g. a half-deleted state folder: the CA is made again, and the server's with it
    registry.ensure_certificates(tmp_path)
    assert certs.server_cert.read_bytes() != old
    assert _verifies(certs)


@needs_openssl
def test_a_client_checking_against_the_ca_accepts_the_registry_by_name_only(issued):
    """TLS handshakes as a pulling engine makes them: the chain up to the lab CA, and the name checked."""
    _, certs = issued
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(certs.server_cert), str(certs.server_key))
    client_ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve(connections: int) -> None:
            for _ in range(connections):
                conn, _ = listener.accept()
                try:
                    with server_ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)
                except (ssl.SSLError, OSError):
                    pass

        thread = threading.Thread(target=serve, args=(2,), daemon=True)
        thread.start()
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                client_ctx.wrap_socket(raw, server_hostname=LAB_REGISTRY) as tls:
            assert tls.getpeercert()["subject"] == ((("commonName", LAB_REGISTRY),),)
            tls.send(b"x")
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            client_ctx.wrap_socket(raw, server_hostname="elsewhere.lab.test")
        thread.join(5)


# the monitoring stack's real images (the monitoring contract), whose stand-ins the lab builds
MONITORING_REAL_IMAGES = {
    "prometheus": "prom/prometheus:v2.55.1",
    "alertmanager": "prom/alertmanager:v0.28.1",
    "blackbox-exporter": "prom/blackbox-exporter:v0.27.0",
    "grafana": "grafana/grafana:12.2.1",
    "node-exporter": "prom/node-exporter:v1.9.1",
    "cadvisor": "gcr.io/cadvisor/cadvisor:v0.52.1",
    "dcgm-exporter": "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04",
}


def _without_registry_host(image: str) -> str:
    """`ghcr.io/open-webui/open-webui:v1` -> `open-webui/open-webui:v1`; Docker Hub's names stay."""
    first, _, rest = image.partition("/")
    return rest if rest and ("." in first or ":" in first) else image


def test_the_lab_images_sit_under_the_real_defaults_paths_and_tags():
    # one stand-in per service, named as the catalog names it
    assert set(LAB_IMAGES) == set(CATALOG) | set(MONITORING_REAL_IMAGES)
    for service, spec in CATALOG.items():
        assert LAB_IMAGES[service] == f"{LAB_REGISTRY}/{_without_registry_host(spec.image)}"
        assert LAB_DATA[spec.image_setting] == LAB_IMAGES[service]
    for service, image in MONITORING_REAL_IMAGES.items():
        assert LAB_IMAGES[service] == f"{LAB_REGISTRY}/{_without_registry_host(image)}"
        assert registry.split_reference(LAB_IMAGES[service])[1] == image.rpartition(":")[2]
    assert "pull_policy" not in LAB_DATA


def test_every_stand_in_and_the_comfyui_versions_are_pushed():
    assert set(REGISTRY_PUSHES.values()) == {*LAB_IMAGES.values(), OLLAMA_LAB_V2, OLLAMA_LAB_V3_UNHEALTHY}
    built = {**STANDIN_IMAGES, **MONITORING_IMAGES}  # service -> the stand-in's build tag
    assert set(built) == set(LAB_IMAGES)
    assert {role: REGISTRY_PUSHES[tag] for role, tag in built.items()} == LAB_IMAGES


def test_every_monitoring_stand_in_has_its_target_and_program():
    roles = (IMAGES_DIR / "monitoring" / "Dockerfile.roles").read_text()
    stages = dict(re.findall(r"^FROM \S+ AS (\S+)\n(.*?)(?=^FROM |\Z)", roles, re.M | re.S))
    assert set(stages) == set(MONITORING_ROLES) == set(MONITORING_REAL_IMAGES)
    for role, body in stages.items():
        [entrypoint] = re.findall(r"^ENTRYPOINT (.*)$", body, re.M)
        program = json.loads(entrypoint)
        if role in ("grafana", "cadvisor", "dcgm-exporter"):
            assert program == ["python3", "-m", "lab.monitoring_standin", role]
        else:  # Debian's program, given compose's `command:` flags as the real image's is
            assert program[0].startswith("/usr/bin/prometheus") and len(program) == 1
    assert registry.split_reference(OLLAMA_LAB_V3_UNHEALTHY) == ("ollama/ollama", "lab-v3-unhealthy")


def test_split_reference():
    assert registry.split_reference(f"{LAB_REGISTRY}/open-webui/open-webui:v0.6.34") == \
        ("open-webui/open-webui", "v0.6.34")
    for bad in ("docker.io/library/debian:bookworm", f"{LAB_REGISTRY}/pihole/pihole", LAB_REGISTRY):
        with pytest.raises(ValueError):
            registry.split_reference(bad)


IMAGE_ID = "sha256:" + "a" * 64


@pytest.mark.parametrize(("manifest", "held"), [
    ({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": IMAGE_ID}}, True),
    ({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "config": {"digest": IMAGE_ID}}, True),
    ({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "config": {"digest": "sha256:" + "b" * 64}}, False),  # the tag holds another image: push
    ({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}, False),
    (None, False),  # no such tag
])
def test_the_push_check_compares_the_config_digest_with_the_image_id(manifest, held):
    assert registry.holds_image(manifest, IMAGE_ID) is held


def test_the_hosts_entry_is_one_line_at_the_current_address():
    docker_hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n172.17.0.3\thomelab-lab-1\n"
    first = registry.with_registry_entry(docker_hosts, "172.17.0.2")
    assert first == docker_hosts + f"172.17.0.2\t{LAB_REGISTRY}\n"
    moved = registry.with_registry_entry(first, "172.17.0.9")
    assert moved == docker_hosts + f"172.17.0.9\t{LAB_REGISTRY}\n"
    assert registry.with_registry_entry(moved, "172.17.0.9") == moved
    # a name that only contains the registry's is someone else's line
    other = f"10.0.0.1\tmy-{LAB_REGISTRY}\n"
    assert registry.with_registry_entry(other, "172.17.0.2").startswith(other)
