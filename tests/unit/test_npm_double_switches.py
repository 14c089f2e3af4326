"""The served NPM double's failure switches: environment at start, control file while it runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests

from lab.doubles.npm_double import NGINX_EMERG, NpmDouble, parse_switches, serve, with_switches

EMAIL, PASSWORD = "owner@example.com", "Switch-pass-123"  # noqa: S105 - test value
HOST = {
    "domain_names": ["chat.example.test"],
    "forward_scheme": "http",
    "forward_host": "a",
    "forward_port": 1,
}


def _session(url: str) -> requests.Session:
    session = requests.Session()
    token = session.post(url + "/api/tokens", json={"identity": EMAIL, "secret": PASSWORD}, timeout=5)
    session.headers["Authorization"] = f"Bearer {token.json()['token']}"
    return session


def _double() -> NpmDouble:
    return NpmDouble("2.15.1", initial_admin=(EMAIL, PASSWORD))


def test_parse_switches_accepts_names_or_messages_and_refuses_the_rest() -> None:
    assert parse_switches({}) == (True, {})
    assert parse_switches({"letsencrypt": "fail", "nginx_reject": ["Chat.Example.Test"]}) == (
        False,
        {"chat.example.test": NGINX_EMERG},
    )
    assert parse_switches({"nginx_reject": {"a.test": 'unknown directive "x"'}})[1] == {
        "a.test": 'unknown directive "x"'
    }
    for bad in ({"letsencrypt": "maybe"}, {"nginx": []}, {"nginx_reject": "a.test"}, []):
        with pytest.raises(ValueError):
            parse_switches(bad)


def test_environment_switches_apply_from_the_start() -> None:
    double = with_switches(
        _double(), {"LAB_NPM_LETSENCRYPT": "fail", "LAB_NPM_NGINX_REJECT": "chat.example.test"}, None
    )
    with serve(double) as served:
        session = _session(served.url)
        created = session.post(served.url + "/api/nginx/proxy-hosts", json=HOST, timeout=5).json()
        stored = session.get(served.url + f"/api/nginx/proxy-hosts/{created['id']}", timeout=5).json()
        assert stored["meta"]["nginx_online"] is False
        assert stored["meta"]["nginx_err"] == (
            f"nginx: [emerg] {NGINX_EMERG}\nnginx: configuration file /etc/nginx/nginx.conf test failed\n"
        )
        failed = session.put(
            served.url + f"/api/nginx/proxy-hosts/{created['id']}", json={"certificate_id": "new"}, timeout=5
        )
        assert (failed.status_code, failed.json()) == (
            500,
            {"error": {"code": 500, "message": "Internal Error"}},
        )


def test_control_file_flips_the_switches_while_served(tmp_path: Path) -> None:
    control = tmp_path / "lab-npm-control.json"
    double = with_switches(_double(), {}, str(control))
    with serve(double) as served:
        session = _session(served.url)
        other = session.post(
            served.url + "/api/nginx/proxy-hosts",
            json={**HOST, "domain_names": ["other.example.test"]},
            timeout=5,
        ).json()
        control.write_text(json.dumps({"nginx_reject": ["chat.example.test"], "letsencrypt": "fail"}))
        created = session.post(served.url + "/api/nginx/proxy-hosts", json=HOST, timeout=5).json()
        url = served.url + f"/api/nginx/proxy-hosts/{created['id']}"
        assert session.get(url, timeout=5).json()["meta"]["nginx_online"] is False
        # only the named host is rejected
        session.put(served.url + f"/api/nginx/proxy-hosts/{other['id']}", json={"forward_port": 2}, timeout=5)
        assert session.get(served.url + f"/api/nginx/proxy-hosts/{other['id']}", timeout=5).json()["meta"][
            "nginx_online"
        ]
        assert session.put(url, json={"certificate_id": "new"}, timeout=5).status_code == 500

        control.unlink()  # back to the start's switches; the stored outcome stays until the next write
        assert session.get(url, timeout=5).json()["meta"]["nginx_online"] is False
        session.put(url, json={"forward_port": 3}, timeout=5)
        assert session.get(url, timeout=5).json()["meta"]["nginx_online"] is True
        assert session.put(url, json={"certificate_id": "new"}, timeout=5).status_code == 200


def test_a_control_file_that_does_not_parse_keeps_the_last_switches(tmp_path: Path, capsys) -> None:
    control = tmp_path / "control.json"
    control.write_text(json.dumps({"letsencrypt": "fail"}))
    double = with_switches(_double(), {}, str(control))
    with serve(double) as served:
        requests.get(served.url + "/api/", timeout=5)
        assert double.letsencrypt_ok is False
        control.write_text("{not json")
        os.utime(control, ns=(1, 1))  # a new stamp even within the file system's time resolution
        requests.get(served.url + "/api/", timeout=5)
        assert double.letsencrypt_ok is False
    assert "ignoring" in capsys.readouterr().err
