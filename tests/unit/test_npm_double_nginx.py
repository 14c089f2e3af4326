"""The NPM stand-in's nginx configs follow the API double's proxy hosts as NPM's do: one config per
served host, `.err` for a host nginx (or a failure switch) rejects, none for a deleted or disabled host.
nginx itself is replaced by a small fake here (`nginx -t` fails on an unknown directive); the lab test
tests/lab/test_lab_npm_standin.py runs the real one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

from lab.doubles.npm_double import NpmDouble, serve
from lab.doubles.npm_nginx import PLACEHOLDER, NpmNginx, main_config, proxy_host_config, resolvers

EMAIL, PASSWORD = "owner@example.com", "Nginx-pass-123"  # noqa: S105 - test value
HOST = {"domain_names": ["chat.example.test", "www.chat.example.test"], "forward_scheme": "http",
        "forward_host": "open-webui", "forward_port": 8080}

FAKE_NGINX = r'''
import pathlib, sys
args = sys.argv[1:]
if "-t" in args:
    main = pathlib.Path(args[args.index("-c") + 1])
    folder = pathlib.Path(main.read_text().split("include ")[1].split("/*.conf")[0])
    for conf in sorted(folder.glob("*.conf")):
        if "bogus_directive" in conf.read_text():
            print(f'nginx: [emerg] unknown directive "bogus_directive" in {conf}:8', file=sys.stderr)
            print(f"nginx: configuration file {main} test failed", file=sys.stderr)
            sys.exit(1)
'''


@pytest.fixture
def nginx(tmp_path: Path) -> NpmNginx:
    fake = tmp_path / "fake-nginx.py"
    fake.write_text(FAKE_NGINX)
    command = [sys.executable, str(fake)]
    configs = NpmNginx(tmp_path / "data/nginx/proxy_host", tmp_path / "nginx.conf", command)
    configs.write_main(["127.0.0.11"])
    return configs


def _served(nginx: NpmNginx):
    double = NpmDouble("2.15.1", initial_admin=(EMAIL, PASSWORD))
    double.nginx = nginx
    served = serve(double).start()
    session = requests.Session()
    token = session.post(served.url + "/api/tokens", json={"identity": EMAIL, "secret": PASSWORD}, timeout=5)
    session.headers["Authorization"] = f"Bearer {token.json()['token']}"
    return double, served, session


def test_main_config_has_the_placeholder_server_the_resolver_and_the_hosts() -> None:
    text = main_config(Path("/data/nginx/proxy_host"), ["127.0.0.11", "[fd00::1]"])
    assert "listen 80 default_server;" in text
    assert f'return 200 "{PLACEHOLDER}";' in text
    assert "resolver 127.0.0.11 [fd00::1] valid=10s" in text
    assert "include /data/nginx/proxy_host/*.conf;" in text


def test_resolvers_come_from_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("search lab\nnameserver 127.0.0.11\nnameserver fd00::53\noptions ndots:0\n")
    assert resolvers(conf) == ["127.0.0.11", "[fd00::53]"]
    assert resolvers(tmp_path / "none") == []


def test_a_proxy_host_config_names_its_domains_and_upstream() -> None:
    text = proxy_host_config({"id": 3, **HOST, "allow_websocket_upgrade": False, "advanced_config": ""})
    assert "server_name chat.example.test www.chat.example.test;" in text
    assert 'set $server "open-webui";' in text and "set $port 8080;" in text
    assert "proxy_pass $forward_scheme://$server:$port$request_uri;" in text
    assert "Upgrade" not in text
    upgraded = proxy_host_config({"id": 3, **HOST, "allow_websocket_upgrade": True})
    assert "proxy_set_header Upgrade $http_upgrade;" in upgraded
    assert "proxy_set_header Connection $http_connection;" in upgraded


def test_configs_follow_the_proxy_hosts_through_the_api(nginx: NpmNginx) -> None:
    double, served, session = _served(nginx)
    folder = nginx.proxy_dir
    try:
        created = session.post(served.url + "/api/nginx/proxy-hosts", json=HOST, timeout=5).json()
        conf = folder / f"{created['id']}.conf"
        assert "server_name chat.example.test www.chat.example.test;" in conf.read_text()
        assert double.proxy_hosts[created["id"]]["meta"] == {"nginx_online": True, "nginx_err": None}

        url = served.url + f"/api/nginx/proxy-hosts/{created['id']}"
        session.put(url, json={"forward_port": 3000, "allow_websocket_upgrade": True}, timeout=5)
        assert "set $port 3000;" in conf.read_text() and "Upgrade" in conf.read_text()

        session.post(url + "/disable", timeout=5)
        assert not conf.exists()
        session.post(url + "/enable", timeout=5)
        assert conf.exists()
        session.delete(url, timeout=5)
        assert sorted(folder.iterdir()) == []
    finally:
        served.stop()


def test_a_config_nginx_rejects_is_kept_as_err_and_not_served(nginx: NpmNginx) -> None:
    double, served, session = _served(nginx)
    try:
        bad = {**HOST, "advanced_config": "bogus_directive on;"}
        created = session.post(served.url + "/api/nginx/proxy-hosts", json=bad, timeout=5).json()
        meta = double.proxy_hosts[created["id"]]["meta"]
        assert meta["nginx_online"] is False
        assert 'unknown directive "bogus_directive"' in meta["nginx_err"]
        assert [p.name for p in nginx.proxy_dir.iterdir()] == [f"{created['id']}.conf.err"]
    finally:
        served.stop()


def test_a_host_the_switch_rejects_is_not_served(nginx: NpmNginx) -> None:
    double, served, session = _served(nginx)
    double.nginx_reject = {"chat.example.test": 'unknown directive "x"'}
    try:
        created = session.post(served.url + "/api/nginx/proxy-hosts", json=HOST, timeout=5).json()
        other = session.post(served.url + "/api/nginx/proxy-hosts",
                             json={**HOST, "domain_names": ["other.example.test"]}, timeout=5).json()
        assert double.proxy_hosts[created["id"]]["meta"]["nginx_online"] is False
        assert double.proxy_hosts[other["id"]]["meta"]["nginx_online"] is True
        names = sorted(p.name for p in nginx.proxy_dir.iterdir())
        assert names == [f"{created['id']}.conf.err", f"{other['id']}.conf"]
    finally:
        served.stop()


def test_a_restart_writes_every_stored_host_again(nginx: NpmNginx) -> None:
    double, served, session = _served(nginx)
    try:
        created = session.post(served.url + "/api/nginx/proxy-hosts", json=HOST, timeout=5).json()
    finally:
        served.stop()
    (nginx.proxy_dir / "99.conf").write_text("# a host no longer stored\n")
    (nginx.proxy_dir / f"{created['id']}.conf").unlink()
    double.configure_all()
    assert sorted(p.name for p in nginx.proxy_dir.iterdir()) == [f"{created['id']}.conf"]


def test_a_host_with_a_certificate_is_served_on_443_with_certbots_files_http2_redirect_and_hsts() -> None:
    host = {**HOST, "id": 3, "certificate_id": 7, "ssl_forced": True, "http2_support": True,
            "hsts_enabled": True, "hsts_subdomains": False}
    text = proxy_host_config(host, letsencrypt=Path("/etc/letsencrypt"))
    assert "    listen 80;" in text
    assert "    listen 443 ssl http2;" in text
    assert "    ssl_certificate /etc/letsencrypt/live/npm-7/fullchain.pem;" in text
    assert "    ssl_certificate_key /etc/letsencrypt/live/npm-7/privkey.pem;" in text
    assert 'add_header Strict-Transport-Security "max-age=63072000; preload" always;' in text
    assert "return 301 https://$host$request_uri;" in text


def test_ssl_flags_follow_the_row_and_hsts_needs_force_ssl_as_in_npms_template() -> None:
    base = {**HOST, "id": 3, "certificate_id": 7}
    plain = proxy_host_config({**base, "ssl_forced": False, "http2_support": False, "hsts_enabled": True})
    assert "    listen 443 ssl;" in plain
    assert "return 301" not in plain and "Strict-Transport-Security" not in plain
    subdomains = proxy_host_config({**base, "ssl_forced": 1, "hsts_enabled": 1, "hsts_subdomains": 1})
    assert '"max-age=63072000; includeSubDomains; preload"' in subdomains


def test_a_host_without_a_certificate_is_plain_http_and_443_refuses_unknown_names() -> None:
    text = proxy_host_config({**HOST, "id": 3, "certificate_id": 0, "ssl_forced": True})
    assert "443" not in text and "ssl_" not in text and "return 301" not in text
    main = main_config(Path("/data/nginx/proxy_host"), [])
    assert "listen 443 ssl default_server;" in main
    assert "ssl_reject_handshake on;" in main
