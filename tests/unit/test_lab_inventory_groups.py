"""The lab inventory's two modes: one group `lab_hosts` by default, and LAB_GROUPS placing the lab hosts
in the groups a multi-host homelab uses (`core`, `gpu`). Loaded the way the pyinfra CLI loads it,
against a hosts.json of our own (LAB_STATE_DIR), so no lab is needed."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
from pyinfra.context import ctx_state
from pyinfra_cli import inventory as cli_inventory

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = str(ROOT / "inventories" / "lab.py")


@pytest.fixture
def lab_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A hosts.json with two lab hosts, as `python -m lab up --hosts 2` records them."""
    hosts = [
        {"name": f"homelab-lab-{i}", "ssh_port": 2220 + i, "tailscale_ip": f"100.64.0.{i}",
         "ssh_key": str(tmp_path / "id_ed25519"), "ssh_user": "root", "ssh_hostname": "127.0.0.1"}
        for i in (1, 2)
    ]
    (tmp_path / "hosts.json").write_text(json.dumps({"hosts": hosts, "world": {"address": "172.17.0.9"}}))
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("LAB_GROUPS", raising=False)
    monkeypatch.delenv("LAB_LOGIN", raising=False)
    return tmp_path


def make_inventory(path: str):
    """What `pyinfra INVENTORY ...` does with the file (it records the file it runs in its state)."""
    with ctx_state.use(SimpleNamespace(current_exec_filename=None)):
        return cli_inventory.make_inventory(path)


def _groups(inventory) -> dict[str, list[str]]:
    """Host name -> its groups, without the group pyinfra adds for the file name (`lab`)."""
    return {host.name: sorted(g for g in host.groups if g != "lab") for host in inventory}


def test_without_lab_groups_every_host_is_in_lab_hosts(lab_state: Path) -> None:
    inventory = make_inventory(INVENTORY)
    assert _groups(inventory) == {
        "homelab-lab-1": ["lab_hosts"],
        "homelab-lab-2": ["lab_hosts"],
    }


def test_an_empty_lab_groups_is_the_default(lab_state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_GROUPS", " ")
    assert set(_groups(make_inventory(INVENTORY))["homelab-lab-1"]) == {"lab_hosts"}


def test_lab_groups_place_the_hosts_in_order(lab_state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_GROUPS", "core,gpu")
    inventory = make_inventory(INVENTORY)
    assert _groups(inventory) == {"homelab-lab-1": ["core"], "homelab-lab-2": ["gpu"]}
    # each host keeps its own data, whatever its groups
    ports = {host.name: host.data.ssh_port for host in inventory}
    assert ports == {"homelab-lab-1": 2221, "homelab-lab-2": 2222}
    assert inventory.get_host("homelab-lab-2").data.tailscale_ip == "100.64.0.2"


def test_an_entry_may_name_several_groups(lab_state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_GROUPS", "core+gpu, gpu")
    inventory = make_inventory(INVENTORY)
    assert _groups(inventory) == {
        "homelab-lab-1": ["core", "gpu"],
        "homelab-lab-2": ["gpu"],
    }
    assert inventory.get_host("homelab-lab-1").data.ssh_port == 2221


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("core", "LAB_GROUPS='core' has 1 entry, the lab has 2 host(s)"),
        ("core,gpu,gpu", "has 3 entries, the lab has 2 host(s)"),
        ("core,,gpu", "entry 2 (for host 2) has an empty group name"),
        ("core,", "entry 2 (for host 2) has an empty group name"),
        ("core+,gpu", "entry 1 (for host 1) has an empty group name"),
        ("core,gpu-2", "'gpu-2' is not a group name"),
        ("core,LOGINS", "'LOGINS' is a name this inventory uses itself"),
    ],
)
def test_bad_lab_groups_are_refused_in_one_line(
    lab_state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, spec: str, says: str
) -> None:
    monkeypatch.setenv("LAB_GROUPS", spec)
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(INVENTORY)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("inventories/lab.py: ") and says in err, err
