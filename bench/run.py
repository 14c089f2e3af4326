"""Deploy benchmark against the local lab hosts: `python -m bench.run` (or `python bench/run.py`).

Measures, with the real pyinfra CLI over real SSH:
  - the first full `deploys/server.py` on one host (its services and network removed first; the
    stand-in images are already loaded, as in the original's 62 s figure),
  - the no-op re-run, `--dry`, and `deploys/validate.py` on one host,
  - the no-op re-run on 1, 2 and 4 hosts at once,
  - the no-op re-run with pyinfra's stock `@ssh` connector (no TCP_NODELAY) for the before/after.
Each figure is the median wall time of RUNS runs. Remote commands are counted from pyinfra's own
accounting: in a separate `--debug` run, every `Running command on` line (fact or operation command)
and every `Attempting upload` line (file transfer) for the first host.

Writes bench/results/README.md (table + machine) and prints the table.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYINFRA = str(ROOT / ".venv" / "bin" / "pyinfra")
RESULTS = ROOT / "bench" / "results"
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SERVER = "deploys/server.py"
# back to a host with Docker and firewalld installed but no zone, network, projects or data:
# what the original's "networking + five service roles, images present" figure started from
WIPE = (
    'for d in /opt/homelab/*/; do [ -f "$d/compose.yaml" ] && docker compose --project-directory "$d" '
    "down --remove-orphans; done; rm -rf /opt/homelab /cold-storage/*; "
    "docker network rm self-hosted >/dev/null 2>&1; "
    "firewall-cmd --permanent --delete-zone=self-hosted && firewall-cmd --reload; "
    "systemctl reset-failed docker; systemctl restart docker; true"
)


def lab_hosts(count: int) -> list[dict]:
    subprocess.run([sys.executable, "-m", "lab", "up", "--hosts", str(count)], cwd=ROOT, check=True)
    return json.loads((ROOT / ".lab" / "hosts.json").read_text())["hosts"]


def ssh(host: dict, command: str) -> None:
    sys.path.insert(0, str(ROOT))
    from lab.hosts import ssh_command

    subprocess.run(ssh_command(host, command), check=False, capture_output=True, timeout=600)


def limit_for(hosts: list[dict], connector: str = "homelab") -> list[str]:
    return [f"@{connector}/{h['name']}" for h in hosts]


def pyinfra(
    args: list[str], limit: str, connector: str = "homelab", debug: bool = False
) -> tuple[float, str]:
    env = {**os.environ, "HOMELAB_LAB_CONNECTOR": connector}
    yes = [] if "--dry" in args else ["-y"]
    limits = [option for name in limit for option in ("--limit", name)]
    argv = [PYINFRA, *yes, *(["--debug"] if debug else []), *limits, "inventories/lab.py", *args]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout + proc.stderr


def counts(args: list[str], limit: list[str], first: str, connector: str = "homelab") -> dict[str, int]:
    _, output = pyinfra(args, limit, connector, debug=True)
    hosts = len(limit)
    commands = len(re.findall(rf"Running command on {re.escape(first)}:", output))
    uploads = len(re.findall(r"Attempting upload of ", output)) // hosts
    total = re.search(r"Grand total\s+(\d+)\s+(\S+)", output)
    operations = int(total.group(1)) // hosts if total else 0
    if args == [SERVER]:
        assert operations > 0 and f"[{first}]" in output, f"no operations ran on {first}:\n{output[-2000:]}"
    changed = 0 if not total or total.group(2) == "-" else int(total.group(2))
    return {"commands": commands, "uploads": uploads, "operations": operations, "changed": changed}


def median(args: list[str], limit: list[str], connector: str = "homelab", before=None) -> float:
    times = []
    for _ in range(RUNS):
        if before:
            before()
        times.append(pyinfra(args, limit, connector)[0])
    return statistics.median(times)


def main() -> int:
    hosts = lab_hosts(4)
    one, two, four = hosts[:1], hosts[:2], hosts[:4]
    first = f"{one[0]['name']}"
    pyinfra([SERVER], limit_for(four))  # every host deployed: the no-op rows start from a match
    rows = []

    def row(label: str, args: list[str], group: list[dict], connector: str = "homelab", before=None):
        wall = median(args, limit_for(group, connector), connector, before)
        name = f"@{connector}/{group[0]['name']}"
        if before:
            before()
        found = counts(args, limit_for(group, connector), name, connector)
        rows.append({"label": label, "hosts": len(group), "wall_s": round(wall, 2), **found})
        print(rows[-1], flush=True)

    row(
        "first full deploy (networking + services, images present)",
        [SERVER],
        one,
        before=lambda: ssh(one[0], WIPE),
    )
    pyinfra([SERVER], limit_for(one))
    row("no-op re-run", [SERVER], one)
    row("--dry", [SERVER, "--dry"], one)
    row("validate.py", ["deploys/validate.py"], one)
    row("no-op re-run", [SERVER], two)
    row("no-op re-run", [SERVER], four)
    row("no-op re-run, stock @ssh (no TCP_NODELAY)", [SERVER], one, connector="ssh")
    write_report(rows, first)
    return 0


def write_report(rows: list[dict], first: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    lines = [
        "# Deploy benchmark",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `python -m bench.run` against the local lab hosts "
        "(Debian 12 containers, systemd, sshd, firewalld, Docker 20.10, stand-in service images).",
        f"Machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}. Wall time: median of {RUNS} runs, `-y`.",
        "Remote commands: pyinfra's own accounting in a separate `--debug` run: `Running command on` lines "
        f"for one host ({first}), facts and operations together; uploads: `Attempting upload` lines "
        "per host.",
        "",
        "| run | hosts | wall (s) | operations per host | remote commands per host | uploads per host "
        "| changed |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        ops = "(plan only)" if r["label"] == "--dry" else r["operations"]
        lines.append(
            f"| {r['label']} | {r['hosts']} | {r['wall_s']} | {ops} | {r['commands']} | "
            f"{r['uploads']} | {r['changed']} |"
        )
    (RESULTS / "README.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
