"""The lab registry (lab/world.py, lab/registry.py): the real Distribution registry, holding the stand-in
images under the real images' paths and tags, and a lab host's own engine pulling from it by name over
TLS checked against the lab CA. (That every deployed service's image came from it: test_server.py.)"""

from __future__ import annotations

import json
import time

import pytest

from lab.data import LAB_IMAGES, LAB_REGISTRY, OLLAMA_LAB_V2, OLLAMA_LAB_V3_UNHEALTHY

CA = f"/etc/docker/certs.d/{LAB_REGISTRY}/ca.crt"


def _get(lab_ssh, host, path: str, *curl: str) -> str:
    """GET https://registry.world.lab.test/PATH from a lab host: the name from its /etc/hosts, the
    certificate checked against the CA its engine trusts (curl fails on any TLS problem)."""
    return lab_ssh(host, f"curl -sS --fail {' '.join(curl)} --cacert {CA} https://{LAB_REGISTRY}{path}").stdout


def test_it_is_the_distribution_registry(lab_hosts, lab_ssh):
    headers = _get(lab_ssh, lab_hosts[0], "/v2/", "-o /dev/null", "-D -").lower().splitlines()
    assert "docker-distribution-api-version: registry/2.0" in headers, headers


def test_it_holds_the_stand_ins_under_the_real_paths_and_tags(lab_hosts, lab_ssh):
    host = lab_hosts[0]
    catalog = json.loads(_get(lab_ssh, host, "/v2/_catalog"))
    wanted = {ref.removeprefix(f"{LAB_REGISTRY}/").rpartition(":")[0] for ref in LAB_IMAGES.values()}
    assert wanted <= set(catalog["repositories"]), catalog
    assert wanted == {"jc21/nginx-proxy-manager", "pihole/pihole", "ollama/ollama", "yanwk/comfyui-boot",
                      "open-webui/open-webui",
                      # the monitoring set's (gcr.io's and nvcr.io's paths without the registry host)
                      "prom/prometheus", "prom/alertmanager", "prom/blackbox-exporter", "grafana/grafana",
                      "prom/node-exporter", "cadvisor/cadvisor", "nvidia/k8s/dcgm-exporter"}
    tags = json.loads(_get(lab_ssh, host, "/v2/ollama/ollama/tags/list"))
    assert {"0.12.6", "lab-v2", "lab-v3-unhealthy"} <= set(tags["tags"])


def _pull(lab_ssh, host, ref: str, check: bool = True):
    lab_ssh(host, f"docker rmi {ref} >/dev/null 2>&1", check=False)
    return lab_ssh(host, f"docker pull -q {ref}", check=check)


def _repo_digest(lab_ssh, host, ref: str) -> str:
    digests = json.loads(lab_ssh(host, f"docker image inspect -f '{{{{json .RepoDigests}}}}' {ref}").stdout)
    (digest,) = [d for d in digests if d.startswith(ref.rpartition(":")[0] + "@")]
    return digest


def test_a_host_engine_pulls_by_name_over_verified_tls(lab_hosts, lab_ssh):
    host = lab_hosts[-1]
    assert _pull(lab_ssh, host, OLLAMA_LAB_V2).stdout.strip() == OLLAMA_LAB_V2
    v2 = _repo_digest(lab_ssh, host, OLLAMA_LAB_V2)
    assert v2.startswith(f"{LAB_REGISTRY}/ollama/ollama@sha256:")
    _pull(lab_ssh, host, LAB_IMAGES["ollama"])
    assert _repo_digest(lab_ssh, host, LAB_IMAGES["ollama"]) != v2  # another version, another digest
    # without the lab CA the same pull fails: the engine checks the registry's certificate
    lab_ssh(host, f"mv {CA} {CA}.away")
    try:
        refused = _pull(lab_ssh, host, OLLAMA_LAB_V2, check=False)
    finally:
        lab_ssh(host, f"mv {CA}.away {CA}")
    assert refused.returncode != 0
    assert "x509" in refused.stderr or "certificate" in refused.stderr, refused.stderr
    _pull(lab_ssh, host, OLLAMA_LAB_V2)


@pytest.mark.parametrize(("ref", "healthy"), [(OLLAMA_LAB_V2, True), (OLLAMA_LAB_V3_UNHEALTHY, False)])
def test_the_ollama_update_versions_answer_the_health_check_as_named(ref, healthy, lab_hosts, lab_ssh):
    host = lab_hosts[-1]
    name = "lab-probe-ollama-version"
    lab_ssh(host, f"docker rm -f {name} >/dev/null 2>&1; docker run -d --name {name} {ref}")
    try:
        deadline = time.monotonic() + 20
        while True:  # the catalog's health check for Ollama, once its server answers
            proc = lab_ssh(host, f"docker exec {name} ollama list", check=False)
            if "could not connect" not in proc.stderr or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert (proc.returncode == 0) is healthy, proc.stderr
        if not healthy:
            assert "LAB_STANDIN_HEALTH=fail" in proc.stderr
    finally:
        lab_ssh(host, f"docker rm -f {name}", check=False)
