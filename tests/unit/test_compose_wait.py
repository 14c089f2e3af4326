"""The health wait's shell loop, run for real against a scripted `docker` on PATH: an unhealthy
container fails the wait at once (with its health output), a starting one is waited for until the
timeout, a healthy one passes."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from operations.compose import wait_healthy_command

# LAB_STATE: "STATUS HEALTH" ("STATUS none": no health check); LAB_STREAK: the failing streak (5: a check
# failing past its retries); LAB_THEN: the state from the second state read on, when set
FAKE_DOCKER = """#!/bin/sh
case "$1" in
ps) echo c0ffee ;;
inspect)
  if [ -n "$LAB_THEN" ] && [ -e "$LAB_READS" ]; then LAB_STATE=$LAB_THEN LAB_STREAK=0; fi
  case "$3" in
  *'slice .Name 1}}: '*)
    case "$LAB_STATE $LAB_STREAK" in
    *' none '*) echo "demo: ${LAB_STATE% *}" ;;
    *' unhealthy 0') echo "demo: its next health check" ;;
    *) echo "demo: ${LAB_STATE#* }" ;;
    esac ;;
  *FailingStreak*)
    touch "$LAB_READS"
    case "$LAB_STATE" in *' none') echo "$LAB_STATE" ;; *) echo "$LAB_STATE $LAB_STREAK" ;; esac ;;
  *) echo "demo is ${LAB_STATE% *} (${LAB_STATE#* }); last health check output:"; echo "curl: (7) refused" ;;
  esac ;;
logs) echo "listening on 8080" ;;
esac
"""


def run_wait(tmp_path: Path, state: str, timeout: int = 4, every: int = 10) -> tuple[int, float, str]:
    code, took, stderr, _ = run_wait_output(tmp_path, state, timeout, every)
    return code, took, stderr


def run_wait_output(tmp_path: Path, state: str, timeout: int, every: int, streak: int = 5,
                    then: str = "") -> tuple[int, float, str, str]:
    """The wait's exit code, how long it took, its stderr and its stdout."""
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "LAB_STATE": state,
           "LAB_STREAK": str(streak), "LAB_THEN": then, "LAB_READS": str(tmp_path / "read-once")}
    started = time.monotonic()
    proc = subprocess.run(["sh", "-c", wait_healthy_command("demo", timeout, every)], env=env,
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, time.monotonic() - started, proc.stderr, proc.stdout


def test_an_unhealthy_container_fails_the_wait_at_once(tmp_path):
    code, took, stderr = run_wait(tmp_path, "running unhealthy", timeout=30)
    assert code == 1 and took < 5
    assert stderr.splitlines()[0] == "compose project demo: unhealthy (its health check keeps failing):"
    assert "curl: (7) refused" in stderr and "listening on 8080" in stderr


def test_an_unhealthy_mark_no_check_has_failed_is_waited_for_until_the_next_check(tmp_path):
    """Docker says "unhealthy" of a container whose checks it stopped (`docker pause`, a stop) and keeps
    saying it after `docker unpause` until the next check runs, with a failing streak of 0."""
    code, took, stderr, _ = run_wait_output(tmp_path, "running unhealthy", timeout=30, every=10, streak=0,
                                            then="running healthy")
    assert (code, stderr) == (0, "")
    assert took >= 2  # a second look, one poll later


def test_an_unhealthy_mark_no_check_has_failed_says_what_it_waits_for(tmp_path):
    code, took, stderr, stdout = run_wait_output(tmp_path, "running unhealthy", timeout=3, every=1, streak=0)
    assert code == 1 and took >= 3
    assert stderr.splitlines()[0] == "compose project demo: not ready after 3s:"
    assert re.match(r"waiting for demo: its next health check \(\d s of 3 s\)", stdout), stdout


@pytest.mark.parametrize("state", ["running starting", "restarting none"])
def test_a_container_on_its_way_is_waited_for_until_the_timeout(tmp_path, state):
    code, took, stderr = run_wait(tmp_path, state, timeout=2)
    assert code == 1 and took >= 2
    assert stderr.splitlines()[0] == "compose project demo: not ready after 2s:"


@pytest.mark.parametrize("state", ["running healthy", "running none"])
def test_a_ready_container_passes(tmp_path, state):
    assert run_wait(tmp_path, state)[0] == 0


@pytest.mark.parametrize(
    ("state", "shown"), [("running starting", "starting"), ("restarting none", "restarting")]
)
def test_a_long_wait_says_what_it_waits_for_on_stdout_and_keeps_its_report(tmp_path, state, shown):
    # 7 s: room for two lines whatever the phase of the clock's second when the wait starts (its polls
    # are 2 s apart and `date +%s` counts whole seconds)
    code, _, stderr, stdout = run_wait_output(tmp_path, state, timeout=7, every=1)
    assert code == 1
    lines = stdout.splitlines()
    assert len(lines) >= 2, stdout
    for line in lines:
        assert re.fullmatch(rf"waiting for demo: {shown} \((\d) s of 7 s\)", line), line
    seconds = [int(re.search(r"\((\d) s", line).group(1)) for line in lines]
    assert seconds == sorted(seconds) and 1 <= seconds[0] and seconds[-1] < 7
    # the report other code parses is on stderr, unchanged
    assert stderr.splitlines()[0] == "compose project demo: not ready after 7s:"
    assert "waiting for" not in stderr


def test_a_short_wait_says_nothing(tmp_path):
    assert run_wait_output(tmp_path, "running starting", timeout=2, every=10)[3] == ""
    assert run_wait_output(tmp_path, "running healthy", timeout=5, every=1)[3] == ""
