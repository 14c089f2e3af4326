"""deploys/proxy.py planned against a `@fake` host whose NGINX Proxy Manager and Pi-hole are the test
doubles (the SSH tunnels replaced by their addresses): a service taken out of the services loses its
proxy host (only one this deploy made) and its DNS record, each shown as its own planned change, and a
second run has nothing to do."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from harness import DEBIAN_12, SETTINGS, plan

from deploys.library import tunnel
from deploys.library.catalog import MANAGED_BY
from lab.doubles.npm_double import NpmDouble
from lab.doubles.npm_double import serve as serve_npm
from lab.doubles.pihole_double import PiholeDouble
from lab.doubles.pihole_double import serve as serve_pihole
from operations.clients.npm import NpmClient

PROXY = "deploys/proxy.py"
WITHOUT_COMFYUI = {"services": "nginx-proxy-manager,pihole,ollama,open-webui"}
COMFY = "comfy.home.example.com"
# with the monitoring set off (the default), Grafana's subdomain is kept absent too
GRAFANA = "grafana.home.example.com"
RETIRED_HOST = f"Proxy hosts | {COMFY}: retired: proxy host removed"
RETIRED_DNS = f"Local DNS | {COMFY}, {GRAFANA}: retired: DNS records removed"


def debian() -> dict:
    return {"ls -pdL *-release": DEBIAN_12, "uname -m": "x86_64"}


@dataclass
class Apis:
    npm: NpmDouble
    pihole: PiholeDouble
    npm_client: NpmClient


@pytest.fixture
def apis(monkeypatch) -> Iterator[Apis]:
    """The doubles, reached where the deploy would open its tunnels; NPM's admin already set up."""
    npm, pihole = NpmDouble("2.15.1"), PiholeDouble(SETTINGS["pihole_password"])
    with serve_npm(npm) as npm_served, serve_pihole(pihole) as pihole_served:
        monkeypatch.setattr(tunnel, "local_url", lambda host, address, port: npm_served.url)
        monkeypatch.setattr(tunnel, "container_url", lambda host, name, label, port: pihole_served.url)
        client = NpmClient(npm_served.url, SETTINGS["npm_admin_email"], SETTINGS["npm_admin_password"])
        client.ensure_admin()
        yield Apis(npm, pihole, client)


def comfy_host(apis: Apis, managed: bool) -> None:
    fields = {"domain_names": [COMFY], "forward_scheme": "http", "forward_host": "comfyui",
              "forward_port": 8188}
    if managed:
        fields["meta"] = {"managed_by": MANAGED_BY}
    apis.npm_client.create_proxy_host(fields)


def test_a_removed_service_loses_its_proxy_host_and_dns_record_then_nothing_is_left_to_do(apis) -> None:
    comfy_host(apis, managed=True)
    apis.pihole.hosts.extend(["100.101.102.103 chat.home.example.com", f"100.101.102.103 {COMFY}",
                              "192.168.1.20 nas.lan"])
    ops = plan(PROXY, debian(), WITHOUT_COMFYUI)
    assert ops[RETIRED_HOST] == ["FunctionCommand"]
    assert ops[RETIRED_DNS] == ["FunctionCommand"]
    assert not any(COMFY in name for name in ops if name not in (RETIRED_HOST, RETIRED_DNS))
    assert [h["domain_names"] for h in apis.npm_client.list_proxy_hosts()] == [[COMFY]]  # planning reads

    # what those commands do (the operation tests run them): the host and the record are gone
    apis.npm_client.delete_proxy_host(1)
    apis.pihole.hosts.remove(f"100.101.102.103 {COMFY}")
    ops = plan(PROXY, debian(), WITHOUT_COMFYUI)
    assert ops[RETIRED_HOST] == [] and ops[RETIRED_DNS] == []
    assert "192.168.1.20 nas.lan" in apis.pihole.hosts


def test_a_hand_made_proxy_host_on_a_retired_name_is_left_alone(apis, caplog) -> None:
    comfy_host(apis, managed=False)
    with caplog.at_level(logging.WARNING):
        ops = plan(PROXY, debian(), WITHOUT_COMFYUI)
    assert ops[RETIRED_HOST] == []
    # one line, no failure (the harness reads each operation's commands again after pyinfra planned it)
    said = {r.getMessage() for r in caplog.records if COMFY in r.getMessage()}
    assert len(said) == 1, said
    (line,) = said
    assert line.startswith(f"[@fake/server] proxy host {COMFY} left alone:") and "never removed" in line
    assert [h["domain_names"] for h in apis.npm_client.list_proxy_hosts()] == [[COMFY]]


def test_with_every_service_running_nothing_is_retired(apis) -> None:
    ops = plan(PROXY, debian())
    assert [name for name in ops if "retired" in name] == [
        f"Proxy hosts | {GRAFANA}: retired: proxy host removed",
        f"Local DNS | {GRAFANA}: retired: DNS record removed",
    ]
    assert all(ops[name] == [] for name in ops if "retired" in name)  # neither exists: nothing to do
    assert any(name.startswith(f"Proxy hosts | {COMFY} -> comfyui:8188") for name in ops)
