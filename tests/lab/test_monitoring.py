"""Monitoring end to end (HOMELAB_MONITORING, `LAB_MONITORING=on`): two lab hosts, no groups, so the
first is the monitoring host and both run the exporters.

Prometheus, Alertmanager and the node and blackbox exporters are Debian's real programs in the lab's
stand-in images; Grafana and cAdvisor are stand-ins (lab/monitoring_standin.py). Alertmanager posts to a
webhook receiver this test runs on this machine's tailnet address, as a phone's ntfy would be reached.

The deploy with monitoring on brings every target up (a bounded wait), a second run changes nothing,
tier 3 passes; a service container stopped on the second host is an alert the receiver gets, and its
start again the alert's resolution. Then monitoring goes off again: its containers are taken down on both
hosts, their data kept, Grafana's proxy host and DNS record removed, and a second run changes nothing.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from labkit import ROOT, run_pyinfra_cli, ssh, verify

from lab.data import LAB_DATA

SERVER = "deploys/server.py"
MONITORING = ("prometheus", "alertmanager", "blackbox-exporter", "grafana", "node-exporter", "cadvisor")
EXPORTERS = ("node-exporter", "cadvisor")
STOPPED = "comfyui"  # stopped on the second host: nothing else depends on it there
GRAFANA = f"grafana.{LAB_DATA['domain']}"


class Receiver:
    """A webhook receiver: every POSTed Alertmanager notification, in order."""

    def __init__(self, address: str):
        self.notifications: list[dict] = []
        received = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.url = f"http://{address}:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, status: str, name: str, **labels: str) -> list[dict]:
        return [alert for note in self.notifications for alert in note.get("alerts", [])
                if alert.get("status") == status and alert["labels"].get("alertname") == name
                and all(alert["labels"].get(k) == v for k, v in labels.items())]

    def wait_for(self, status: str, name: str, timeout: float, **labels: str) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.alerts(status, name, **labels)
            if found:
                return found[-1]
            time.sleep(2)
        seen = [(a["status"], a["labels"]) for n in self.notifications for a in n.get("alerts", [])]
        pytest.fail(f"no {status} {name} {labels} within {timeout:.0f} s; received: {seen}")


def _prometheus(host, path: str) -> dict:
    return json.loads(ssh(host, f"docker exec prometheus wget -qO- 'http://localhost:9090/api/v1/{path}'").stdout)


def _containers(host) -> set[str]:
    return set(ssh(host, "docker ps --format '{{.Names}}'").stdout.split())


@pytest.fixture(scope="module")
def watched(lab_hosts):
    if len(lab_hosts) < 2:
        pytest.skip("needs two lab hosts")
    world = json.loads((ROOT / ".lab" / "hosts.json").read_text()).get("world") or {}
    if not world.get("controller_tailnet_ip"):
        pytest.skip("this machine is not on the lab tailnet (python -m lab up)")
    first, second = lab_hosts[0], lab_hosts[1]
    names = f"{first['name']},{second['name']}"
    receiver = Receiver(world["controller_tailnet_ip"])
    # on these two only: a lab that other tests grew to more hosts leaves the rest without monitoring
    env = {"LAB_MONITORING": names, "LAB_MONITORING_WEBHOOK": receiver.url}
    deployed = run_pyinfra_cli(SERVER, limit=names, env=env, timeout=1500)
    again = run_pyinfra_cli(SERVER, limit=names, env=env)
    yield first, second, names, env, receiver, deployed, again
    receiver.server.shutdown()


def test_the_set_runs_where_the_plan_places_it_and_a_second_run_changes_nothing(watched):
    first, second, _, _, _, deployed, again = watched
    assert deployed.changed > 0
    assert set(MONITORING) <= _containers(first)
    assert set(EXPORTERS) <= _containers(second)
    assert not (set(MONITORING) - set(EXPORTERS)) & _containers(second)
    # the second host publishes its exporters on its Tailscale address only, and its zone opens them
    ports = ssh(second, "firewall-cmd --zone=self-hosted --list-ports").stdout.split()
    assert {"9100/tcp", "9338/tcp"} <= set(ports)
    bound = ssh(second, "ss -Hltn | awk '{print $4}'").stdout.split()
    for port in ("9100", "9338"):
        assert [a for a in bound if a.endswith(f":{port}")] == [f"{second['tailscale_ip']}:{port}"]
    assert again.changed == 0, again.changed_operations()


def test_every_target_comes_up(watched):
    first, second, *_ = watched
    deadline = time.monotonic() + 180
    while True:
        targets = _prometheus(first, "targets")["data"]["activeTargets"]
        down = [(t["labels"].get("job"), t["labels"].get("host"), t["health"], t.get("lastError"))
                for t in targets if t["health"] != "up"]
        if not down and targets or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert not down, down
    scraped = {(t["labels"]["job"], t["labels"]["host"]) for t in targets}
    for host in (first, second):
        assert {("node-exporter", host["name"]), ("cadvisor", host["name"])} <= scraped
    assert {"blackbox-http", "blackbox-dns"} <= {job for job, _ in scraped}


def test_tier_3_reports_targets_and_alerts(watched, tmp_path):
    first, second, names, env, *_ = watched
    # the whole of tier 3: the zones and published ports with the exporters and Grafana's port too
    code, failed, passed, tail = verify(names, tmp_path, env=env)
    assert code == 0 and not failed, tail
    assert passed >= 100, tail


def test_a_stopped_container_is_an_alert_at_the_webhook_and_its_start_resolves_it(watched):
    first, second, _, _, receiver, *_ = watched
    ssh(second, f"docker stop {STOPPED}")
    try:
        fired = receiver.wait_for("firing", "ContainerDown", 150, host=second["name"], container=STOPPED)
    finally:
        ssh(second, f"docker start {STOPPED}")
    assert fired["labels"]["severity"] == "critical"
    assert STOPPED in fired["annotations"]["summary"]
    receiver.wait_for("resolved", "ContainerDown", 150, host=second["name"], container=STOPPED)


def test_turned_off_the_set_goes_down_its_data_stays_and_grafana_loses_its_subdomain(watched):
    first, second, names, *_ = watched
    ssh(first, "echo kept > /cold-storage/monitoring/grafana/kept-by-the-test.txt")
    off = run_pyinfra_cli(SERVER, limit=names)
    again = run_pyinfra_cli(SERVER, limit=names)
    for host in (first, second):
        assert not set(MONITORING) & _containers(host)
    assert ssh(first, "cat /cold-storage/monitoring/grafana/kept-by-the-test.txt").stdout == "kept\n"
    assert off.changed > 0
    assert again.changed == 0, again.changed_operations()
    answer = ssh(first, f"docker exec pihole dig +short @127.0.0.1 {GRAFANA}").stdout.strip()
    assert answer == "", f"{GRAFANA} still resolves to {answer}"
