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


class _S3Recorder:
    """An HTTP server standing in for an S3 endpoint that has no such bucket: it answers every request
    404 NoSuchKey as S3 does, and keeps each request's method, path, query and headers."""

    def __init__(self):
        import http.server
        import threading

        requests = self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                requests.append((self.command, self.path, dict(self.headers)))
                body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code>'
                        b"<Message>The specified key does not exist.</Message></Error>")
                self.send_response(404)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def _sigv4_signature(method: str, target: str, headers: dict, secret: str) -> tuple[str, str]:
    """(the request's Credential, the AWS Signature V4 that ``secret`` gives it), recomputed from the
    request as the server received it (AWS's documented canonical request)."""
    import hmac
    from urllib.parse import parse_qsl, quote, urlsplit

    auth = headers["Authorization"]
    fields = dict(part.strip().split("=", 1) for part in auth.split(" ", 1)[1].split(","))
    key_id, date, region, service, _ = fields["Credential"].split("/")
    signed = fields["SignedHeaders"].split(";")
    lower = {name.lower(): value for name, value in headers.items()}
    url = urlsplit(target)
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                     for k, v in sorted(parse_qsl(url.query, keep_blank_values=True)))
    canonical = "\n".join([method, url.path or "/", query,
                           "".join(f"{name}:{lower[name].strip()}\n" for name in signed),
                           ";".join(signed), lower["x-amz-content-sha256"]])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", lower["x-amz-date"], scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key_id, hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest() == fields["Signature"]


def test_s3_credentials_in_the_deploys_environment_file_sign_restics_requests(tmp_path):
    """The environment file the deploy writes (backup_steps.env_file) carries the S3 credentials to
    restic: its requests are signed with the key id and the secret (a secret with '/' and '+' as AWS
    issues them), and the failure (no such bucket) is one line without the secret."""
    from deploys.library import backup_steps
    from deploys.library.settings import load_settings

    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY9"
    server = _S3Recorder()
    try:
        settings = load_settings({
            "domain": "home.example.com", "tailscale_allowed_ips": "100.64.0.0/10", "services": "ollama",
            "backup_repository": f"s3:http://127.0.0.1:{server.port}/homelab-backups",
            "backup_password": PASSWORD,
            "backup_credentials": f"AWS_ACCESS_KEY_ID=AKIAHOMELABTEST AWS_SECRET_ACCESS_KEY={secret}",
        }, env_file=None)
        host = Host(tmp_path, tmp_path / "unused")
        env = backup_steps.env_file(settings).replace(backup_steps.PASSWORD_FILE, str(host.conf / "password"))
        (host.conf / "restic.env").write_text(env.replace(backup_steps.CACHE_DIR, str(tmp_path / "cache")))
        result = host.run("init")
    finally:
        server.close()
    assert result.returncode == 1, result
    (line,) = result.stderr.strip().splitlines()
    repository = f"s3:http://127.0.0.1:{server.port}/homelab-backups"
    assert line.startswith(f"homelab-backup: restic init {repository} failed"), line
    assert secret not in result.stdout + result.stderr
    assert server.requests, "restic sent no request"
    for method, target, headers in server.requests:
        key_id, valid = _sigv4_signature(method, target, headers, secret)
        assert key_id == "AKIAHOMELABTEST"
        assert valid, f"{method} {target}: not signed with the configured secret"
