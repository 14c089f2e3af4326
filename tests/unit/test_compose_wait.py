"""The health wait's shell loop, run for real against a scripted `docker` on PATH: an unhealthy
container fails the wait at once (with its health output), a starting one is waited for until the
timeout, a healthy one passes."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from operations.compose import wait_healthy_command

FAKE_DOCKER = """#!/bin/sh
case "$1" in
ps) echo c0ffee ;;
inspect)
  case "$3" in
  *Health.Status*) echo "$LAB_STATE" ;;
  *) echo "demo is ${LAB_STATE% *} (${LAB_STATE#* }); last health check output:"; echo "curl: (7) refused" ;;
  esac ;;
logs) echo "listening on 8080" ;;
esac
"""


def run_wait(tmp_path: Path, state: str, timeout: int = 4) -> tuple[int, float, str]:
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "LAB_STATE": state}
    started = time.monotonic()
    proc = subprocess.run(["sh", "-c", wait_healthy_command("demo", timeout)], env=env,
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, time.monotonic() - started, proc.stderr


def test_an_unhealthy_container_fails_the_wait_at_once(tmp_path):
    code, took, stderr = run_wait(tmp_path, "running unhealthy", timeout=30)
    assert code == 1 and took < 5
    assert stderr.splitlines()[0] == "compose project demo: unhealthy (its health check keeps failing):"
    assert "curl: (7) refused" in stderr and "listening on 8080" in stderr


@pytest.mark.parametrize("state", ["running starting", "restarting none"])
def test_a_container_on_its_way_is_waited_for_until_the_timeout(tmp_path, state):
    code, took, stderr = run_wait(tmp_path, state, timeout=2)
    assert code == 1 and took >= 2
    assert stderr.splitlines()[0] == "compose project demo: not ready after 2s:"


@pytest.mark.parametrize("state", ["running healthy", "running none"])
def test_a_ready_container_passes(tmp_path, state):
    assert run_wait(tmp_path, state)[0] == 0
