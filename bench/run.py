"""Deploy benchmark against the local lab hosts: `python -m bench.run` (or `python bench/run.py`).

Measures, with the real pyinfra CLI over real SSH:
  - the first full `deploys/server.py` on one host (its services and network removed first; the
    stand-in images already pulled from the lab registry, as in the original's 62 s figure), and the
    same from a host without any image (every image pulled from the lab registry in the run),
  - the update of one service (`deploys/ollama.py` with a new image setting: the pull, the pin, the
    container recreated and healthy), from a host that does not hold the new image,
  - the no-op re-run, `--dry`, and `deploys/validate.py` on one host,
  - the no-op re-run on 1, 2 and 4 hosts at once,
  - the no-op re-run with pyinfra's stock `@ssh` connector (no TCP_NODELAY) for the before/after.
  - backups on one host: the first backup of a few hundred MB of service data (BENCH_BACKUP_MB, 300 by
    default) into a restic repository on the host, a second one right after (deduplication), and the
    restore of that service, its data checked file by file afterwards.
Each deploy figure is the median wall time of RUNS runs. Remote commands are counted from pyinfra's own
accounting: in a separate `--debug` run, every `Running command on` line (fact or operation command)
and every `Attempting upload` line (file transfer) for the first host. The backup figures are single
runs (a first backup happens once), with the bytes restic reports adding to the repository.

BENCH_ONLY=deploy or BENCH_ONLY=backup runs one part and keeps the other part's last figures.
Writes bench/results/README.md (tables + machine) and results.json, and prints the tables.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from deploys.library.catalog import selectable_services  # noqa: E402
from lab.backups import JOURNAL, added_bytes  # noqa: E402
from lab.data import LAB_IMAGES, OLLAMA_LAB_V2  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PYINFRA = str(ROOT / ".venv" / "bin" / "pyinfra")
RESULTS = ROOT / "bench" / "results"
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SERVER = "deploys/server.py"
BACKUP = "deploys/backup.py"
RESTORE = "deploys/restore.py"
# the backup figures: a repository on the host itself (restic's own speed, no network), Open WebUI's
# data folder grown by BACKUP_MB of incompressible files
BACKUP_MB = int(os.environ.get("BENCH_BACKUP_MB", "300"))
BACKUP_REPOSITORY = "/srv/bench-restic"
BACKUP_DATA = "/cold-storage/ai/open-webui/data"
BACKUP_ENV = {"HOMELAB_BACKUP_REPOSITORY": BACKUP_REPOSITORY,
              "HOMELAB_BACKUP_PASSWORD": "bench-only-backup-password"}  # noqa: S105 (LAB ONLY)
CHECKSUMS = f"cd {BACKUP_DATA} && find . -type f ! -name '*.db*' -print0 | sort -z | xargs -0 -r sha256sum"
# back to a host with Docker and firewalld installed but no zone, network, projects or data:
# what the original's "networking + five service roles, images present" figure started from
WIPE = (
    'for d in /opt/homelab/*/; do [ -f "$d/compose.yaml" ] && docker compose --project-directory "$d" '
    "down --remove-orphans; done; rm -rf /opt/homelab /cold-storage/*; "
    "docker network rm self-hosted >/dev/null 2>&1; "
    "firewall-cmd --permanent --delete-zone=self-hosted && firewall-cmd --reload; "
    "systemctl reset-failed docker; systemctl restart docker; true"
)

# the five services' images present: pulled from the lab registry (a no-op when the host holds them)
PULL = "; ".join(f"docker pull -q {LAB_IMAGES[service]}" for service in selectable_services())
# no image at all (WIPE has removed every container first)
NO_IMAGES = "docker image prune --all --force >/dev/null"
OLLAMA = "deploys/ollama.py"
MONITORING = "deploys/monitoring.py"
# the tier files whose no-op re-runs are listed one by one (each reads its host in one command)
TIERS = ("deploys/infrastructure.py", "deploys/services.py", "deploys/ai.py", "deploys/proxy.py",
         "deploys/models.py", "deploys/update.py")


def lab_hosts(count: int) -> list[dict]:
    subprocess.run([sys.executable, "-m", "lab", "up", "--hosts", str(count)], cwd=ROOT, check=True)
    return json.loads((ROOT / ".lab" / "hosts.json").read_text())["hosts"]


def ssh(host: dict, command: str, check: bool = False) -> str:
    sys.path.insert(0, str(ROOT))
    from lab.hosts import ssh_command

    proc = subprocess.run(ssh_command(host, command), capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise SystemExit(f"{host['name']}: {command} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def limit_for(hosts: list[dict], connector: str = "homelab") -> list[str]:
    """The inventory's names of ``hosts``: inventories/lab.py names a host by its lab name with the
    project's ``@homelab`` connector, and ``@<connector>/<name>`` with another (HOMELAB_LAB_CONNECTOR)."""
    return [h["name"] if connector == "homelab" else f"@{connector}/{h['name']}" for h in hosts]


def pyinfra(
    args: list[str], limit: str, connector: str = "homelab", debug: bool = False, env: dict | None = None
) -> tuple[float, str]:
    elapsed, output, _ = timed_pyinfra(args, limit, connector, debug, env)
    return elapsed, output


def timed_pyinfra(
    args: list[str], limit: list[str], connector: str = "homelab", debug: bool = False,
    env: dict | None = None,
) -> tuple[float, str, float]:
    """(wall seconds, output, the controller's CPU seconds: pyinfra's user + system time)."""
    env = {**os.environ, "HOMELAB_LAB_CONNECTOR": connector, **(env or {})}
    yes = [] if "--dry" in args else ["-y"]
    limits = [option for name in limit for option in ("--limit", name)]
    argv = [PYINFRA, *yes, *(["--debug"] if debug else []), *limits, "inventories/lab.py", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout + proc.stderr, cpu


def counts(args: list[str], limit: list[str], first: str, connector: str = "homelab",
           env: dict | None = None) -> dict[str, int]:
    _, output = pyinfra(args, limit, connector, debug=True, env=env)
    hosts = len(limit)
    commands = len(re.findall(rf"Running command on {re.escape(first)}:", output))
    uploads = len(re.findall(r"Attempting upload of ", output)) // hosts
    total = re.search(r"Grand total\s+(\d+)\s+(\S+)", output)
    operations = int(total.group(1)) // hosts if total else 0
    if args[0] == SERVER and "--dry" not in args:
        assert operations > 0 and f"[{first}]" in output, f"no operations ran on {first}:\n{output[-2000:]}"
    changed = 0 if not total or total.group(2) == "-" else int(total.group(2))
    return {"commands": commands, "uploads": uploads, "operations": operations, "changed": changed}


def median(args: list[str], limit: list[str], connector: str = "homelab", before=None,
           env: dict | None = None) -> tuple[float, float]:
    """(median wall seconds, median controller CPU seconds) of RUNS runs."""
    times, cpus = [], []
    for _ in range(RUNS):
        if before:
            before()
        wall, _, cpu = timed_pyinfra(args, limit, connector, env=env)
        times.append(wall)
        cpus.append(cpu)
    return statistics.median(times), statistics.median(cpus)


def main() -> int:
    only = os.environ.get("BENCH_ONLY", "")
    if only not in ("", "deploy", "backup"):
        raise SystemExit(f"BENCH_ONLY={only!r}: expected deploy or backup (or unset: both)")
    previous = _previous()
    # this run's own lists of reads (facts/reads.py): the first run of each deploy file learns its list
    os.environ["HOMELAB_READ_AHEAD"] = tempfile.mkdtemp(prefix="bench-read-ahead-")
    hosts = lab_hosts(1 if only == "backup" else 4)
    first = hosts[0]["name"]
    results = {"deploy": previous.get("deploy", {}), "backup": previous.get("backup", {})}
    if only != "backup":
        results["deploy"] = {"run": _now(), "first": first, "rows": deploy_rows(hosts)}
    if only != "deploy":
        results["backup"] = {"run": _now(), "rows": backup_rows(hosts[0])}
    write_report(results)
    return 0


def _now() -> str:
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"


def _previous() -> dict:
    """The last report's figures (results.json), to keep the part a BENCH_ONLY run leaves out."""
    try:
        found = json.loads((RESULTS / "results.json").read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def backup_rows(host: dict) -> list[dict]:
    """Backups on one host: the service data grown by BACKUP_MB of incompressible files, backed up
    (first, then right after), then restored over itself; every file is compared afterwards."""
    limit = limit_for([host])
    pyinfra([SERVER], limit)
    ssh(host, f"rm -rf {BACKUP_REPOSITORY} {BACKUP_DATA}/bench {BACKUP_DATA}.before-restore-*; "
              "journalctl --rotate -q; journalctl --vacuum-time=1s -q -u homelab-backup.service; true")
    pyinfra([BACKUP], limit, env=BACKUP_ENV)  # restic, the repository and the timers: not timed
    ssh(host, f"set -e; mkdir -p {BACKUP_DATA}/bench; for i in $(seq 1 {BACKUP_MB // 10}); do "
              f"head -c 10485760 /dev/urandom > {BACKUP_DATA}/bench/blob-$i; done", check=True)
    before = ssh(host, CHECKSUMS, check=True)
    size = int(ssh(host, f"du -sb {BACKUP_DATA} | cut -f1", check=True))
    rows = []
    for label in ("first backup", "second backup right after (nothing changed)"):
        seen = len(added_bytes(ssh(host, JOURNAL)))
        wall, _ = pyinfra([BACKUP, "--data", "backup_now=true"], limit, env=BACKUP_ENV)
        added = sum(added_bytes(ssh(host, JOURNAL))[seen:])
        rows.append({"label": label, "data_bytes": size, "wall_s": round(wall, 2), "added_bytes": added})
        print(rows[-1], flush=True)
    wall, _ = pyinfra([RESTORE, "--data", "restore_services=open-webui", "--data", "restore_overwrite=true"],
                      limit, env=BACKUP_ENV)
    after = ssh(host, CHECKSUMS, check=True)
    if after != before or not before.strip():
        raise SystemExit("the restored data differs from what was backed up")
    rows.append({"label": "restore (Open WebUI stopped, data restored and checked, started)",
                 "data_bytes": size, "wall_s": round(wall, 2), "added_bytes": None})
    print(rows[-1], flush=True)
    # leave the host as the deploy rows expect it: no backup data, repository or timers
    ssh(host, f"rm -rf {BACKUP_REPOSITORY} {BACKUP_DATA}/bench {BACKUP_DATA}.before-restore-*; "
              "systemctl disable --now homelab-backup.timer homelab-backup-check.timer; true")
    return rows


def deploy_rows(hosts: list[dict]) -> list[dict]:
    one, two, four = hosts[:1], hosts[:2], hosts[:4]
    pyinfra([SERVER], limit_for(four))  # every host deployed: the no-op rows start from a match
    rows = []

    def row(label: str, args: list[str], group: list[dict], connector: str = "homelab", before=None,
            env: dict | None = None, tier: str | None = None, learn: bool = True):
        names = limit_for(group, connector)
        if learn and not before:  # the run before lists its reads (facts/reads.py), as any run does
            pyinfra(args, names, connector, env=env)
        wall, cpu = median(args, names, connector, before, env)
        if before:
            before()
        found = counts(args, names, names[0], connector, env)
        rows.append({"label": label, "hosts": len(group), "wall_s": round(wall, 2),
                     "cpu_per_host_s": round(cpu / len(group), 2), "tier": tier, **found})
        print(rows[-1], flush=True)

    row(
        "first full deploy (networking + services, images present)",
        [SERVER],
        one,
        before=lambda: ssh(one[0], f"{WIPE}; {PULL}"),
    )
    row(
        "first full deploy (networking + services, no image on the host: all pulled)",
        [SERVER],
        one,
        before=lambda: ssh(one[0], f"{WIPE}; {NO_IMAGES}"),
    )
    pyinfra([SERVER], limit_for(one))

    def back_to_the_default() -> None:  # Ollama on its default image again, the new one not held
        pyinfra([OLLAMA], limit_for(one))
        ssh(one[0], f"docker image rm {OLLAMA_LAB_V2} >/dev/null 2>&1; true")

    row("update of one service (Ollama: pull, pin, recreate, healthy)",
        [OLLAMA, "--data", f"image_ollama={OLLAMA_LAB_V2}"], one, before=back_to_the_default)
    pyinfra([SERVER], limit_for(one))
    row("no-op re-run", [SERVER], one, tier="server")
    row("no-op re-run, no list of reads yet (HOMELAB_READ_AHEAD=off)", [SERVER], one,
        env={"HOMELAB_READ_AHEAD": "off"}, learn=False)
    row("--dry", [SERVER, "--dry"], one)
    row("validate.py", ["deploys/validate.py"], one)
    row("pyinfra's own start, connection and one command (`exec -- true`)", ["exec", "--", "true"], one,
        learn=False)
    for tier in TIERS:
        row(f"no-op re-run of {tier}", [tier], one, tier=tier)
    # the tiers added later, on: backups with a repository on the host, monitoring on the first host
    ssh(one[0], f"rm -rf {BACKUP_REPOSITORY}")
    pyinfra([BACKUP], limit_for(one), env=BACKUP_ENV)
    row(f"no-op re-run of {BACKUP} (a repository configured)", [BACKUP], one, env=BACKUP_ENV, tier=BACKUP)
    ssh(one[0], f"rm -rf {BACKUP_REPOSITORY}; "
                "systemctl disable --now homelab-backup.timer homelab-backup-check.timer; true")
    watched = {"LAB_MONITORING": one[0]["name"]}
    pyinfra([MONITORING], limit_for(one), env=watched)
    row(f"no-op re-run of {MONITORING} (monitoring on)", [MONITORING], one, env=watched, tier=MONITORING)
    row("no-op re-run of deploys/server.py (monitoring on)", [SERVER], one, env=watched)
    pyinfra([MONITORING], limit_for(one))  # off again: the set taken down, its data kept
    row("no-op re-run", [SERVER], two)
    row("no-op re-run", [SERVER], four)
    row("no-op re-run, stock @ssh (no TCP_NODELAY)", [SERVER], one, connector="ssh")
    rows.append(verify_row(one[0]))
    print(rows[-1], flush=True)
    return rows


def verify_row(host: dict) -> dict:
    """Tier 3 on one host (`pytest tests/verify`), median wall time of RUNS runs, and its test count."""
    times, passed = [], 0
    for _ in range(RUNS):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "tests/verify", "--inventory",
                               "inventories/lab.py", "--limit", host["name"], "-q", "-p", "no:cacheprovider"],
                              cwd=ROOT, capture_output=True, text=True, timeout=600)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"tests/verify failed on {host['name']}:\n{proc.stdout[-3000:]}")
        found = re.search(r"(\d+) passed", proc.stdout)
        passed = int(found.group(1)) if found else 0
    return {"label": f"tests/verify ({passed} tests)", "hosts": 1,
            "wall_s": round(statistics.median(times), 2),
            "cpu_per_host_s": None, "tier": None, "commands": None, "uploads": None, "operations": None,
            "changed": None}


def _find(rows: list[dict], label: str, hosts: int = 1) -> dict | None:
    return next((r for r in rows if r["label"].startswith(label) and r["hosts"] == hosts), None)


def targets(rows: list[dict]) -> list[str]:
    """Issue 21's targets beside what this run measured."""
    noop, dry = _find(rows, "no-op re-run"), _find(rows, "--dry")
    validate, verify = _find(rows, "validate.py"), _find(rows, "tests/verify")
    start, four = _find(rows, "pyinfra's own start"), _find(rows, "no-op re-run", 4)
    tiers = [r for r in rows if r.get("tier")]
    if not (noop and dry and validate and verify and start and four):
        return ["(targets: rows missing from this run)"]

    def line(what: str, target: str, measured: str, met: bool) -> str:
        return f"| {what} | {target} | {measured} | {'met' if met else 'not met'} |"

    widest = max(r["commands"] for r in tiers) if tiers else 0
    return [
        "Targets (issue 21), measured in this run:",
        "",
        "| what | target | measured | |",
        "| --- | --- | --- | --- |",
        line("no-op re-run, 1 host: wall", "≤ 1.0 s", f"{noop['wall_s']} s", noop["wall_s"] <= 1.0),
        line("no-op re-run, 1 host: remote commands, uploads", "≤ 8, 0",
             f"{noop['commands']}, {noop['uploads']}", noop["commands"] <= 8 and noop["uploads"] == 0),
        line("--dry: wall", "≤ 1.0 s", f"{dry['wall_s']} s", dry["wall_s"] <= 1.0),
        line("--dry: remote commands, uploads", "≤ 8, 0", f"{dry['commands']}, {dry['uploads']}",
             dry["commands"] <= 8 and dry["uploads"] == 0),
        line("validate.py: wall", "≤ 0.8 s", f"{validate['wall_s']} s", validate["wall_s"] <= 0.8),
        line("tests/verify, 1 host: wall", "≤ 3 s", f"{verify['wall_s']} s", verify["wall_s"] <= 3.0),
        line("each tier's no-op re-run: remote commands", "≤ 1 per subject",
             ", ".join(f"{r['tier'].removeprefix('deploys/')} {r['commands']}" for r in tiers), widest <= 1),
        line("4 hosts vs 1: controller CPU per host", "flat",
             f"{four['cpu_per_host_s']} s vs {noop['cpu_per_host_s']} s",
             four["cpu_per_host_s"] <= noop["cpu_per_host_s"] * 1.2),
        line("4 hosts vs 1: remote commands per host", "flat", f"{four['commands']} vs {noop['commands']}",
             four["commands"] <= noop["commands"]),
        "",
        f"The floor under every wall time here: pyinfra's own start, connection and one remote command "
        f"(`pyinfra … exec -- true`) took {start['wall_s']} s ({start['cpu_per_host_s']} s of CPU) in this "
        "run.",
    ]


def write_report(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    deploy, backup = results["deploy"], results["backup"]
    lines = [
        "# Deploy benchmark",
        "",
        "Run with `python -m bench.run` against the local lab hosts (Debian 12 containers, systemd, sshd, "
        "firewalld, Docker 20.10, stand-in service images, restic 0.14).",
        f"Machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}.",
        "",
        "## Deploy",
        "",
    ]
    if deploy:
        lines += [
            f"Run {deploy['run']}. Wall time: median of {RUNS} runs, `-y`, each after a run that listed its "
            "reads (facts/reads.py). Controller CPU: pyinfra's user + system time (median), per host. Remote "
            "commands: pyinfra's own accounting in a separate `--debug` run: `Running command on` lines for "
            f"one host ({deploy['first']}), facts and operations together; uploads: `Attempting upload` "
            "lines per host.",
            "",
            *targets(deploy["rows"]),
            "",
            "| run | hosts | wall (s) | controller CPU per host (s) | operations per host "
            "| remote commands per host | uploads per host | changed |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in deploy["rows"]:
            ops = "(plan only)" if r["label"] == "--dry" else r["operations"]
            shown = {key: "—" if r.get(key) is None else r[key]
                     for key in ("cpu_per_host_s", "commands", "uploads", "changed")}
            lines.append(
                f"| {r['label']} | {r['hosts']} | {r['wall_s']} | {shown['cpu_per_host_s']} | "
                f"{'—' if ops is None else ops} | {shown['commands']} | {shown['uploads']} | "
                f"{shown['changed']} |"
            )
    else:
        lines.append("(not run yet: `BENCH_ONLY=deploy python -m bench.run`)")
    lines += ["", "## Backups", ""]
    if backup:
        lines += [
            f"Run {backup['run']}. One host; the repository is a local folder on it (`{BACKUP_REPOSITORY}`), "
            "so the figures are restic's own work (reading, chunking, encrypting, writing) without a "
            "network in between. The data: Open WebUI's data folder with incompressible files added. "
            "Each figure is the wall time of the deploy file that does it (`deploys/backup.py --data "
            "backup_now=true`, `deploys/restore.py --data restore_services=open-webui --data "
            "restore_overwrite=true`), pyinfra's start and facts included; single runs.",
            "",
            "| run | service data (MB) | wall (s) | added to the repository (MB) |",
            "| --- | ---: | ---: | ---: |",
        ]
        for r in backup["rows"]:
            added = "—" if r["added_bytes"] is None else f"{r['added_bytes'] / 1e6:.3f}"
            lines.append(f"| {r['label']} | {r['data_bytes'] / 1e6:.0f} | {r['wall_s']} | {added} |")
    else:
        lines.append("(not run yet: `BENCH_ONLY=backup python -m bench.run`)")
    (RESULTS / "README.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
