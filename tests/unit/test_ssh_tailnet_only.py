"""operations.firewalld.ssh_tailnet_only: what it takes out, what it refuses, its logins over the tailnet,
and its shell run for real against stand-in `firewall-cmd`, `systemd-run` and `systemctl` on PATH."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api import FunctionCommand
from pyinfra.api.exceptions import ConnectError
from pyinfra.context import ctx_host, ctx_state
from pyinfra_testing.util import FakeState, create_host

from operations import firewalld, sshd
from operations.firewalld import (
    TAILNET_REVERT_UNIT,
    TAILNET_STATE_FILE,
    tailnet_apply_command,
    tailnet_confirm_command,
    tailnet_restore_command,
)

TAILNET = ["100.64.0.0/10"]
RECORD_KEY = f"path={TAILNET_STATE_FILE}, unit={TAILNET_REVERT_UNIT}.timer"
NOTHING = {"removed": [], "pending": [], "timer": False}


def zone(target="default", sources=(), interfaces=(), services=(), ports=(), default=False):
    return {"target": target, "sources": list(sources), "interfaces": list(interfaces),
            "services": list(services), "ports": list(ports), "default": default}


def zones(**overrides) -> dict[str, Any]:
    found = {
        "public": zone(interfaces=["eth0"], services=["ssh", "dhcpv6-client"], ports=["2222/tcp"],
                       default=True),
        "self-hosted": zone(sources=TAILNET, services=["ssh"], ports=["80/tcp", "2222/tcp"]),
        "docker": zone(target="ACCEPT", interfaces=["docker0"]),
        "trusted": zone(target="ACCEPT"),  # handles nothing: no interface, no source
        "tailnet-admin": zone(sources=["100.100.0.0/16"], services=["ssh"]),  # inside the tailnet
        "lan": zone(sources=["192.168.1.0/24"], ports=["22/tcp", "8080/tcp"]),
        "dmz": zone(services=["ssh"]),  # no interface, no source: handles nothing
    }
    found.update(overrides)
    return {"running": True, "default_zone": "public", "zones": found, "permanent": found}


class SshConnector:
    def make_paramiko_kwargs(self) -> dict[str, Any]:
        return {}


def run_op(facts: dict, record: dict | None = None, executing: bool = False, **kwargs: Any):
    state = FakeState()
    state.is_executing = executing
    host = create_host(state, facts={"firewalld.FirewalldZones": facts,
                                     "firewalld.RemovedSshEntries": {RECORD_KEY: record or NOTHING}})
    host.connector = SshConnector()
    arguments = {"zone": "self-hosted", "tailnet": TAILNET, "ssh_port": 2222,
                 "client_address": "192.168.1.20", "tailscale_ip": "100.101.102.103",
                 "keep": ["docker"], **kwargs}
    with ctx_state.use(state), ctx_host.use(host):
        commands = list(firewalld.ssh_tailnet_only._inner(**arguments))
    return commands, host.noop_description


def failure_text(command: Any) -> str:
    assert isinstance(command, FunctionCommand)
    return command.function.__name__


def test_takes_ssh_out_of_every_zone_handling_other_traffic_after_proving_the_tailnet_path():
    (proof, apply, confirm), _ = run_op(zones())
    assert isinstance(proof, firewalld._TailnetLogin) and proof.args[:3] == ("100.101.102.103", 2222, True)
    assert isinstance(confirm, firewalld._TailnetLogin)
    assert confirm.args[:3] == ("100.101.102.103", 2222, False)
    for conf in ("", "--permanent "):
        assert f"firewall-cmd {conf}--zone=public --remove-service=ssh " in apply
        assert f"firewall-cmd {conf}--zone=public --remove-port=2222/tcp " in apply
        assert f"firewall-cmd {conf}--zone=lan --remove-port=22/tcp " in apply
    for left in ("self-hosted", "docker", "trusted", "tailnet-admin", "dmz"):
        assert f"--zone={left} " not in apply
    assert "8080/tcp" not in apply and "dhcpv6" not in apply


def test_a_session_from_the_tailnet_is_its_own_proof():
    (apply, confirm), _ = run_op(zones(), client_address="100.100.1.2")
    assert isinstance(apply, str) and isinstance(confirm, firewalld._TailnetLogin)
    # confirmed by a login made as the deploy's own, which comes over the tailnet
    assert confirm.args[:3] == (None, 2222, False)


def test_nothing_to_take_out_is_a_no_op():
    done = zones(public=zone(interfaces=["eth0"], services=["dhcpv6-client"], default=True),
                 lan=zone(sources=["192.168.1.0/24"], ports=["8080/tcp"]))
    commands, noop = run_op(done)
    assert commands == [] and "tailnet only" in noop


def test_a_zone_with_target_accept_is_refused_naming_it():
    (refusal,), _ = run_op(zones(lab=zone(target="ACCEPT", interfaces=["eth1"])))
    assert "zone 'lab' has target ACCEPT" in failure_text(refusal)


def test_a_port_range_holding_sshd_port_is_refused():
    (refusal,), _ = run_op(zones(lan=zone(sources=["192.168.1.0/24"], ports=["2200-2299/tcp"])))
    assert "port range 2200-2299/tcp" in failure_text(refusal)


def test_no_tailscale_ip_and_a_session_from_outside_is_refused():
    (refusal,), _ = run_op(zones(), tailscale_ip=None, remedy="leave HOMELAB_SSH_TAILNET_ONLY off")
    text = failure_text(refusal)
    assert "comes from 192.168.1.20, outside the tailnet (100.64.0.0/10)" in text
    assert text.endswith("leave HOMELAB_SSH_TAILNET_ONLY off")


def test_refused_at_execution_while_the_tailnet_zone_lacks_sshd_port():
    lacking = zones(**{"self-hosted": zone(sources=TAILNET, services=["ssh"], ports=["80/tcp"])})
    (refusal,), _ = run_op(lacking, executing=True)
    assert "zone 'self-hosted' does not admit SSH on port 2222" in failure_text(refusal)


def test_off_puts_back_what_was_recorded_and_is_a_no_op_without_a_record():
    commands, noop = run_op(zones(), present=False)
    assert commands == [] and "nothing to put back" in noop
    record = {"removed": [("runtime", "public", "service", "ssh")], "pending": [], "timer": False}
    (restore,), _ = run_op(zones(), record=record, present=False)
    assert f"{TAILNET_STATE_FILE} {TAILNET_STATE_FILE}.pending" in restore


# -- the second logins ------------------------------------------------------------------------------
class LogHost:
    print_prefix = "[server] "
    data: dict[str, Any] = {}

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log_styled(self, message: str, **_: Any) -> None:
        self.lines.append(message)


@pytest.fixture
def logins(monkeypatch):
    calls: dict[str, Any] = {"connect": [], "run": []}
    outcome: dict[str, Any] = {"error": None}

    class Second:
        client = None

    def connect_again(state, host, address=None, port=None, settle=0):
        calls["connect"].append((address, port))
        if outcome["error"]:
            raise ConnectError(outcome["error"])
        return Second()

    def run(host, command, arguments):
        calls["run"].append(command)
        return True

    monkeypatch.setattr(sshd, "_connect_again", connect_again)
    monkeypatch.setattr(sshd, "_run", run)
    return calls, outcome


def test_a_failed_proof_fails_in_one_line_and_changes_nothing(logins):
    calls, outcome = logins
    outcome["error"] = "Could not connect ([Errno 113] No route to host)"
    (proof, _apply, _confirm), _ = run_op(zones(), remedy="leave HOMELAB_SSH_TAILNET_ONLY off")
    host = LogHost()
    assert proof.execute(FakeState(), host, {}) is False
    (line,) = host.lines
    assert "comes from 192.168.1.20" in line and "a login to 100.101.102.103:2222 failed" in line
    assert "No route to host" in line and "ssh_hostname 100.101.102.103" in line
    assert line.endswith("leave HOMELAB_SSH_TAILNET_ONLY off") and "\n" not in line
    assert calls["connect"] == [("100.101.102.103", 2222)] and calls["run"] == []


def test_a_failed_confirmation_puts_ssh_back_at_once(logins):
    calls, outcome = logins
    (_proof, _apply, confirm), _ = run_op(zones())
    outcome["error"] = "Could not connect (timed out)"
    host = LogHost()
    assert confirm.execute(FakeState(), host, {}) is False
    (restore,) = calls["run"]
    assert restore.startswith(f"systemctl stop {TAILNET_REVERT_UNIT}.timer") and ".pending" in restore
    assert "failed after SSH was taken out" in host.lines[0] and "it was put back" not in host.lines[0]


def test_a_working_confirmation_keeps_the_change(logins):
    calls, _ = logins
    (_proof, _apply, confirm), _ = run_op(zones())
    assert confirm.execute(FakeState(), LogHost(), {}) is True
    assert calls["run"] == [tailnet_confirm_command()]


def test_connect_again_to_another_address_keeps_the_login_and_changes_only_where():
    made = []

    class Connector:
        def __init__(self, state, host):
            pass

        def make_paramiko_kwargs(self):
            return {"hostname": "server.lan", "port": 22, "username": "admin", "pkey": "KEY"}

        def connect(self):
            made.append(self.make_paramiko_kwargs())

    class Host:
        connector = Connector(None, None)

    sshd._connect_again(None, Host(), address="100.101.102.103", port=2222, settle=0)
    sshd._connect_again(None, Host(), settle=0)
    assert made == [{"hostname": "100.101.102.103", "port": 2222, "username": "admin", "pkey": "KEY"},
                    {"hostname": "server.lan", "port": 22, "username": "admin", "pkey": "KEY"}]


# -- the shell, run for real --------------------------------------------------------------------------
FIREWALL_CMD = r"""#!/bin/bash
# stand-in firewall-cmd: one file per configuration, zone and kind under $FW, one entry a line
conf=runtime; zone=; action=
for arg in "$@"; do
  case "$arg" in
    --permanent) conf=permanent;;
    --zone=*) zone=${arg#--zone=};;
    --add-*|--remove-*) action=$arg;;
  esac
done
[ -n "$FW_DOWN" ] && [ "$conf" = runtime ] && { echo "FirewallD is not running" >&2; exit 252; }
kind=${action#--*-}; kind=${kind%%=*}; value=${action#*=}
file="$FW/$conf.$zone.$kind"
[ -d "$FW/zones/$zone" ] || { echo "Error: INVALID_ZONE: $zone" >&2; exit 112; }
case "$action" in
  --add-*) grep -qxF -- "$value" "$file" 2>/dev/null || echo "$value" >> "$file";;
  --remove-*) [ "$value" = "$FW_REFUSE" ] && { echo "Error: refused" >&2; exit 1; }
              grep -vxF -- "$value" "$file" > "$file.new"; mv "$file.new" "$file";;
esac
"""
SYSTEMD_RUN = r"""#!/bin/bash
# stand-in systemd-run: the timer's command kept in $FW/timer.sh, its unit marked active
for last; do :; done
printf '%s' "$last" > "$FW/timer.sh"; touch "$FW/timer.active"; echo "$@" > "$FW/systemd-run.args"
"""
SYSTEMCTL = r"""#!/bin/bash
case "$1" in
  is-active) [ -f "$FW/timer.active" ];;
  stop) rm -f "$FW/timer.active";;
  *) true;;
esac
"""


class Box:
    """A host in a folder: zones `public` and `lan` with SSH, the stand-ins first on PATH."""

    def __init__(self, root: Path):
        self.root = root
        self.fw = root / "fw"
        (self.fw / "zones" / "public").mkdir(parents=True)
        (self.fw / "zones" / "lan").mkdir(parents=True)
        bin_dir = root / "bin"
        bin_dir.mkdir()
        for name, text in (("firewall-cmd", FIREWALL_CMD), ("systemd-run", SYSTEMD_RUN),
                           ("systemctl", SYSTEMCTL)):
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FW": str(self.fw)}
        self.state = str(root / "etc" / "homelab" / "ssh-tailnet-only.removed")
        for conf in ("runtime", "permanent"):
            self.write(conf, "public", "service", ["dhcpv6-client", "ssh"])
            self.write(conf, "public", "port", ["2222/tcp"])
        self.write("permanent", "lan", "port", ["22/tcp"])

    def write(self, conf: str, zone: str, kind: str, values: list[str]) -> None:
        (self.fw / f"{conf}.{zone}.{kind}").write_text("".join(f"{v}\n" for v in values))

    def entries(self, conf: str, zone: str, kind: str) -> list[str]:
        path = self.fw / f"{conf}.{zone}.{kind}"
        return path.read_text().split() if path.exists() else []

    def sh(self, command: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(["sh", "-c", command], env={**self.env, **env}, capture_output=True, text=True)

    def all(self) -> dict[str, list[str]]:
        return {p.name: sorted(p.read_text().split()) for p in sorted(self.fw.glob("*.*.*"))}


ENTRIES = [("permanent", "public", "service", "ssh"), ("permanent", "public", "port", "2222/tcp"),
           ("permanent", "lan", "port", "22/tcp"), ("runtime", "public", "service", "ssh"),
           ("runtime", "public", "port", "2222/tcp")]


def test_shell_apply_confirm_then_turning_off_restores_exactly(tmp_path):
    box = Box(tmp_path)
    before = box.all()
    applied = box.sh(tailnet_apply_command(ENTRIES, 120, box.state))
    assert applied.returncode == 0, applied.stderr
    assert box.entries("runtime", "public", "service") == ["dhcpv6-client"]
    assert box.entries("permanent", "lan", "port") == [] and box.entries("runtime", "public", "port") == []
    assert "--on-active=120" in (box.fw / "systemd-run.args").read_text()
    assert (box.fw / "timer.active").exists()
    confirmed = box.sh(tailnet_confirm_command(box.state))
    assert confirmed.returncode == 0, confirmed.stderr
    assert not (box.fw / "timer.active").exists() and not Path(f"{box.state}.pending").exists()
    assert Path(box.state).read_text().splitlines() == [" ".join(entry) for entry in ENTRIES]
    restored = box.sh(tailnet_restore_command(box.state, pending_only=False))
    assert restored.returncode == 0, restored.stderr
    assert box.all() == before
    assert not Path(box.state).exists()


def test_shell_timer_puts_back_an_unconfirmed_change_only(tmp_path):
    box = Box(tmp_path)
    Path(box.state).parent.mkdir(parents=True)
    Path(box.state).write_text("runtime lan service ssh\n")  # confirmed by an earlier run: stays out
    before = box.all()
    assert box.sh(tailnet_apply_command(ENTRIES, 120, box.state)).returncode == 0
    fired = box.sh((box.fw / "timer.sh").read_text())  # the deploy's connection is gone: the timer fires
    assert fired.returncode == 0, fired.stderr
    assert box.all() == before
    assert not Path(f"{box.state}.pending").exists()
    assert Path(box.state).read_text() == "runtime lan service ssh\n"


def test_shell_a_refused_removal_puts_back_what_was_removed(tmp_path):
    box = Box(tmp_path)
    before = box.all()
    result = box.sh(tailnet_apply_command(ENTRIES, 120, box.state), FW_REFUSE="22/tcp")
    assert result.returncode == 1 and "firewall-cmd refused a removal" in result.stderr
    assert box.all() == before
    assert not (box.fw / "timer.active").exists() and not Path(f"{box.state}.pending").exists()


def test_shell_confirm_after_the_timer_fired_fails(tmp_path):
    box = Box(tmp_path)
    result = box.sh(tailnet_confirm_command(box.state))
    assert result.returncode == 1 and "revert timer has already put SSH back" in result.stderr


def test_shell_restore_that_cannot_finish_keeps_the_record(tmp_path):
    box = Box(tmp_path)
    assert box.sh(tailnet_apply_command(ENTRIES, 120, box.state)).returncode == 0
    assert box.sh(tailnet_confirm_command(box.state)).returncode == 0
    result = box.sh(tailnet_restore_command(box.state, pending_only=False), FW_DOWN="1")
    assert result.returncode != 0
    assert Path(box.state).exists()
    assert box.entries("permanent", "public", "service") == ["dhcpv6-client", "ssh"]
