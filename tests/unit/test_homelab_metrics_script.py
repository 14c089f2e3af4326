"""homelab-metrics (deploys/library/homelab-metrics.sh) run for real, with a stand-in `docker` on PATH that
answers as Docker's CLI does for `ps --all --quiet --no-trunc` and `inspect --format …`."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "deploys/library/homelab-metrics.sh"

# Docker's `inspect --format` lines: name, state, health, restart count
INSPECT = """/pihole running healthy 0
/comfyui exited unhealthy 2
/open-webui running unhealthy 5
/cadvisor running none 0
"""


def run(tmp_path: Path, inspect: str | None = INSPECT, last_backup: str | None = "1796145195\n") -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    if inspect is None:  # the engine does not answer
        docker.write_text("#!/bin/sh\nexit 1\n")
    else:
        (tmp_path / "inspect.txt").write_text(inspect)
        docker.write_text(
            "#!/bin/sh\n"
            'case "$1" in\n'
            '  ps) echo aaa; echo bbb ;;\n'
            f'  inspect) cat {tmp_path / "inspect.txt"} ;;\n'
            "esac\n"
        )
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    state = tmp_path / "last-success"
    if last_backup is not None:
        state.write_text(last_backup)
    cold = tmp_path / "cold"
    cold.mkdir()
    folder = tmp_path / "metrics"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    subprocess.run(["sh", str(SCRIPT), str(cold), str(folder), str(state)], check=True, env=env)
    written = folder / "homelab.prom"
    assert oct(written.stat().st_mode & 0o777) == "0o644"  # the node exporter runs as nobody
    assert [p.name for p in folder.iterdir()] == ["homelab.prom"]  # no temporary file left behind
    return written.read_text()


def test_containers_cold_storage_and_the_last_backup(tmp_path):
    text = run(tmp_path)
    lines = text.splitlines()
    assert 'homelab_container_running{name="pihole"} 1' in lines
    assert 'homelab_container_running{name="comfyui"} 0' in lines
    # unhealthy only while it runs: a stopped container is ContainerDown, not also unhealthy
    assert 'homelab_container_unhealthy{name="comfyui"} 0' in lines
    assert 'homelab_container_unhealthy{name="open-webui"} 1' in lines
    assert 'homelab_container_unhealthy{name="cadvisor"} 0' in lines
    assert 'homelab_container_restarts{name="open-webui"} 5' in lines
    assert "homelab_backup_last_success_timestamp_seconds 1796145195" in lines
    (avail,) = [line for line in lines if line.startswith("homelab_cold_storage_avail_bytes ")]
    assert int(avail.split()[1]) > 0
    assert "# TYPE homelab_container_running gauge" in lines


def test_what_cannot_be_read_is_left_out(tmp_path):
    text = run(tmp_path, inspect=None, last_backup="never")
    assert "homelab_container_running" not in text
    assert "homelab_backup_last_success_timestamp_seconds" not in text
    assert "homelab_cold_storage_avail_bytes" in text
