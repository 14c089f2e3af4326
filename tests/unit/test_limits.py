"""`--limit` names that match nothing stop the run with one line; comma-separated names are split."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pyinfra_cli.cli import _get_inventory_pattern_matches as pyinfra_matches

from deploys.library.limits import NoHostMatches, strict_matches

ROOT = Path(__file__).resolve().parents[2]
PYINFRA = ROOT / ".venv" / "bin" / "pyinfra"


class Host:
    def __init__(self, name: str, groups: tuple[str, ...] = ()):
        self.name = name
        self.groups = groups


class Inventory(list):
    def get_group(self, name):
        from pyinfra.api.exceptions import NoGroupError

        found = [host for host in self if name in host.groups]
        if not found:
            raise NoGroupError(name)
        return found


INVENTORY = Inventory([Host("server-a", ("core",)), Host("server-b", ("gpu",))])


def test_names_groups_globs_and_commas():
    matches = strict_matches(pyinfra_matches)
    assert [h.name for h in matches(INVENTORY, ["server-a"], "--limit")] == ["server-a"]
    assert [h.name for h in matches(INVENTORY, ["server-a,gpu"], "--limit")] == ["server-a", "server-b"]
    assert sorted(h.name for h in matches(INVENTORY, ["server-*"], "--limit")) == ["server-a", "server-b"]


def test_a_name_that_matches_nothing_is_an_error_naming_it():
    matches = strict_matches(pyinfra_matches)
    expected = r"--limit server-c: no host or group .* \(hosts: server-a, server-b\)"
    with pytest.raises(NoHostMatches, match=expected):
        matches(INVENTORY, ["server-a,server-c"], "--limit")


def test_the_cli_stops_before_contacting_any_host(tmp_path):
    inventory = tmp_path / "inventory.py"
    inventory.write_text('hosts = [("@local", {})]\n')
    deploy = tmp_path / "deploy.py"
    deploy.write_text("raise SystemExit('the deploy file must not be loaded')\n")
    proc = subprocess.run([str(PYINFRA), "-y", "--limit", "no-such-host", str(inventory), str(deploy)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    said = "--limit no-such-host: no host or group of the inventory is called that (hosts: @local)"
    assert said in proc.stderr
    assert "Traceback" not in proc.stderr and "internal exception" not in proc.stderr
