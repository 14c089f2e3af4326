"""Tier 1's `ssh tailnet` row: off or on, what the next deploy takes out, and what it can already
tell will not be provable (read from the lab host's recorded firewalld)."""

from __future__ import annotations

from test_preflight import observed

from deploys.library.preflight import FAIL, PASS, WARN, check_ssh_tailnet_only

LAN = {"client_address": "192.168.1.20", "client_port": 40000, "server_address": "192.168.1.5",
       "server_port": 22}
TAILNET_SESSION = {**LAN, "client_address": "100.100.1.2"}
TAILNET = ["100.64.0.0/10"]


def check(on: bool, session=LAN, removed=None, tailscale_ip: str | None = "100.64.0.10", **changes):
    # the lab's settings name the Tailscale IP; None: neither configured nor reported by the host
    found = observed(settings={"ssh_tailnet_only": on, "tailscale_ip": tailscale_ip}, ssh_session=session,
                     ssh_removed=removed, tailnet=TAILNET, **changes)
    if tailscale_ip is None:
        found.tailscale_ip_on_host = None
    return check_ssh_tailnet_only(found)


def test_off_passes_and_says_so():
    found = check(False)
    assert found.result == PASS and found.detail.startswith("off")


def test_off_with_ssh_taken_out_earlier_warns_it_is_put_back():
    found = check(False, removed={"removed": [("runtime", "public", "service", "ssh")], "pending": []})
    assert found.result == WARN and "zone(s) public" in found.detail and "puts it back" in found.detail


def test_on_from_the_tailnet_passes_naming_the_zones_to_change():
    found = check(True, session=TAILNET_SESSION)
    assert found.result == PASS
    assert "from 100.100.1.2, in the tailnet" in found.detail
    assert "takes SSH out of zone(s) public" in found.detail  # the lab's default zone admits ssh


def test_on_from_outside_warns_the_second_login_will_be_tried():
    found = check(True, tailscale_ip="100.101.102.103")
    assert found.result == WARN
    assert "comes from 192.168.1.20, outside the tailnet" in found.detail
    assert "second login to 100.101.102.103:22" in found.detail
    assert "ssh_hostname 100.101.102.103" in found.detail


def test_on_from_outside_without_a_tailscale_ip_fails():
    found = check(True, tailscale_ip=None)
    assert found.result == FAIL and "no Tailscale IP" in found.detail


def test_on_with_a_zone_that_accepts_everything_fails_naming_it():
    zones = observed().firewalld
    lab = {**zones["zones"]["trusted"], "interfaces": ["eth1"]}
    accepting = {**zones, "zones": {**zones["zones"], "lab": lab}}
    found = check(True, session=TAILNET_SESSION, firewalld=accepting)
    assert found.result == FAIL and "zone 'lab' has target ACCEPT" in found.detail
