"""End-to-end tests against the local disposable lab hosts, over real SSH, driving the real CLI.

Everything in this folder is marked `lab` (deselect with `-m "not lab"`). A session fixture brings
the lab up once (`python -m lab up --hosts 2`; seconds when it is already up) and leaves it running
for the next session; `python -m lab down` removes it.

`run_pyinfra(*args, limit=None)` runs `.venv/bin/pyinfra -y --json inventories/lab.py ARGS`
(no `-y` with `--dry`) from the repository root and parses pyinfra's JSON: with a real run,
`results.totals.success` counts the operations that *changed* something (pyinfra calls a change
"success"), so "zero changed operations" is `result.changed == 0`, strictly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
LAB_HOSTS = int(os.environ.get("LAB_HOSTS", "2"))
PYINFRA = ROOT / ".venv" / "bin" / "pyinfra"

sys.path.insert(0, str(ROOT))  # `lab` for the ssh helper (the repository root is the package root)
from lab.hosts import ssh_command  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.lab)


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


@dataclass
class PyinfraResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    plan: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, Any] | None = None

    @property
    def totals(self) -> dict[str, int]:
        assert self.results is not None, "no results: a --dry run, or the run failed early"
        return self.results["totals"]

    @property
    def changed(self) -> int:
        """Operations (× hosts) that changed something in a real run."""
        return self.totals["success"]

    @property
    def errors(self) -> int:
        return self.totals["error"]

    @property
    def no_change(self) -> int:
        return self.totals["no_change"]

    def changed_operations(self) -> dict[str, list[str]]:
        """Operation name -> hosts where it changed something (real run)."""
        assert self.results is not None
        return {op["name"]: op["success"] for op in self.results["operations"] if op["success"]}

    def planned_changes(self) -> dict[str, list[str]]:
        """Operation name -> hosts it would change, as the plan (and `--dry`) says."""
        return {
            op["name"]: op["hosts_with_change"] + op.get("hosts_with_conditional_change", [])
            for op in self.plan
            if op["hosts_with_change"] or op.get("hosts_with_conditional_change")
        }

    def explain(self) -> str:
        head = f"pyinfra {' '.join(self.args)} -> {self.returncode}"
        return f"{head}\n{self.stdout[-4000:]}\n{self.stderr[-8000:]}"


def _parse_json(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{") and '"plan"' in line:
            return json.loads(line)
    return None


def run_pyinfra_cli(*args: str, limit: str | None = None, check: bool = True,
                    inventory: str = "inventories/lab.py", timeout: float = 1800,
                    login: str | None = None) -> PyinfraResult:
    """``login`` picks the lab inventory's LAB_LOGIN (default: the inventory's own, `sudo`)."""
    pyinfra = str(PYINFRA) if PYINFRA.exists() else (shutil.which("pyinfra") or "pyinfra")
    # pyinfra's own options first: after `exec --` everything is the remote command.
    # `-y` skips change detection, so a `--dry` run goes without it (its plan then lists changes).
    options = ["--json"] if "--dry" in args else ["-y", "--json"]
    argv = [*options, *(["--limit", limit] if limit else []), inventory, *args]
    env = {**os.environ, **({"LAB_LOGIN": login} if login else {})}
    proc = subprocess.run([pyinfra, *argv], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=env)
    parsed = _parse_json(proc.stdout)
    result = PyinfraResult(argv, proc.returncode, proc.stdout, proc.stderr)
    if parsed is not None:
        result.plan = parsed.get("plan") or []
        result.results = parsed.get("results")
    if check:
        assert proc.returncode == 0, result.explain()
        assert parsed is not None, "no JSON from pyinfra --json\n" + result.explain()
        if result.results is not None:
            assert result.errors == 0, result.explain()
    return result


@pytest.fixture
def run_pyinfra():
    """`run_pyinfra(*args, limit=None, check=True)`: the real pyinfra CLI against the lab inventory."""
    return run_pyinfra_cli


def ssh(host: dict[str, Any], command: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(ssh_command(host, command), capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"ssh {host['name']} {command!r}: {proc.returncode}\n{proc.stderr}"
    return proc


@pytest.fixture
def lab_ssh():
    """`lab_ssh(host, "command", check=True)`: run a command on a lab host over real SSH."""
    return ssh
