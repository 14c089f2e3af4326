"""Record the restic facts' real output (restic 0.14, Debian 12) against local repositories in /tmp.

    sudo .venv/bin/python tests/facts/recorded/restic-0.14/record.py

Writes tests/facts/restic.<Fact>/recorded-*.json: the command exactly as the fact builds it, run by
sh here, its output lines, and what the fact makes of them (read them before committing).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))

from facts.restic import BackupStatus, ResticRepository, ResticSnapshots  # noqa: E402

WORK = Path("/tmp/homelab-restic-record")
SCRIPT = ROOT / "deploys" / "library" / "homelab-backup.sh"


def sh(command: str, env: dict | None = None) -> list[str]:
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env)
    return done.stdout.splitlines()


def write(fact, name: str, arg: dict, source: str) -> None:
    command = fact.command(**arg)
    output = sh(command)
    folder = ROOT / "tests" / "facts" / f"restic.{type(fact).__name__}"
    folder.mkdir(parents=True, exist_ok=True)
    case = {
        "_source": f"recorded: restic {version()} on Debian 12, {source}",
        "arg": arg,
        "command": command,
        "output": output,
        "fact": fact.process(output),
    }
    (folder / f"recorded-{name}.json").write_text(json.dumps(case, indent=2) + "\n")


def version() -> str:
    return sh("restic version")[0].split()[1]


def env_file(name: str, repository: Path, password: str) -> str:
    (WORK / f"{name}.password").write_text(password)
    path = WORK / f"{name}.env"
    path.write_text(
        f"RESTIC_REPOSITORY='{repository}'\nRESTIC_PASSWORD_FILE='{WORK / (name + '.password')}'\n"
        f"RESTIC_CACHE_DIR='{WORK / 'cache'}'\n"
    )
    return str(path)


def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    repo = WORK / "repo"
    good = env_file("good", repo, "correct horse battery")
    wrong = env_file("wrong", repo, "not the password")
    write(ResticRepository(), "no-repository-yet", {"env_file": good}, "no repository at the path yet")
    write(ResticSnapshots(), "no-repository-yet", {"env_file": good}, "no repository at the path yet")
    sh(f"set -a; . {good}; restic init")
    write(ResticRepository(), "opens", {"env_file": good}, "a repository made by restic init")
    write(ResticSnapshots(), "empty", {"env_file": good}, "a repository without snapshots")
    write(ResticRepository(), "wrong-password", {"env_file": wrong}, "the repository, another password")
    write(ResticSnapshots(), "wrong-password", {"env_file": wrong}, "the repository, another password")
    write(ResticRepository(), "no-config", {"env_file": str(WORK / "absent.env")}, "no environment file")
    sftp = WORK / "sftp.env"
    sftp.write_text(
        "RESTIC_REPOSITORY='sftp:backup@127.0.0.1:/srv/restic'\n"
        f"RESTIC_PASSWORD_FILE='{WORK / 'good.password'}'\n"
        "HOMELAB_SFTP_COMMAND='ssh -o BatchMode=yes -o ConnectTimeout=5 backup@127.0.0.1 -s sftp'\n"
    )
    write(ResticRepository(), "sftp-unreachable", {"env_file": str(sftp)},
          "an sftp host refusing connections")
    # two services backed up by the backup script, as the deploy configures it
    conf, state, cold = WORK / "conf", WORK / "state", WORK / "cold"
    data = cold / "ai" / "open-webui" / "data"
    data.mkdir(parents=True)
    conf.mkdir()
    shutil.copy(good, conf / "restic.env")
    (conf / "backup.conf").write_text("HOMELAB_BACKUP_HOST='homelab-lab-1'\n")
    (conf / "sources").write_text(f"root {cold}\ndata open-webui critical {data}\n")
    sh(f"sqlite3 {data}/webui.db 'create table chat(body text); insert into chat values (1);'")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOMELAB_BACKUP_CONF_DIR": str(conf),
           "HOMELAB_BACKUP_STATE_DIR": str(state)}
    write(BackupStatus(), "never-ran-no-systemd",
          {"state_dir": str(state), "timer": "homelab-backup.timer", "service": "homelab-backup.service"},
          "before the first backup, in a container without systemd")
    subprocess.run(["bash", str(SCRIPT), "run"], env=env, check=True, capture_output=True)
    subprocess.run(["bash", str(SCRIPT), "run"], env=env, check=True, capture_output=True)
    write(ResticSnapshots(), "two-backups-same-day-one-kept", {"env_file": good},
          "two runs of homelab-backup for open-webui on one day (forget keeps the last of the day)")
    write(BackupStatus(), "after-a-backup-no-systemd",
          {"state_dir": str(state), "timer": "homelab-backup.timer", "service": "homelab-backup.service"},
          "after homelab-backup run, in a container without systemd")


if __name__ == "__main__":
    main()
