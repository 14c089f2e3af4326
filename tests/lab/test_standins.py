"""The stand-in service images, pulled by a lab host's own engine from the lab registry, pass the
health checks that the deploy's service catalog declares for the real images (these exact commands)."""

from __future__ import annotations

import time

import pytest

from lab.data import LAB_IMAGES

HEALTHCHECKS = {
    "nginx-proxy-manager": "curl -fsS http://localhost:81/api/",
    "pihole": "dig +short +norecurse +retry=0 @127.0.0.1 pi.hole",
    "ollama": "ollama list",
    "comfyui": "curl -fsS http://localhost:8188/system_stats",
    "open-webui": "curl -fsS http://localhost:8080/health",
}


@pytest.mark.parametrize("role", sorted(HEALTHCHECKS))
def test_standin_passes_the_catalog_healthcheck(role, lab_hosts, lab_ssh):
    host = lab_hosts[0]
    name = f"lab-probe-{role}"
    lab_ssh(host, f"docker rm -f {name} >/dev/null 2>&1; docker run -d --name {name} {LAB_IMAGES[role]}")
    try:
        deadline = time.monotonic() + 20
        while True:
            proc = lab_ssh(host, f"docker exec {name} {HEALTHCHECKS[role]}", check=False)
            if proc.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert proc.returncode == 0, proc.stderr
        logs = lab_ssh(host, f"docker logs {name}").stdout
        assert "LAB STAND-IN" in logs
    finally:
        lab_ssh(host, f"docker rm -f {name}", check=False)


def test_pihole_standin_answers_records_set_through_its_api(lab_hosts, lab_ssh):
    host = lab_hosts[0]
    name = "lab-probe-pihole-api"
    lab_ssh(host, f"docker rm -f {name} >/dev/null 2>&1; docker run -d --name {name} "
                  f"-e FTLCONF_webserver_api_password=lab {LAB_IMAGES['pihole']}")
    script = (
        "import json, time, urllib.request as u\n"
        "for _ in range(50):\n"
        "    try:\n"
        "        r = u.urlopen(u.Request('http://localhost/api/auth', data=b'{\"password\": \"lab\"}',"
        " method='POST'))\n"
        "        break\n"
        "    except OSError:\n"
        "        time.sleep(0.2)\n"
        "sid = json.load(r)['session']['sid']\n"
        "u.urlopen(u.Request('http://localhost/api/config/dns/hosts/100.64.0.9%20chat.lab.home.arpa',"
        " method='PUT', headers={'X-FTL-SID': sid}))\n"
    )
    try:
        lab_ssh(host, f"docker exec -i {name} python3 - <<'EOF'\n{script}EOF")
        out = lab_ssh(host, f"docker exec {name} dig +short @127.0.0.1 chat.lab.home.arpa").stdout
        assert out.strip() == "100.64.0.9"
        nx = lab_ssh(host, f"docker exec {name} dig @127.0.0.1 nothing.lab.home.arpa").stdout
        assert "NXDOMAIN" in nx
    finally:
        lab_ssh(host, f"docker rm -f {name}", check=False)
