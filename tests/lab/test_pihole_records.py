"""Hand-made Pi-hole records end to end: entries written as a person writes them in Pi-hole's web
interface (capitals, a tab, several names on a line, a CNAME) on a lab host's running stack, then the
real CLI: the deploy repairs what it can, reports the CNAME conflict in one line with a non-zero exit,
and never ends in an "internal exception" or a pyinfra-debug.log.

The records are edited through the Pi-hole API from inside the lab's stand-in container (its own
password from its environment, never on a command line); the stand-in is the Pi-hole double, as strict
as FTL v6.2.3 where it was recorded (tests/unit/test_pihole_replay.py).
"""

from __future__ import annotations

import json
import shlex

import pytest
from labkit import DEBUG_LOG, assert_clean, run_pyinfra_cli, ssh

from lab.data import LAB_DATA  # noqa: E402

SERVER = "deploys/server.py"
DOMAIN = LAB_DATA["domain"]
DNS_OP = "Local DNS | Pi-hole local DNS for the subdomains"

# Runs inside the pihole stand-in container: `python3 -c API KIND ACTION [JSON_ENTRY]`.
API = r"""
import json, os, sys, urllib.error, urllib.parse, urllib.request
def call(method, path, body=None, sid=None):
    headers = {"Content-Type": "application/json", **({"X-FTL-SID": sid} if sid else {})}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request("http://127.0.0.1:80" + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
_, text = call("POST", "/api/auth", {"password": os.environ["FTLCONF_webserver_api_password"]})
sid = json.loads(text)["session"]["sid"]
try:
    path = "/api/config/dns/" + sys.argv[1]
    if sys.argv[2] == "get":
        print(call("GET", path, sid=sid)[1])
    else:
        item = urllib.parse.quote(json.loads(sys.argv[3]), safe="")
        print(call("PUT" if sys.argv[2] == "add" else "DELETE", path + "/" + item, sid=sid)[0])
finally:
    call("DELETE", "/api/auth", sid=sid)
"""


def pihole_api(host, kind: str, action: str, entry: str | None = None) -> str:
    args = [kind, action] + ([json.dumps(entry)] if entry is not None else [])
    command = f"docker exec pihole python3 -c {shlex.quote(API)} {shlex.join(args)}"
    return ssh(host, command).stdout.strip()


def stored(host, kind: str = "hosts") -> list[str]:
    return json.loads(pihole_api(host, kind, "get"))["config"]["dns"][kind]


def dig(host, name: str) -> list[str]:
    return ssh(host, f"docker exec pihole dig +short @{host['tailscale_ip']} {name}").stdout.split()


@pytest.fixture(scope="module")
def stack(lab_hosts):
    """The first lab host with the whole stack deployed (a no-op when it already runs)."""
    host = lab_hosts[0]
    name = host["name"]
    DEBUG_LOG.unlink(missing_ok=True)
    run_pyinfra_cli(SERVER, limit=name, timeout=1500)
    return host, name


def test_mixed_case_record_with_a_tab_is_replaced_by_its_stored_string(stack):
    host, name = stack
    ours = f"{host['tailscale_ip']} comfy.{DOMAIN}"
    hand_made = f"10.9.9.7\tComfy.{DOMAIN.upper()}"
    assert pihole_api(host, "hosts", "delete", ours) == "204"
    assert pihole_api(host, "hosts", "add", hand_made) == "201"
    dry = run_pyinfra_cli(SERVER, "--dry", limit=name)
    assert dry.planned_changes() == {DNS_OP: [name]}
    repaired = run_pyinfra_cli(SERVER, limit=name)
    assert_clean(repaired)
    assert repaired.changed_operations() == {DNS_OP: [name]}
    entries = stored(host)
    assert hand_made not in entries and ours in entries, entries
    assert dig(host, f"comfy.{DOMAIN}") == [host["tailscale_ip"]]
    again = run_pyinfra_cli(SERVER, limit=name)
    assert again.changed == 0, again.explain()


def test_our_name_beside_other_names_is_taken_off_their_line(stack):
    host, name = stack
    hand_made = f"10.9.9.8 nas.lab.test CHAT.{DOMAIN}"
    assert pihole_api(host, "hosts", "add", hand_made) == "201"
    try:
        repaired = run_pyinfra_cli(SERVER, limit=name)
        assert_clean(repaired)
        assert repaired.changed_operations() == {DNS_OP: [name]}
        entries = stored(host)
        assert hand_made not in entries and "10.9.9.8 nas.lab.test" in entries, entries
        assert [e for e in entries if "chat." in e.lower()] == [f"{host['tailscale_ip']} chat.{DOMAIN}"]
        assert dig(host, f"chat.{DOMAIN}") == [host["tailscale_ip"]]
        assert dig(host, "nas.lab.test") == ["10.9.9.8"]
        assert run_pyinfra_cli(SERVER, limit=name).changed == 0
    finally:
        for entry in (hand_made, "10.9.9.8 nas.lab.test"):
            if entry in stored(host):
                pihole_api(host, "hosts", "delete", entry)


def test_a_cname_for_our_name_stops_the_run_with_one_line(stack):
    host, name = stack
    cname = f"hole.{DOMAIN},elsewhere.lab.test"
    expected = (
        f"Pi-hole's CNAME record '{cname}' answers for hole.{DOMAIN}, so the local DNS record "
        f"hole.{DOMAIN} -> {host['tailscale_ip']} would never be used: delete that CNAME record in "
        "Pi-hole (Local DNS > CNAME records) and run again"
    )
    assert pihole_api(host, "cnameRecords", "add", cname) == "201"
    try:
        # --dry says it on this host while planning; the run fails the operation there, one line
        planned = run_pyinfra_cli(SERVER, "--dry", limit=name, check=False)
        assert expected in planned.stdout + planned.stderr, planned.explain()
        assert_clean(planned)
        refused = run_pyinfra_cli(SERVER, limit=name, check=False)
        assert refused.returncode != 0, refused.explain()
        assert expected in refused.stdout + refused.stderr, refused.explain()
        assert_clean(refused)
    finally:
        pihole_api(host, "cnameRecords", "delete", cname)
    assert stored(host, "cnameRecords") == []
    after = run_pyinfra_cli(SERVER, limit=name)
    assert after.changed == 0, after.explain()


def test_dry_with_pihole_frozen_says_the_service_behind_a_working_tunnel_does_not_answer(stack):
    """Pi-hole's container paused: the tunnel to its address on the Docker network opens (the kernel
    accepts), Pi-hole says nothing. `--dry` says so on that host in one line, naming the failed part,
    within the short planning wait, and exits 0."""
    import re
    import time

    host, name = stack
    ssh(host, "docker pause pihole")
    try:
        started = time.monotonic()
        result = run_pyinfra_cli(SERVER, "--dry", limit=name, check=False)
        took = time.monotonic() - started
    finally:
        ssh(host, "docker unpause pihole")
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    said = [line for line in output.splitlines() if "Pi-hole does not answer" in line]
    assert len(said) == 1, result.explain()
    assert f"SSH to {name} and the tunnel to " in said[0] and "work, but Pi-hole behind it does not answer" \
        in said[0], said
    assert result.returncode == 0, result.explain()
    assert_clean(result)
    print(f"\n--dry with Pi-hole frozen: {took:.1f} s")
