"""NGINX Proxy Manager's bad day, end to end: nginx rejecting one proxy host's config is reported on
every run until it is fixed, as one line, with a non-zero exit and no traceback.

The NPM stand-in (lab/standin.py) takes its failure switches from a control file in NPM's data
volume: on the lab host, <cold storage>/services/nginx-proxy/data/lab-npm-control.json.
"""

from __future__ import annotations

import json
import re

import pytest
from labkit import DEBUG_LOG, assert_clean, npm_api, run_pyinfra_cli, ssh

from lab.data import LAB_DATA  # noqa: E402

SERVER = "deploys/server.py"
DOMAIN = LAB_DATA["domain"]
CHAT = f"chat.{DOMAIN}"
CONTROL = f"{LAB_DATA['cold_storage_path']}/services/nginx-proxy/data/lab-npm-control.json"
NGINX_ERROR = (
    '"nginx: [emerg] could not build server_names_hash, you should increase server_names_hash_bucket_size: '
    '1024; nginx: configuration file /etc/nginx/nginx.conf test failed"'
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _switches(host, switches: dict | None) -> None:
    """Set the NPM stand-in's failure switches (None: none)."""
    if switches is None:
        ssh(host, f"rm -f {CONTROL}")
    else:
        ssh(host, f"printf '%s' '{json.dumps(switches)}' > {CONTROL}.part && mv {CONTROL}.part {CONTROL}")


@pytest.fixture(scope="module")
def npm_host(lab_hosts):
    """The first lab host, deployed, its NPM stand-in recreated from the current image (the switches
    are read by the stand-in that runs now), no switch set."""
    host = lab_hosts[0]
    name = host["name"]
    ssh(host, f"rm -f {CONTROL}; docker rm -f nginx-proxy-manager", check=False)
    run_pyinfra_cli(SERVER, limit=name, timeout=1500)
    yield host, name
    _switches(host, None)
    run_pyinfra_cli(SERVER, limit=name, check=False)


def _failed_run(name: str):
    DEBUG_LOG.unlink(missing_ok=True)
    result = run_pyinfra_cli(SERVER, limit=name, check=False)
    output = ANSI.sub("", result.stdout + result.stderr)
    return result, output


def test_rejected_proxy_host_is_reported_on_every_run_until_fixed(npm_host):
    host, name = npm_host
    chat = next(h for h in json.loads(npm_api(host, "list")) if h["domain_names"] == [CHAT])
    npm_api(host, "set-forward-port", CHAT, "3000")  # drift, so the next run writes the host
    _switches(host, {"nginx_reject": [CHAT]})
    expected = f"[{name}] nginx rejected the config of proxy host #{chat['id']} ({CHAT}): {NGINX_ERROR}"
    try:
        for attempt in ("the run that writes it", "the next run, fields unchanged"):
            result, output = _failed_run(name)
            assert result.returncode != 0, (attempt, result.explain())
            lines = [line.strip() for line in output.splitlines()]
            assert expected in lines, (attempt, result.explain())
            assert_clean(result)
        stored = next(h for h in json.loads(npm_api(host, "list")) if h["id"] == chat["id"])
        assert stored["meta"]["nginx_online"] is False
    finally:
        _switches(host, None)

    fixed = run_pyinfra_cli(SERVER, limit=name)  # applies it again; nginx accepts it now
    assert fixed.changed_operations() == {f"Proxy hosts | {CHAT} -> open-webui:8080": [name]}
    stored = next(h for h in json.loads(npm_api(host, "list")) if h["id"] == chat["id"])
    assert (stored["forward_port"], stored["meta"]["nginx_online"]) == (8080, True)
    assert run_pyinfra_cli(SERVER, limit=name).changed == 0


def test_dry_with_npm_stopped_says_so_on_that_host_quickly(npm_host):
    """`--dry` while NPM does not answer: one line on that host says NPM could not be read and how the
    plan treats it, the API is asked once (not once per proxy host), and the preview ends in seconds."""
    import time

    host, name = npm_host
    started = time.monotonic()
    assert run_pyinfra_cli(SERVER, "--dry", limit=name).returncode == 0
    usual = time.monotonic() - started  # the same preview with NPM answering, on this machine now
    ssh(host, "docker stop -t 3 nginx-proxy-manager")
    try:
        DEBUG_LOG.unlink(missing_ok=True)
        started = time.monotonic()
        result = run_pyinfra_cli(SERVER, "--dry", limit=name, check=False)
        took = time.monotonic() - started
    finally:
        # back as it was: running and healthy (a container still "starting" is waited for by the next run)
        ssh(host, "docker start nginx-proxy-manager; for i in $(seq 1 90); do [ \"$(docker inspect -f "
                  "'{{.State.Health.Status}}' nginx-proxy-manager)\" = healthy ] && break; sleep 1; done")
    output = ANSI.sub("", result.stdout + result.stderr)
    said = [line for line in output.splitlines() if "NGINX Proxy Manager does not answer" in line]
    assert len(said) == 1, result.explain()
    assert said[0].startswith(f"{name}: NGINX Proxy Manager does not answer ("), said
    assert "planned as if it held nothing; the run waits for it" in said[0]
    # which part failed, found for real: SSH works, the host refuses the tunnel's connection to the port
    refused = f"SSH to {name} works, but the tunnel to {host['tailscale_ip']}:81 is refused there"
    assert refused in said[0], said
    assert result.returncode == 0, result.explain()
    print(f"\n--dry: {usual:.1f} s with NPM answering, {took:.1f} s with NPM stopped")
    # a short bounded wait, once: not a wait per operation (the target, < 10 s, on a quiet host)
    assert took < usual + 4, f"--dry took {took:.1f} s with NPM stopped, {usual:.1f} s with it answering"
    assert_clean(result)
    assert run_pyinfra_cli(SERVER, limit=name).changed == 0  # NPM answers again: nothing to repair


def test_dry_with_npm_frozen_says_the_service_behind_a_working_tunnel_does_not_answer(npm_host):
    """NPM's container paused: its port still accepts connections (the kernel does), NPM says nothing.
    The line names the part that failed for real: SSH and the tunnel work, the service does not answer."""
    host, name = npm_host
    ssh(host, "docker pause nginx-proxy-manager")
    try:
        result = run_pyinfra_cli(SERVER, "--dry", limit=name, check=False)
    finally:
        ssh(host, "docker unpause nginx-proxy-manager")
    output = ANSI.sub("", result.stdout + result.stderr)
    said = [line for line in output.splitlines() if "NGINX Proxy Manager does not answer" in line]
    assert len(said) == 1, result.explain()
    assert (f"SSH to {name} and the tunnel to {host['tailscale_ip']}:81 work, but NGINX Proxy Manager "
            "behind it does not answer") in said[0], said
    assert result.returncode == 0, result.explain()
    assert_clean(result)


def test_the_health_wait_right_after_an_unpause_waits_for_the_next_check_on_docker_itself(npm_host):
    """Docker (20.10, Debian 12's) marks a paused container "unhealthy" with a failing streak of 0 and
    keeps the mark after `docker unpause` until its next check, an interval (10 s) later. A deploy run
    then (the next test module's, in this suite) waited on nothing and failed at once as "unhealthy".
    The deploy's wait, on the lab host's Docker, waits for that next check and passes."""
    import shlex
    import time

    from operations.compose import wait_healthy_command

    host, _ = npm_host
    ssh(host, "docker pause nginx-proxy-manager && docker unpause nginx-proxy-manager")
    state = ssh(host, "docker inspect -f '{{.State.Health.Status}} {{.State.Health.FailingStreak}}' "
                      "nginx-proxy-manager").stdout.strip()
    assert state == "unhealthy 0", f"Docker's mark after an unpause is {state!r} here"
    started = time.monotonic()
    waited = ssh(host, f"sh -c {shlex.quote(wait_healthy_command('nginx-proxy-manager', 60))}", check=False)
    took = time.monotonic() - started
    assert waited.returncode == 0, waited.stderr
    assert took > 1, f"the wait passed in {took:.1f} s: it did not wait for the next check"
    state = ssh(host, "docker inspect -f '{{.State.Health.Status}} {{.State.Health.FailingStreak}}' "
                      "nginx-proxy-manager").stdout.strip()
    assert state == "healthy 0"
