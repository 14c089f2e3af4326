"""The pin-and-roll-back shell of the compose operation, run for real in a folder, against a scripted
`docker` on PATH: the pin file it writes (read back by the ComposeFiles fact), the pin before kept,
the rollback to it when the new image is not healthy, and the one line that says so."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from facts.compose import ComposeFiles, parse_pin
from operations.compose import pin_command

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
IMAGE_ID = "sha256:" + "c" * 64
REPO = "registry.world.lab.test/yanwk/comfyui-boot"

# `docker image inspect` answers from $FAKE_DIGESTS / $FAKE_ID; `docker compose up` logs the image the
# pin file names at that moment (or "tag" without one) and exits $FAKE_UP_RC
FAKE_DOCKER = """#!/bin/sh
if [ "$1" = image ]; then
  case "$4" in
  *RepoDigests*) echo "$FAKE_DIGESTS" ;;
  *) [ -n "$FAKE_ID" ] || exit 1; echo "$FAKE_ID" ;;
  esac
  exit 0
fi
if [ "$1" = compose ]; then
  if [ -f compose.override.yaml ]; then
    sed -n 's/^    image: "\\(.*\\)"$/\\1/p' compose.override.yaml >> up.log
  else
    echo tag >> up.log
  fi
  exit "${FAKE_UP_RC:-0}"
fi
exit 2
"""
# the health wait stand-in: unhealthy while the pin names $FAKE_BAD
FAKE_WAIT = """#!/bin/sh
if grep -q "$FAKE_BAD" compose.override.yaml 2>/dev/null; then
  echo "compose project comfyui: unhealthy (its health check keeps failing):"
  echo "comfyui is running (unhealthy); last health check output:"
  echo "  curl: (22) The requested URL returned error: 500"
  echo "  last log lines:"
  echo "    lab: answering 500 on purpose"
  exit 1
fi
exit 0
"""


def run_pin(tmp_path: Path, image: str, *, rollback: bool = True, digest: str | None = None,
            **env: str) -> subprocess.CompletedProcess:
    tools = tmp_path / "bin"
    tools.mkdir(exist_ok=True)
    for name, text in (("docker", FAKE_DOCKER), ("fake-wait", FAKE_WAIT)):
        (tools / name).write_text(text)
        (tools / name).chmod(0o755)
    project = tmp_path / "comfyui"
    project.mkdir(exist_ok=True)
    command = pin_command(str(project), "comfyui", "comfyui", image, "docker compose up --detach",
                          "fake-wait" if rollback else None, digest)
    environment = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}", "FAKE_BAD": "nothing-is-bad",
                   "FAKE_ID": IMAGE_ID, **env}
    return subprocess.run(["sh", "-c", command], env=environment, capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)


def pin_of(tmp_path: Path, name: str = "compose.override.yaml") -> dict | None:
    path = tmp_path / "comfyui" / name
    return parse_pin(path.read_text()) if path.exists() else None


def ups(tmp_path: Path) -> list[str]:
    log = tmp_path / "comfyui" / "up.log"
    return log.read_text().split() if log.exists() else []


def test_the_pin_is_the_registry_digest_of_the_image_and_the_fact_reads_it_back(tmp_path):
    done = run_pin(tmp_path, f"{REPO}:cu128-slim", FAKE_DIGESTS=f"other/repo@{OLD} {REPO}@{NEW}")
    assert done.returncode == 0, done.stderr
    assert pin_of(tmp_path) == {"image": f"{REPO}:cu128-slim", "pinned": f"{REPO}@{NEW}"}
    assert ups(tmp_path) == [f"{REPO}@{NEW}"]  # compose came up on the pinned image
    # the fact reads the file as the deploy wrote it
    written = (tmp_path / "comfyui" / "compose.override.yaml").read_text()
    lines = ["pin " + line for line in written.splitlines()]
    assert ComposeFiles().process(lines)["pin"] == pin_of(tmp_path)


def test_of_several_digests_of_the_repository_the_one_the_registry_serves_for_the_tag_is_pinned(tmp_path):
    # the same image pushed under two tags has two digests; the plan knows which one the tag names
    done = run_pin(tmp_path, f"{REPO}:moving", digest=NEW, FAKE_DIGESTS=f"{REPO}@{OLD} {REPO}@{NEW}")
    assert done.returncode == 0, done.stderr
    assert pin_of(tmp_path)["pinned"] == f"{REPO}@{NEW}"


def test_a_registry_digest_the_image_does_not_hold_falls_back_to_the_first_of_its_repository(tmp_path):
    done = run_pin(tmp_path, f"{REPO}:moving", digest="sha256:" + "d" * 64,
                   FAKE_DIGESTS=f"other/repo@{NEW} {REPO}@{OLD} {REPO}@{NEW}")
    assert done.returncode == 0, done.stderr
    assert pin_of(tmp_path)["pinned"] == f"{REPO}@{OLD}"


def test_a_docker_hub_image_is_pinned_under_the_name_the_engine_lists(tmp_path):
    done = run_pin(tmp_path, "docker.io/library/nginx:1.27", FAKE_DIGESTS=f"nginx@{NEW}")
    assert done.returncode == 0, done.stderr
    assert pin_of(tmp_path)["pinned"] == f"nginx@{NEW}"


def test_an_image_from_no_registry_is_pinned_by_its_id(tmp_path):
    done = run_pin(tmp_path, "local/built:1", FAKE_DIGESTS="")
    assert done.returncode == 0, done.stderr
    assert pin_of(tmp_path)["pinned"] == IMAGE_ID


def test_an_image_the_host_does_not_hold_changes_nothing(tmp_path):
    done = run_pin(tmp_path, f"{REPO}:lab-v2", FAKE_DIGESTS="", FAKE_ID="")
    assert done.returncode == 1
    assert "comfyui: the image" in done.stderr and "is not on the host" in done.stderr
    assert pin_of(tmp_path) is None and ups(tmp_path) == []


def test_moving_the_pin_keeps_the_one_before(tmp_path):
    assert run_pin(tmp_path, f"{REPO}:v1", FAKE_DIGESTS=f"{REPO}@{OLD}").returncode == 0
    done = run_pin(tmp_path, f"{REPO}:v2", FAKE_DIGESTS=f"{REPO}@{NEW}")
    assert done.returncode == 0, done.stderr
    assert pin_of(tmp_path)["pinned"] == f"{REPO}@{NEW}"
    before = {"image": f"{REPO}:v1", "pinned": f"{REPO}@{OLD}"}
    assert pin_of(tmp_path, "compose.override.previous.yaml") == before


def test_an_unhealthy_new_image_is_rolled_back_to_the_pin_before_with_one_line(tmp_path):
    assert run_pin(tmp_path, f"{REPO}:v2", FAKE_DIGESTS=f"{REPO}@{OLD}").returncode == 0
    done = run_pin(tmp_path, f"{REPO}:v3", FAKE_DIGESTS=f"{REPO}@{NEW}", FAKE_BAD=NEW)
    assert done.returncode == 1
    first = done.stderr.splitlines()[0]
    assert first == (
        f"comfyui: the new image {REPO}:v3 ({REPO}@{NEW}) is not healthy: rolled back to {REPO}@{OLD}, "
        "healthy again. Health check: curl: (22) The requested URL returned error: 500"
    )
    assert "lab: answering 500 on purpose" in done.stderr  # the wait's full report follows
    assert pin_of(tmp_path) == {"image": f"{REPO}:v2", "pinned": f"{REPO}@{OLD}"}
    assert ups(tmp_path) == [f"{REPO}@{OLD}", f"{REPO}@{NEW}", f"{REPO}@{OLD}"]


def test_without_a_pin_before_the_rollback_returns_to_the_tag(tmp_path):
    done = run_pin(tmp_path, f"{REPO}:v3", FAKE_DIGESTS=f"{REPO}@{NEW}", FAKE_BAD=NEW)
    assert done.returncode == 1
    assert "rolled back to the image it ran before, healthy again" in done.stderr.splitlines()[0]
    assert pin_of(tmp_path) is None
    assert ups(tmp_path) == [f"{REPO}@{NEW}", "tag"]


def test_a_failing_up_is_rolled_back_too(tmp_path):
    assert run_pin(tmp_path, f"{REPO}:v2", FAKE_DIGESTS=f"{REPO}@{OLD}").returncode == 0
    done = run_pin(tmp_path, f"{REPO}:v3", FAKE_DIGESTS=f"{REPO}@{NEW}", FAKE_UP_RC="1")
    assert done.returncode == 1
    assert pin_of(tmp_path)["pinned"] == f"{REPO}@{OLD}"


def test_without_a_rollback_the_new_pin_stays_whatever_its_health(tmp_path):
    done = run_pin(tmp_path, f"{REPO}:v3", rollback=False, FAKE_DIGESTS=f"{REPO}@{NEW}", FAKE_BAD=NEW)
    assert done.returncode == 0, done.stderr
    assert pin_of(tmp_path)["pinned"] == f"{REPO}@{NEW}"


def test_a_rollback_puts_back_the_project_files_as_they_were_and_a_success_keeps_the_new_ones(tmp_path):
    from operations.compose import save_files_command

    assert run_pin(tmp_path, f"{REPO}:v2", FAKE_DIGESTS=f"{REPO}@{OLD}").returncode == 0
    project = tmp_path / "comfyui"

    def update(image: str, **env: str) -> subprocess.CompletedProcess:
        (project / "compose.yaml").write_text("image: v2\n")
        (project / ".env").write_text("PASSWORD='old'\n")
        (project / ".env").chmod(0o600)
        subprocess.run(["sh", "-c", save_files_command(str(project))], check=True)
        (project / "compose.yaml").write_text(f"image: {image}\n")  # what the run uploads before the pin
        (project / ".env").write_text("PASSWORD='new'\n")
        return run_pin(tmp_path, f"{REPO}:{image}", **env)

    assert update("v3", FAKE_DIGESTS=f"{REPO}@{NEW}", FAKE_BAD=NEW).returncode == 1
    assert (project / "compose.yaml").read_text() == "image: v2\n"
    assert (project / ".env").read_text() == "PASSWORD='old'\n"
    assert oct((project / ".env").stat().st_mode & 0o777) == "0o600"
    assert not list(project.glob("*.before-update"))

    assert update("v4", FAKE_DIGESTS=f"{REPO}@{NEW}").returncode == 0
    assert (project / "compose.yaml").read_text() == "image: v4\n"
    assert not list(project.glob("*.before-update"))
