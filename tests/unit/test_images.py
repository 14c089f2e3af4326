"""Image references as Docker names them, and the parallel pull run for real against a scripted
`docker` (each pull takes a second: in parallel, three take about one; a failed one is named with
the engine's reason, after all have ended)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from pyinfra.api.exceptions import OperationValueError

from operations.images import ImageRef, digest_of, pull_command, short

DIGEST = "sha256:" + "0f" * 32


@pytest.mark.parametrize(("reference", "expected"), [
    ("ollama/ollama:0.12.6", ImageRef("ollama/ollama", "0.12.6", None)),
    ("docker.io/library/nginx:1.27", ImageRef("nginx", "1.27", None)),
    ("index.docker.io/jc21/nginx-proxy-manager:2.15.1", ImageRef("jc21/nginx-proxy-manager", "2.15.1", None)),
    ("ghcr.io/open-webui/open-webui:v0.6.34", ImageRef("ghcr.io/open-webui/open-webui", "v0.6.34", None)),
    ("registry.lab:5000/x/y", ImageRef("registry.lab:5000/x/y", None, None)),
    (f"registry.lab:5000/x/y:2@{DIGEST}", ImageRef("registry.lab:5000/x/y", "2", DIGEST)),
    ("docker.io/library/a/b:1", ImageRef("library/a/b", "1", None)),
])
def test_references_split_as_the_engine_names_them(reference, expected):
    assert ImageRef.parse(reference) == expected


def test_a_bad_digest_is_refused():
    with pytest.raises(OperationValueError, match="not a sha256 digest"):
        ImageRef.parse("x/y@sha256:abc")


def test_digests_of_pins():
    assert digest_of(f"ollama/ollama@{DIGEST}") == DIGEST
    assert digest_of(DIGEST) == DIGEST  # an image ID
    assert digest_of(None) is None and digest_of("ollama/ollama:1") is None
    assert short(f"x@{DIGEST}") == "sha256:0f0f0f0f0f0f" and short(None) == "none"


FAKE_DOCKER = """#!/bin/sh
sleep 1
case "$3" in
*missing*) echo "Error response from daemon: manifest for $3 not found: manifest unknown" >&2; exit 1 ;;
esac
echo "$3" >> "$PULL_LOG"
"""


def pull(tmp_path: Path, refs: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    (tmp_path / "docker").write_text(FAKE_DOCKER)
    (tmp_path / "docker").chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "PULL_LOG": str(tmp_path / "log")}
    started = time.monotonic()
    done = subprocess.run(["sh", "-c", pull_command(refs)], env=env, capture_output=True, text=True,
                          timeout=60)
    return done, time.monotonic() - started


def test_pulls_run_in_parallel(tmp_path):
    done, took = pull(tmp_path, ["a/one:1", "a/two:1", "a/three:1"])
    assert done.returncode == 0, done.stderr
    assert took < 2.5
    assert sorted((tmp_path / "log").read_text().split()) == ["a/one:1", "a/three:1", "a/two:1"]


def test_a_failed_pull_is_named_with_the_reason_after_all_have_ended(tmp_path):
    done, _ = pull(tmp_path, ["a/one:1", "a/missing:9"])
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "could not pull a/missing:9: manifest for a/missing:9 not found: manifest unknown",
        "nothing was stopped or changed: the services run as before",
    ]
    assert (tmp_path / "log").read_text().split() == ["a/one:1"]


FAKE_ENGINE = """#!/bin/sh
# `docker system dial-stdio`: a second, then the engine's answer for the requested reference
read -r request
sleep 1
printf 'HTTP/1.0 200 OK\\r\\nContent-Type: application/json\\r\\n\\r\\n'
printf '{"Descriptor":{"digest":"sha256:%064d"}}' "$(echo "$request" | sed 's|.*:\\([0-9]\\)/json.*|\\1|')"
"""


def test_the_registry_is_asked_about_every_image_at_once(tmp_path):
    from facts.images import RegistryDigests

    (tmp_path / "docker").write_text(FAKE_ENGINE)
    (tmp_path / "docker").chmod(0o755)
    refs = ["a/one:1", "a/two:2", "a/three:3"]
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    started = time.monotonic()
    done = subprocess.run(["sh", "-c", RegistryDigests().command(refs)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert time.monotonic() - started < 2.5
    found = RegistryDigests().process(done.stdout.split("\n"))
    last = {ref: found[ref]["digest"][-1] for ref in refs}
    assert last == {"a/one:1": "1", "a/two:2": "2", "a/three:3": "3"}
