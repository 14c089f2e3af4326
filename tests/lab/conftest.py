"""End-to-end tests against the local disposable lab hosts, over real SSH, driving the real CLI.

Everything in this folder is marked `lab` (deselect with `-m "not lab"`). A session fixture brings
the lab up once (`python -m lab up --hosts 2`; seconds when it is already up) and leaves it running
for the next session; `python -m lab down` removes it.

The fixtures `run_pyinfra` and `lab_ssh` hand out labkit's `run_pyinfra_cli` and `ssh`; test modules
that need them at module level import them from labkit (this folder is on sys.path).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
LAB_HOSTS = int(os.environ.get("LAB_HOSTS", "2"))

sys.path.insert(0, str(HERE))  # labkit, the helpers the test modules import
from labkit import ROOT, run_pyinfra_cli, ssh  # noqa: E402

# modules that re-place services on the shared lab hosts run after every other lab test
LAST = ("test_multihost.py", "test_backup_restore.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.lab)
    # stable: the rest keep their order, then the LAST ones in that order
    items.sort(key=lambda item: LAST.index(name) + 1 if (name := Path(str(item.fspath)).name) in LAST else 0)


@pytest.fixture(scope="session", autouse=True)
def lab_hosts() -> list[dict[str, Any]]:
    """The lab hosts (entries of .lab/hosts.json), brought up once per session."""
    proc = subprocess.run(
        [sys.executable, "-m", "lab", "up", "--hosts", str(LAB_HOSTS)],
        cwd=ROOT, capture_output=True, text=True, timeout=1800,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"`python -m lab up --hosts {LAB_HOSTS}` failed ({proc.returncode}); a Docker engine is needed "
            f"(`bash lab/setup-machine.sh` as root):\n{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )
    hosts = json.loads((ROOT / ".lab" / "hosts.json").read_text())["hosts"]
    assert len(hosts) >= LAB_HOSTS
    return hosts  # every host the inventory holds (an earlier `up --hosts 3` leaves three)


@pytest.fixture
def run_pyinfra():
    """`run_pyinfra(*args, limit=None, check=True)`: the real pyinfra CLI against the lab inventory."""
    return run_pyinfra_cli


@pytest.fixture
def lab_ssh():
    """`lab_ssh(host, "command", check=True)`: run a command on a lab host over real SSH."""
    return ssh
