"""The download command of downloads.verified_files, run by a real `sh` against the lab's file server
(in-process): the file lands checked, 0644, its folders made; a mismatch names the URL and both sums and
leaves nothing behind; a failed download too."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.doubles import model_registry
from operations.downloads import DOWNLOAD_SCRIPT

NAME = model_registry.CHECKPOINT_NAME
GOOD = model_registry.sha256_of(NAME)


@pytest.fixture
def server() -> Iterator[str]:
    with model_registry.serve() as served:
        yield served.url


def run(url: str, sha256: str, dest: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", DOWNLOAD_SCRIPT, "download", url, sha256, str(dest)],
                          capture_output=True, text=True, timeout=60)


def left(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def test_the_file_lands_checked_in_a_folder_made_for_it(server, tmp_path):
    dest = tmp_path / "checkpoints" / "sdxl" / NAME
    done = run(f"{server}/files/{NAME}", GOOD, dest)
    assert (done.returncode, done.stderr) == (0, "")
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == GOOD
    assert dest.stat().st_mode & 0o777 == 0o644
    assert left(tmp_path) == ["checkpoints", "checkpoints/sdxl", f"checkpoints/sdxl/{NAME}"]


def test_a_mismatch_names_the_url_and_both_sums_and_keeps_nothing(server, tmp_path):
    url, wrong = f"{server}/files/{NAME}", "0" * 64
    dest = tmp_path / "checkpoints" / NAME
    failed = run(url, wrong, dest)
    assert failed.returncode == 1
    assert failed.stderr == (f"checksum mismatch for {url}: expected sha256 {wrong}, got {GOOD} "
                             "(the download was not kept)\n")
    assert left(tmp_path) == ["checkpoints"]


def test_a_mismatch_leaves_an_earlier_file_in_place(server, tmp_path):
    dest = tmp_path / NAME
    dest.write_bytes(b"what was there")
    assert run(f"{server}/files/{NAME}", "0" * 64, dest).returncode == 1
    assert dest.read_bytes() == b"what was there" and left(tmp_path) == [NAME]


def test_a_failed_download_says_so_and_keeps_nothing(server, tmp_path):
    url = f"{server}/files/nothing-here.safetensors"
    failed = run(url, GOOD, tmp_path / "x.safetensors")
    assert failed.returncode == 1
    assert failed.stderr.splitlines()[-1] == f"download of {url} failed (exit 22)"
    assert left(tmp_path) == []
