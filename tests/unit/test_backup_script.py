"""The backup script (deploys/library/homelab-backup.sh) run for real: restic against a local repository
in a temporary folder, a real SQLite database in WAL mode held open by a writer while it is backed up.

Skipped where restic or sqlite3 is not installed (lab/setup-machine.sh installs restic).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploys" / "library" / "homelab-backup.sh"
PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.skipif(
    shutil.which("restic") is None or shutil.which("sqlite3") is None,
    reason="restic and sqlite3 are needed (apt-get install restic sqlite3; lab/setup-machine.sh does)",
)


class Host:
    """A host's backup configuration as the deploy writes it, in a temporary folder."""

    def __init__(self, root: Path, repository: Path, password: str = PASSWORD):
        self.root, self.repository = root, repository
        self.conf, self.state, self.cold = root / "conf", root / "state", root / "cold"
        self.webui = self.cold / "ai" / "open-webui" / "data"
        self.npm = self.cold / "services" / "nginx-proxy" / "data"
        for folder in (self.conf, self.webui, self.npm):
            folder.mkdir(parents=True, exist_ok=True)
        (self.conf / "password").write_text(password)
        (self.conf / "restic.env").write_text(
            f"RESTIC_REPOSITORY='{repository}'\n"
            f"RESTIC_PASSWORD_FILE='{self.conf / 'password'}'\nRESTIC_CACHE_DIR='{root / 'cache'}'\n"
        )
        (self.conf / "backup.conf").write_text("HOMELAB_BACKUP_HOST='homelab-1'\nKEEP_DAILY=7\n")
        (self.conf / "sources").write_text(
            f"root {self.cold}\n"
            f"data open-webui critical {self.webui}\n"
            f"data nginx-proxy-manager high {self.npm}\n"
            f"data nginx-proxy-manager high {self.cold / 'services/nginx-proxy/certificates/letsencrypt'}\n"
        )

    def run(self, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "HOMELAB_BACKUP_CONF_DIR": str(self.conf),
               "HOMELAB_BACKUP_STATE_DIR": str(self.state)}
        return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True)

    def restic(self, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "RESTIC_REPOSITORY": str(self.repository),
               "RESTIC_PASSWORD_FILE": str(self.conf / "password"),
               "RESTIC_CACHE_DIR": str(self.root / "cache")}
        return subprocess.run(["restic", *args], env=env, capture_output=True, text=True)


def checksums(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*")) if path.is_file()
    }


def rows(database: Path) -> list[tuple]:
    connection = sqlite3.connect(database)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return connection.execute("SELECT id, body FROM chat ORDER BY id").fetchall()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def made_repository(tmp_path_factory) -> Path:
    """One repository made by the script's `init` (restic's key derivation takes a while), copied per test."""
    root = tmp_path_factory.mktemp("made")
    first = Host(root / "host", root / "repository")
    done = first.run("init")
    assert done.returncode == 0 and "created" in done.stdout, done.stderr
    again = first.run("init")
    assert again.returncode == 0 and "exists and opens with the password" in again.stdout
    return root / "repository"


@pytest.fixture
def host(tmp_path, made_repository):
    shutil.copytree(made_repository, tmp_path / "repository")
    return Host(tmp_path / "host", tmp_path / "repository")


def test_backup_and_restore_keep_a_live_sqlite_database_whole(host):
    database = host.webui / "webui.db"
    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # committed rows stay in webui.db-wal only
    writer.execute("CREATE TABLE chat (id INTEGER PRIMARY KEY, body TEXT)")
    messages = [(f"message {n} " + "x" * 200,) for n in range(500)]
    writer.executemany("INSERT INTO chat (body) VALUES (?)", messages)
    (host.webui / "uploads").mkdir()
    (host.webui / "uploads" / "notes.txt").write_text("a user's upload\n")
    os.chmod(host.webui / "uploads" / "notes.txt", 0o640)
    (host.npm / "keys.json").write_text('{"key": 1}\n')
    backed_up_rows = writer.execute("SELECT id, body FROM chat ORDER BY id").fetchall()
    assert (host.webui / "webui.db-wal").stat().st_size > 0

    done = host.run("run")
    assert done.returncode == 0, done.stderr
    assert (host.state / "last-success").read_text().strip().isdigit()
    files = {k: v for k, v in checksums(host.webui).items() if not k.startswith("webui.db")}

    writer.execute("INSERT INTO chat (body) VALUES ('after the backup')")
    writer.close()
    lost = host.root / "lost-disk"
    shutil.move(host.cold, lost)  # the disk dies

    restored = host.run("restore")
    assert restored.returncode == 0, restored.stderr
    assert not (host.webui / "webui.db-wal").exists()
    assert rows(host.webui / "webui.db") == backed_up_rows
    assert {k: v for k, v in checksums(host.webui).items() if not k.startswith("webui.db")} == files
    assert oct((host.webui / "uploads" / "notes.txt").stat().st_mode & 0o777) == "0o640"
    assert oct(host.webui.parent.stat().st_mode & 0o777) == "0o755"  # made by the restore, as the deploy does
    assert checksums(host.npm) == {"keys.json": hashlib.sha256(b'{"key": 1}\n').hexdigest()}
    # one snapshot per service, tagged with its name and backup class, under the inventory's host name
    snapshots = json.loads(host.restic("snapshots", "--json").stdout)
    assert sorted(tuple(s["tags"]) for s in snapshots) == [
        ("homelab", "service:nginx-proxy-manager", "class:high"),
        ("homelab", "service:open-webui", "class:critical"),
    ]
    assert {s["hostname"] for s in snapshots} == {"homelab-1"}


def test_a_non_empty_folder_is_not_restored_over_unless_told_and_then_kept_beside(host):
    (host.webui / "chat.txt").write_text("backed up")
    assert host.run("run").returncode == 0
    (host.webui / "chat.txt").write_text("newer")
    refused = host.run("restore", "open-webui")
    assert refused.returncode == 4
    assert "restore refused:" in refused.stderr and "restore_overwrite=true" in refused.stderr
    assert (host.webui / "chat.txt").read_text() == "newer"
    done = host.run("restore", "--overwrite", "open-webui")
    assert done.returncode == 0, done.stderr
    assert (host.webui / "chat.txt").read_text() == "backed up"
    (kept,) = host.webui.parent.glob("data.before-restore-*")
    assert (kept / "chat.txt").read_text() == "newer"


def test_a_wrong_password_is_one_line_and_never_an_init(host, tmp_path):
    other = Host(tmp_path / "other", host.repository, password="not the password")
    before = sorted(path.name for path in (host.repository / "keys").iterdir())
    done = other.run("init")
    assert done.returncode == 3
    assert done.stderr.strip().count("\n") == 0
    assert "exists but refuses the password: set HOMELAB_BACKUP_PASSWORD" in done.stderr
    (other.webui / "a").write_text("a")
    failed = other.run("run")
    assert failed.returncode == 3 and not (other.state / "last-success").exists()
    assert sorted(path.name for path in (host.repository / "keys").iterdir()) == before


def test_empty_data_is_not_backed_up_and_a_second_run_adds_almost_nothing(host):
    done = host.run("run")
    assert done.returncode == 0 and "data folders are empty: skipped" in done.stdout
    assert host.restic("snapshots", "--json").stdout.strip() == "[]"
    (host.webui / "big.bin").write_bytes(os.urandom(2_000_000))
    assert host.run("run").returncode == 0
    second = host.run("run")
    assert second.returncode == 0
    added = [line for line in second.stdout.splitlines() if line.startswith("Added to the repo")]
    assert added and all("MiB" not in line for line in added), added
