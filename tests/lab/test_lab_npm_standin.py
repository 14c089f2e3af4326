"""The NGINX Proxy Manager stand-in serves its proxy hosts for real, as NPM does: a proxy host created
through its API answers on port 80 with its upstream's page, an unknown name gets the placeholder, a
host nginx rejects is not served, and a recreated container keeps its proxy hosts (its database is in
/data, NPM's data volume). Run inside a lab host's own engine, on a Docker network of its own."""

from __future__ import annotations

import json
import time

import pytest

from lab.data import LAB_IMAGES

NETWORK = "lab-probe-npm-net"
NPM = "lab-probe-npm"
UPSTREAM = "lab-probe-npm-upstream"  # the Ollama stand-in: "/" answers "Ollama is running"
DATA = "/tmp/lab-probe-npm-data"  # NPM's /data on the lab host, kept across the container's recreation
EMAIL, PASSWORD = "admin@lab.test", "lab-only-probe-password"  # noqa: S105 - LAB ONLY
PLACEHOLDER = "Congratulations! (lab stand-in for NPM)"

# NPM's API from inside its container: log in, then one request; prints the answer's JSON
API = r"""
import json, sys, time, urllib.request as u
email, password, method, path, body = json.loads(sys.argv[1])
for _ in range(100):
    try:
        r = u.urlopen(u.Request("http://localhost:81/api/tokens", method="POST",
            data=json.dumps({"identity": email, "secret": password}).encode(),
            headers={"Content-Type": "application/json"}))
        break
    except OSError:
        time.sleep(0.1)
token = json.load(r)["token"]
data = None if body is None else json.dumps(body).encode()
r = u.urlopen(u.Request("http://localhost:81/api" + path, method=method, data=data,
    headers={"Content-Type": "application/json", "Authorization": "Bearer " + token}))
print(r.read().decode())
"""


def _api(lab_ssh, host, method: str, path: str, body=None):
    arg = json.dumps([EMAIL, PASSWORD, method, path, body]).replace("'", "'\\''")
    out = lab_ssh(host, f"docker exec -i {NPM} python3 - '{arg}' <<'EOF'\n{API}EOF").stdout
    return json.loads(out)


def _get(lab_ssh, host, name: str, expect: str, within: float = 10.0) -> str:
    """Port 80 of the NPM container asked for ``name``; waits (nginx reloads) until ``expect`` shows."""
    deadline = time.monotonic() + within
    while True:
        out = lab_ssh(host, f"docker exec {NPM} curl -sS -m 5 -H 'Host: {name}' http://localhost/",
                      check=False).stdout
        if expect in out or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def _start_npm(lab_ssh, host, *env: str) -> None:
    flags = " ".join(f"-e {e}" for e in env)
    lab_ssh(host, f"docker run -d --name {NPM} --network {NETWORK} -v {DATA}:/data {flags} "
                  f"{LAB_IMAGES['nginx-proxy-manager']}")
    deadline = time.monotonic() + 20
    while lab_ssh(host, f"docker exec {NPM} curl -fsS http://localhost:81/api/", check=False).returncode:
        assert time.monotonic() < deadline, lab_ssh(host, f"docker logs {NPM}", check=False).stdout
        time.sleep(0.3)


@pytest.fixture
def npm(lab_hosts, lab_ssh):
    host = lab_hosts[0]
    clean = (f"docker rm -f {NPM} {UPSTREAM} >/dev/null 2>&1; "
             f"docker network rm {NETWORK} >/dev/null 2>&1; rm -rf {DATA}")
    lab_ssh(host, clean, check=False)
    upstream = LAB_IMAGES["ollama"]
    lab_ssh(host, f"docker network create {NETWORK} >/dev/null && "
                  f"docker run -d --name {UPSTREAM} --network {NETWORK} {upstream} >/dev/null")
    _start_npm(lab_ssh, host, f"INITIAL_ADMIN_EMAIL={EMAIL}", f"INITIAL_ADMIN_PASSWORD={PASSWORD}")
    try:
        yield host
    finally:
        lab_ssh(host, clean, check=False)


def _proxy_host(name: str) -> dict:
    return {"domain_names": [name], "forward_scheme": "http", "forward_host": UPSTREAM,
            "forward_port": 11434, "allow_websocket_upgrade": True}


def test_a_proxy_host_is_served_on_port_80_and_unknown_names_get_the_placeholder(npm, lab_ssh):
    assert _get(lab_ssh, npm, "models.lab.test", PLACEHOLDER, within=0) == PLACEHOLDER  # not yet a host
    created = _api(lab_ssh, npm, "POST", "/nginx/proxy-hosts", _proxy_host("models.lab.test"))
    assert _get(lab_ssh, npm, "models.lab.test", "Ollama is running") == "Ollama is running"
    assert _get(lab_ssh, npm, "elsewhere.lab.test", PLACEHOLDER, within=0) == PLACEHOLDER
    stored = _api(lab_ssh, npm, "GET", f"/nginx/proxy-hosts/{created['id']}")
    assert stored["meta"] == {"nginx_online": True, "nginx_err": None}
    conf = lab_ssh(npm, f"cat {DATA}/nginx/proxy_host/{created['id']}.conf").stdout
    assert "proxy_set_header Upgrade $http_upgrade;" in conf

    # deleted: no longer served
    _api(lab_ssh, npm, "DELETE", f"/nginx/proxy-hosts/{created['id']}")
    assert _get(lab_ssh, npm, "models.lab.test", PLACEHOLDER) == PLACEHOLDER


def test_a_host_nginx_rejects_is_not_served(npm, lab_ssh):
    lab_ssh(npm, f"""echo '{{"nginx_reject": ["broken.lab.test"]}}' > {DATA}/lab-npm-control.json""")
    rejected = _api(lab_ssh, npm, "POST", "/nginx/proxy-hosts", _proxy_host("broken.lab.test"))
    served = _api(lab_ssh, npm, "POST", "/nginx/proxy-hosts", _proxy_host("fine.lab.test"))
    assert _get(lab_ssh, npm, "fine.lab.test", "Ollama is running") == "Ollama is running"
    assert _get(lab_ssh, npm, "broken.lab.test", PLACEHOLDER, within=0) == PLACEHOLDER
    assert _api(lab_ssh, npm, "GET", f"/nginx/proxy-hosts/{rejected['id']}")["meta"]["nginx_online"] is False
    # nginx itself refusing the config (an unknown directive) is what the row says, in nginx's words
    broken = {"advanced_config": "bogus_directive on;"}
    bad = _api(lab_ssh, npm, "PUT", f"/nginx/proxy-hosts/{served['id']}", broken)
    meta = _api(lab_ssh, npm, "GET", f"/nginx/proxy-hosts/{bad['id']}")["meta"]
    assert meta["nginx_online"] is False and 'unknown directive "bogus_directive"' in meta["nginx_err"], meta
    assert _get(lab_ssh, npm, "fine.lab.test", PLACEHOLDER) == PLACEHOLDER


def test_a_recreated_npm_keeps_its_admin_and_proxy_hosts(npm, lab_ssh):
    created = _api(lab_ssh, npm, "POST", "/nginx/proxy-hosts", _proxy_host("kept.lab.test"))
    lab_ssh(npm, f"docker rm -f {NPM} >/dev/null")
    _start_npm(lab_ssh, npm)  # no INITIAL_ADMIN_*: the stored admin logs in
    listed = _api(lab_ssh, npm, "GET", "/nginx/proxy-hosts")
    assert [(h["id"], h["domain_names"]) for h in listed] == [(created["id"], ["kept.lab.test"])]
    assert _get(lab_ssh, npm, "kept.lab.test", "Ollama is running") == "Ollama is running"
    count = ("import sqlite3; print(sqlite3.connect('/data/database.sqlite')"
             ".execute('select count(*) from proxy_host').fetchone()[0])")
    tables = lab_ssh(npm, f'docker exec {NPM} python3 -c "{count}"')
    assert tables.stdout.strip() == "1"


def test_open_webui_standin_has_a_real_sqlite_database(lab_hosts, lab_ssh):
    host = lab_hosts[0]
    name = "lab-probe-webui-db"
    image = LAB_IMAGES["open-webui"]
    lab_ssh(host, f"docker rm -f {name} >/dev/null 2>&1; docker run -d --name {name} {image}")
    try:
        deadline = time.monotonic() + 20
        script = ("import sqlite3; c = sqlite3.connect('file:/app/backend/data/webui.db?mode=ro', uri=True); "
                  "print([r[1] for r in c.execute('pragma table_info(\\\"user\\\")')][:4])")
        while True:
            proc = lab_ssh(host, f"docker exec {name} python3 -c \"{script}\"", check=False)
            if proc.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert proc.stdout.strip() == "['id', 'name', 'email', 'role']", proc.stderr
    finally:
        lab_ssh(host, f"docker rm -f {name}", check=False)
