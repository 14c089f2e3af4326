"""The lab's Ollama stand-in as the lab runs it: its `ollama` CLI (the health check, pull, rm) against
the stand-in server, and the server started the way the stand-in container starts it (its models
folder pruned of partial downloads), pulling from the world's model registry (all in-process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from lab.doubles import model_registry, ollama_double

CLI = Path(__file__).resolve().parents[2] / "lab" / "images" / "standin" / "ollama"


def cli(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CLI), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "OLLAMA_HOST": url.removeprefix("http://")})


def test_the_cli_lists_pulls_and_removes_through_the_server(tmp_path):
    folder = str(tmp_path / "models")
    with model_registry.serve() as registry, ollama_double.main(folder, "127.0.0.1", 0) as ollama:
        model = f"127.0.0.1:{registry.port}/library/tiny:1"
        empty = cli(ollama.url, "list")
        assert (empty.returncode, empty.stdout.split()) == (0, ["NAME", "ID", "SIZE", "MODIFIED"])
        pulled = cli(ollama.url, "pull", "--insecure", model)
        assert pulled.returncode == 0, pulled.stderr
        said = pulled.stdout.splitlines()
        assert said[0] == "pulling manifest" and said[-1] == "success"
        listed = cli(ollama.url, "list").stdout.splitlines()
        assert listed[1].split()[0] == model and "98.5 KB" in listed[1]
        refused = cli(ollama.url, "pull", f"127.0.0.1:{registry.port}/library/nope:1", "--insecure")
        assert refused.returncode == 1
        assert refused.stderr == "Error: pull model manifest: file does not exist\n"
        assert cli(ollama.url, "rm", model).stdout == f"deleted '{model}'\n"
        gone = cli(ollama.url, "rm", model)
        assert (gone.returncode, gone.stderr) == (1, f"Error: model '{model}' not found\n")


def test_the_health_check_fails_when_nothing_answers():
    down = cli("http://127.0.0.1:1", "list")
    assert down.returncode == 1 and down.stderr.startswith("Error: could not connect to ollama app")


def test_the_server_starts_on_its_folder_without_half_downloads(tmp_path):
    blobs = tmp_path / "models" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / ("sha256-" + "a" * 64 + "-partial")).write_bytes(b"half")
    with ollama_double.main(str(tmp_path / "models"), "127.0.0.1", 0) as ollama:
        assert requests.get(ollama.url + "/", timeout=5).text == "Ollama is running"
        assert requests.get(ollama.url + "/api/tags", timeout=5).json() == {"models": []}
    assert list(blobs.iterdir()) == []
