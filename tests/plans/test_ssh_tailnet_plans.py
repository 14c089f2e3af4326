"""SSH over the tailnet only (HOMELAB_SSH_TAILNET_ONLY), planned for a `@fake` host whose firewalld is the
lab host's recording: where it sits in the infrastructure tier, what the zone keeps, what is taken out
and put back. The `@fake` host is reached without SSH, so no second login is planned here (the logins are
tested in tests/unit/test_ssh_tailnet_only.py)."""

from __future__ import annotations

from harness import plan
from test_ssh_guard_plans import debian, zones_output

from operations.firewalld import TAILNET_REVERT_UNIT, TAILNET_STATE_FILE

INFRA = "deploys/infrastructure.py"
LAN_SESSION = "192.168.1.20 40000 192.168.1.5 2222"
ZONE_OP = "Firewall zone self-hosted | Zone self-hosted: Tailscale peers only"
ON = ("SSH over the tailnet only | SSH over the tailnet only: zones other than self-hosted and docker stop "
      "admitting it (proven and confirmed by logins over the tailnet, put back otherwise)")
OFF = ("SSH over the tailnet only | SSH: nothing taken out of the firewalld zones "
       "(HOMELAB_SSH_TAILNET_ONLY=false)")
STATE = "### removed-ssh "


def host(session: str = LAN_SESSION, removed: tuple[str, ...] = (), pending: tuple[str, ...] = (),
         timer: bool = False, public_ports: str = "2222/tcp") -> dict:
    responses = debian(session, zones_output("recorded-debian12-lab", public_ports=public_ports))
    responses[STATE] = [f"{STATE}removed", *removed, f"{STATE}pending", *pending, f"{STATE}timer",
                        *(["active"] if timer else [])]
    return responses


def test_off_with_nothing_taken_out_is_a_no_op_before_the_zone_step():
    ops = plan(INFRA, host())
    assert ops[OFF] == []
    assert ON not in ops
    names = list(ops)
    assert names.index(OFF) < names.index(ZONE_OP)
    # the tailnet reaches sshd on its own port whether the setting is on or not
    assert "firewall-cmd --permanent --zone=self-hosted --add-port=2222/tcp" in ops[ZONE_OP]


def test_on_the_zone_opens_sshd_port_and_ssh_leaves_the_other_zones_after_it():
    ops = plan(INFRA, host(), {"ssh_tailnet_only": True})
    assert "firewall-cmd --permanent --zone=self-hosted --add-port=2222/tcp" in ops[ZONE_OP]
    names = list(ops)
    assert names.index(ZONE_OP) < names.index(ON)
    assert OFF not in ops
    apply, confirm = ops[ON]
    # the default zone `public` (the LAN) loses the ssh service and sshd's port, runtime and permanent;
    # `dmz` (ssh, but no interface or source) handles nothing and `docker` is Docker's: both left alone
    for conf in ("", "--permanent "):
        assert f"firewall-cmd {conf}--zone=public --remove-service=ssh" in apply
        assert f"firewall-cmd {conf}--zone=public --remove-port=2222/tcp" in apply
    assert "--zone=dmz" not in apply and "--zone=docker" not in apply
    assert f"--unit={TAILNET_REVERT_UNIT} --on-active=120" in apply
    assert apply.index("systemd-run") < apply.index("--remove-service")
    assert "permanent public service ssh" in apply and f">> {TAILNET_STATE_FILE}.pending" in apply
    assert confirm.startswith(f"systemctl is-active --quiet {TAILNET_REVERT_UNIT}.timer")


def test_on_port_22_the_zone_is_as_today():
    ops = plan(INFRA, host("100.100.1.2 40000 100.101.102.103 22", public_ports=""),
               {"ssh_tailnet_only": True})
    assert not any("--add-port=22/tcp" in command for command in ops[ZONE_OP])
    assert "firewall-cmd --zone=public --remove-service=ssh" in ops[ON][0]


def without_ssh_in_public() -> list[str]:
    """The recording with SSH taken out of `public` (runtime and permanent), as a confirmed run leaves it."""
    lines, zone = [], None
    for line in zones_output("recorded-debian12-lab"):
        if line and not line[0].isspace():
            zone = line.split()[0]
        if zone == "public" and line.strip().startswith("services:"):
            line = "  services: dhcpv6-client"
        lines.append(line)
    return lines


def test_on_and_already_done_is_a_no_op():
    responses = host(removed=("runtime public service ssh", "permanent public service ssh"))
    responses["firewall-cmd --get-default-zone"] = without_ssh_in_public()
    ops = plan(INFRA, responses, {"ssh_tailnet_only": True})
    assert ops[ON] == []


def test_on_with_a_change_left_unconfirmed_confirms_it_again():
    responses = host(pending=("runtime public service ssh",), timer=True)
    responses["firewall-cmd --get-default-zone"] = without_ssh_in_public()
    apply, confirm = plan(INFRA, responses, {"ssh_tailnet_only": True})[ON]
    assert "--remove-" not in apply and "systemd-run" in apply
    assert f"cat {TAILNET_STATE_FILE}.pending >> {TAILNET_STATE_FILE}" in confirm


def test_off_after_on_puts_back_what_was_taken_out_before_the_zone_drops_the_port():
    removed = ("runtime public service ssh", "permanent public service ssh", "permanent public port 2222/tcp")
    ops = plan(INFRA, host(removed=removed))
    (restore,) = ops[OFF]
    assert restore.startswith(f"systemctl stop {TAILNET_REVERT_UNIT}.timer")
    assert f"{TAILNET_STATE_FILE} {TAILNET_STATE_FILE}.pending" in restore
    names = list(ops)
    assert names.index(OFF) < names.index(ZONE_OP)
