"""A sixth service is one declaration: the toy (tests/toy_service.py, a test-only catalog entry,
through the inventory tests/lab/inventories/toy.py) is deployed, proxied, resolved and verified on a
lab host by the same code as the five, and a second run changes nothing."""

from __future__ import annotations

import json

import pytest
from labkit import npm_api, run_pyinfra_cli, ssh, verify

from lab.data import LAB_DATA

SERVER = "deploys/server.py"
TOY_INVENTORY = "tests/lab/inventories/toy.py"
DOMAIN = LAB_DATA["domain"]


@pytest.fixture(scope="module")
def toy_host(lab_hosts):
    host = lab_hosts[0]
    first = run_pyinfra_cli(SERVER, limit=host["name"], inventory=TOY_INVENTORY, timeout=1500)
    second = run_pyinfra_cli(SERVER, limit=host["name"], inventory=TOY_INVENTORY)
    yield host, first, second
    # the toy is not in the real catalog: nothing else takes it down
    ssh(host, "docker compose --project-directory /opt/homelab/toy down; rm -rf /opt/homelab/toy",
        check=False)


def test_the_toy_is_deployed_and_healthy_and_a_second_run_changes_nothing(toy_host):
    host, first, second = toy_host
    assert "Compose services | toy: compose project" in first.changed_operations()
    state = ssh(host, "docker inspect -f '{{.State.Status}} {{.State.Health.Status}}' toy").stdout.split()
    assert state == ["running", "healthy"]
    assert ssh(host, "stat -c %U:%G /cold-storage/ai/toy/data").stdout.strip() == "root:root"
    assert second.changed == 0, second.changed_operations()


def test_the_toy_is_proxied_and_resolved(toy_host):
    host, _, _ = toy_host
    address = host["tailscale_ip"]
    hosts = {h["domain_names"][0]: h for h in json.loads(npm_api(host, "list"))}
    toy = hosts[f"toy.{DOMAIN}"]
    assert (toy["forward_host"], toy["forward_port"]) == ("toy", 8080)
    answer = ssh(host, f"docker exec pihole dig +short @{address} toy.{DOMAIN}").stdout.split()
    assert answer == [address]
    # through the proxy's port 80, by name, as a browser on the tailnet would
    through = ssh(host, f"curl -fsS --max-time 5 -H 'Host: toy.{DOMAIN}' http://{address}/health")
    assert json.loads(through.stdout) == {"status": True}


def test_tier_3_verifies_the_toy(toy_host, tmp_path):
    """Tier 3 takes the toy from the plan: all pass with it running, and with it stopped exactly the
    test of the plan's services fails (the five's own tests do not know it)."""
    host, _, _ = toy_host
    code, failed, _, output = verify(host["name"], tmp_path, inventory=TOY_INVENTORY)
    assert code == 0 and not failed, output
    ssh(host, "docker stop toy")
    code, failed, _, output = verify(host["name"], tmp_path, inventory=TOY_INVENTORY)
    assert code != 0
    failed_tests = {name.split("[")[0] for name in failed}
    assert failed_tests == {"test_every_other_service_placed_here_runs_healthy"}, output
