"""What the lab end-to-end tests share: the real pyinfra CLI against the lab inventory, SSH to a lab
host, and the check that a failed run failed the way a person can act on.

`run_pyinfra_cli(*args, limit=None)` runs `.venv/bin/pyinfra -y --json inventories/lab.py ARGS`
(``limit``: host or group names, comma-separated)
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

ROOT = Path(__file__).resolve().parents[2]
PYINFRA = ROOT / ".venv" / "bin" / "pyinfra"
# what pyinfra writes into the working folder after an "internal exception" (a bug, never expected)
DEBUG_LOG = ROOT / "pyinfra-debug.log"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `lab` for the ssh helper (the repository root is the package root)
from lab.hosts import ssh_command  # noqa: E402


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
                    login: str | None = None, env: dict[str, str] | None = None) -> PyinfraResult:
    """``login`` picks the lab inventory's LAB_LOGIN (default: the inventory's own, `sudo`); ``env``
    adds to the environment (e.g. ``LAB_GROUPS``)."""
    pyinfra = str(PYINFRA) if PYINFRA.exists() else (shutil.which("pyinfra") or "pyinfra")
    # pyinfra's own options first: after `exec --` everything is the remote command.
    # `-y` skips change detection, so a `--dry` run goes without it (its plan then lists changes).
    options = ["--json"] if "--dry" in args else ["-y", "--json"]
    # pyinfra's --limit takes one name or group per flag: "a,b" becomes --limit a --limit b
    limits = [f for name in (limit or "").split(",") if name.strip() for f in ("--limit", name.strip())]
    argv = [*options, *limits, inventory, *args]
    env = {**os.environ, **({"LAB_LOGIN": login} if login else {}), **(env or {})}
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


def ssh(host: dict[str, Any], command: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(ssh_command(host, command), capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"ssh {host['name']} {command!r}: {proc.returncode}\n{proc.stderr}"
    return proc


def assert_clean(result: PyinfraResult) -> None:
    """A run that failed did so as an expected failure: one line on the host, no internal exception,
    no traceback, no pyinfra-debug.log."""
    output = result.stdout + result.stderr
    assert "internal exception" not in output.lower(), result.explain()
    assert "Traceback" not in output, result.explain()
    assert not DEBUG_LOG.exists(), f"{DEBUG_LOG} was written\n{result.explain()}"


def npm_api(host: dict[str, Any], *args: str) -> str:
    """The lab host's NPM API, through tests/lab/npm_probe.py (an SSH tunnel in its own process),
    logged in with the lab's admin password."""
    from lab.data import LAB_DATA

    proc = subprocess.run(
        [str(ROOT / ".venv/bin/python"), str(ROOT / "tests/lab/npm_probe.py"), json.dumps(host), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NPM_PASSWORD": LAB_DATA["npm_admin_password"]},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def verify(limit: str, tmp_path: Path, inventory: str = "inventories/lab.py",
           env: dict[str, str] | None = None, keyword: str | None = None) -> tuple[int, set[str], int, str]:
    """Tier 3 as a user runs it, `pytest tests/verify --inventory INVENTORY --limit LIMIT [-k KEYWORD]`:
    (exit code, names of the failed tests, how many passed, the output's tail)."""
    import time
    import xml.etree.ElementTree as ET

    report = tmp_path / f"verify-{time.monotonic_ns()}.xml"
    python = ROOT / ".venv" / "bin" / "python"
    proc = subprocess.run(
        [str(python if python.exists() else sys.executable), "-m", "pytest", "tests/verify",
         "--inventory", inventory, "--limit", limit, "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
         *(["-k", keyword] if keyword else [])],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})},
    )
    failed, passed = set(), 0
    for case in ET.parse(report).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(case.get("name"))
        elif case.find("skipped") is None:
            passed += 1
    return proc.returncode, failed, passed, proc.stdout[-6000:] + proc.stderr[-2000:]


def webui_auth(host: dict[str, Any], path: str, form: dict) -> tuple[int, dict]:
    """POST ``form`` to Open WebUI's account API (``signin``, ``signup``) inside its container, the form
    on stdin (the lab passwords stay off every command line, as the deploy's do): (status, body)."""
    command = ("docker exec -i open-webui curl -sS --max-time 10 -H 'Content-Type: application/json' "
               f"--data-binary @- -w '\\n%{{http_code}}' http://localhost:8080/api/v1/auths/{path}")
    proc = subprocess.run(ssh_command(host, command), input=json.dumps(form), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    body, status = proc.stdout.rsplit("\n", 1)
    return int(status), json.loads(body) if body.strip() else {}
