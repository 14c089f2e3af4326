"""Disaster recovery, end to end: backups to another machine over SFTP, the host destroyed, a bare one
brought up in its place, restored and deployed, and every backed-up file and database row is back.

Two lab hosts of their own: homelab-lab-3 (the server) and homelab-lab-4 (the backup machine, reached
over SFTP on the lab network as root with the lab's key; never deployed). Timings are printed (`-s`)
for the benchmark report. The lab conftest runs this module last: it adds hosts to the lab.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time

import pytest
from labkit import ROOT, assert_clean, run_pyinfra_cli, ssh

from lab.backups import JOURNAL, added_bytes
from lab.data import OLLAMA_LAB_V2

SERVER = "deploys/server.py"
BACKUP = "deploys/backup.py"
RESTORE = "deploys/restore.py"
VALIDATE = "deploys/validate.py"
PASSWORD = "lab-only-backup-password"  # noqa: S105 (LAB ONLY)
VICTIM, REPOSITORY_HOST = "homelab-lab-3", "homelab-lab-4"
# what is backed up by default (critical, high, medium): NPM's data and certificates, Pi-hole's config,
# ComfyUI's outputs and inputs, Open WebUI's data; ~100 MB written into them so a restore moves something
BACKED_UP = [
    "services/nginx-proxy/data", "services/nginx-proxy/certificates/letsencrypt", "services/pihole/config",
    "ai/comfyui/output", "ai/comfyui/input", "ai/open-webui/data",
]
NOT_BACKED_UP = "ai/ollama/models"  # models: downloadable again (class low)
WEBUI_DB = "/cold-storage/ai/open-webui/data/webui.db"
NPM_DB = "/cold-storage/services/nginx-proxy/data/database.sqlite"
# the NPM stand-in keeps each proxy host as a JSON row (lab/doubles/npm_double.py)
NPM_HOSTS = "SELECT id, json_extract(data, '$.domain_names') FROM proxy_host ORDER BY id"


def _lab_up(count: int) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "lab", "up", "--hosts", str(count)], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((ROOT / ".lab" / "hosts.json").read_text())["hosts"]


def _eth0(host) -> str:
    line = ssh(host, "ip -4 -o addr show dev eth0").stdout.split()
    return line[line.index("inet") + 1].split("/")[0]


def _checksums(host) -> dict[str, str]:
    """sha256 of every file under the backed-up folders, except the live SQLite files (compared by rows)."""
    folders = " ".join(f"/cold-storage/{folder}" for folder in BACKED_UP)
    listing = ssh(host, f"find {folders} -type f ! -name '*.db' ! -name '*.sqlite*' ! -name '*.db-*' "
                        "-print0 | sort -z | xargs -0 -r sha256sum").stdout
    return {path: digest for digest, path in (line.split(None, 1) for line in listing.splitlines())}


def _rows(host, database: str, query: str) -> list[str]:
    return ssh(host, f"sqlite3 {database} {shlex.quote(query)}").stdout.splitlines()


def _added_bytes(host) -> list[int]:
    """Bytes restic added to the repository per service, every backup run so far (from the journal)."""
    return added_bytes(ssh(host, JOURNAL).stdout)


def _backup_runs(host) -> int:
    """How many `restic backup` runs the host's journal holds (none yet on a rebuilt host)."""
    return len(added_bytes(ssh(host, JOURNAL, check=False).stdout))


@pytest.fixture(scope="module")
def recovery(lab_hosts):
    timings: dict[str, float] = {}
    hosts = {h["name"]: h for h in _lab_up(4)}
    victim, store = hosts[VICTIM], hosts[REPOSITORY_HOST]
    # the backup machine admits SFTP (sshd, 2222 in the lab) from the server, as a real one would
    ssh(store, "mkdir -p /srv/restic; if systemctl is-active -q firewalld; then "
               "firewall-cmd -q --add-port=2222/tcp; fi")
    env = {
        "HOMELAB_BACKUP_REPOSITORY": f"sftp://root@{_eth0(store)}:2222//srv/restic",
        "HOMELAB_BACKUP_PASSWORD": PASSWORD,
        "HOMELAB_BACKUP_SSH_KEY": victim["ssh_key"],  # LAB ONLY: the lab's key, authorized for root
    }
    started = time.monotonic()
    first = run_pyinfra_cli(SERVER, limit=VICTIM, env=env, timeout=1500)
    timings["first deploy with backups"] = time.monotonic() - started
    second = run_pyinfra_cli(SERVER, limit=VICTIM, env=env)
    again = run_pyinfra_cli(BACKUP, limit=VICTIM, env=env)

    # known content: ~100 MB of files, a real SQLite database with rows (Open WebUI's), NPM's database
    ssh(victim, "set -e; for f in " + " ".join(BACKED_UP) + "; do mkdir -p /cold-storage/$f; "
                "echo \"known $f\" > /cold-storage/$f/known.txt; done; "
                "head -c 100000000 /dev/urandom > /cold-storage/ai/comfyui/output/large.bin; "
                "mkdir -p /cold-storage/ai/comfyui/output/sub; "
                "echo nested > /cold-storage/ai/comfyui/output/sub/n.txt; "
                "chmod 640 /cold-storage/ai/comfyui/output/sub/n.txt; "
                "chown 1000:1000 /cold-storage/ai/comfyui/output/sub; "
                f"echo model > /cold-storage/{NOT_BACKED_UP}/model.bin; "
                f"sqlite3 {WEBUI_DB} \"INSERT OR REPLACE INTO user (id, name, email, role) VALUES "
                "('u1', 'Ada', 'a@lab', 'admin'), ('u2', 'Bo', 'b@lab', 'user');\"")
    before = {
        "files": _checksums(victim),
        "webui": _rows(victim, WEBUI_DB, "SELECT id, email FROM user ORDER BY id"),
        "npm": _rows(victim, NPM_DB, NPM_HOSTS),
        "owner": ssh(victim, "stat -c '%u:%g %a' /cold-storage/ai/comfyui/output/sub "
                             "/cold-storage/ai/comfyui/output/sub/n.txt").stdout,
    }
    started = time.monotonic()
    run_pyinfra_cli(BACKUP, "--data", "backup_now=true", limit=VICTIM, env=env)
    timings["backup (~100 MB)"] = time.monotonic() - started
    first_added = _added_bytes(victim)
    run_pyinfra_cli(BACKUP, "--data", "backup_now=true", limit=VICTIM, env=env)
    second_added = _added_bytes(victim)[len(first_added):]
    wrong = {**env, "HOMELAB_BACKUP_PASSWORD": "not-the-backup-password"}
    refused = run_pyinfra_cli(BACKUP, limit=VICTIM, env=wrong, check=False)
    preflight = run_pyinfra_cli(VALIDATE, limit=VICTIM, env=wrong, check=False)

    # the disk dies: the host is destroyed and a bare one comes up under the same name
    proc = subprocess.run([sys.executable, "-m", "lab", "down", "--host", VICTIM], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    victim = {h["name"]: h for h in _lab_up(4)}[VICTIM]
    assert ssh(victim, "ls /cold-storage 2>/dev/null | wc -l").stdout.strip() == "0"
    started = time.monotonic()
    restored = run_pyinfra_cli(RESTORE, limit=VICTIM, env=env, timeout=1500)
    timings["restore"] = time.monotonic() - started
    started = time.monotonic()
    rebuilt = run_pyinfra_cli(SERVER, limit=VICTIM, env=env, timeout=1500)
    timings["deploy after the restore"] = time.monotonic() - started
    settled = run_pyinfra_cli(SERVER, limit=VICTIM, env=env)
    # an update on a host with backups: a backup first, then the new image
    backups_before = _backup_runs(victim)
    updated = run_pyinfra_cli("deploys/ollama.py", "--data", f"image_ollama={OLLAMA_LAB_V2}", limit=VICTIM,
                              env=env)
    backups_after = _backup_runs(victim)
    print("\ndisaster recovery timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    print(f"bytes added: first backup {sum(first_added)}, second backup right after {sum(second_added)}")
    return {
        "victim": victim, "first": first, "second": second, "again": again, "before": before,
        "first_added": first_added, "second_added": second_added, "refused": refused,
        "preflight": preflight, "restored": restored, "rebuilt": rebuilt, "settled": settled,
        "updated": updated, "backups_before_update": backups_before, "backups_after_update": backups_after,
    }


def test_a_deploy_with_backups_is_idempotent(recovery):
    assert recovery["second"].changed == 0, recovery["second"].changed_operations()
    assert recovery["again"].changed == 0, recovery["again"].changed_operations()


def test_a_second_backup_right_after_the_first_adds_almost_nothing(recovery):
    assert sum(recovery["first_added"]) > 90_000_000
    assert sum(recovery["second_added"]) < 1_000_000, recovery["second_added"]


def test_a_wrong_password_is_one_clear_line(recovery):
    refused = recovery["refused"]
    assert refused.returncode != 0
    assert_clean(refused)
    assert "not-the-backup-password" not in refused.stdout + refused.stderr
    preflight = recovery["preflight"]
    assert preflight.returncode != 0
    assert re.search(r"backup\s+FAIL", preflight.stderr), preflight.stderr[-3000:]


def test_every_backed_up_file_and_row_is_back_after_the_rebuild(recovery):
    victim, before = recovery["victim"], recovery["before"]
    assert _checksums(victim) == before["files"]
    assert _rows(victim, WEBUI_DB, "SELECT id, email FROM user ORDER BY id") == before["webui"]
    assert _rows(victim, WEBUI_DB, "PRAGMA integrity_check") == ["ok"]
    assert _rows(victim, NPM_DB, NPM_HOSTS) == before["npm"]
    assert _rows(victim, NPM_DB, "PRAGMA integrity_check") == ["ok"]
    assert ssh(victim, "stat -c '%u:%g %a' /cold-storage/ai/comfyui/output/sub "
                       "/cold-storage/ai/comfyui/output/sub/n.txt").stdout == before["owner"]


def test_the_models_are_not_backed_up(recovery):
    gone = ssh(recovery["victim"], f"test -e /cold-storage/{NOT_BACKED_UP}/model.bin", check=False)
    assert gone.returncode != 0


def test_the_rebuilt_host_runs_and_a_second_run_changes_nothing(recovery):
    victim = recovery["victim"]
    states = ssh(victim, "docker ps --format '{{.Names}} {{.Status}}'").stdout
    for name in ("nginx-proxy-manager", "pihole", "ollama", "comfyui", "open-webui"):
        assert re.search(rf"^{name} Up .*\(healthy\)", states, re.M), states
    assert recovery["settled"].changed == 0, recovery["settled"].changed_operations()


def test_an_update_takes_a_backup_before_it_replaces_the_image(recovery):
    changed = list(recovery["updated"].changed_operations())
    backup = ("Compose services | Backup before an update | Backup before the update of ollama: "
              "homelab-backup.service")
    (update,) = [name for name in changed if name.startswith("Compose services | ollama: image ")]
    assert backup in changed and changed.index(backup) < changed.index(update), changed
    assert recovery["backups_after_update"] > recovery["backups_before_update"]  # restic ran again
