"""The Ollama stand-in (lab/doubles/ollama_double.py) against the lab's model registry
(lab/doubles/model_registry.py), both in-process, driven by the deploy's own client: Ollama 0.12.6's
registry protocol, its store on disk, its status codes and error texts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from lab.doubles import model_registry
from lab.doubles.model_registry import MANIFEST_TYPE
from lab.doubles.ollama_double import OllamaDouble, serve
from operations.clients.ollama import OllamaClient, OllamaError, manifest_size, parse_model_name


@pytest.fixture
def registry() -> Iterator[tuple[str, list]]:
    log: list = []
    with model_registry.serve(log=log) as served:
        yield f"127.0.0.1:{served.port}", log


@pytest.fixture
def ollama(tmp_path: Path) -> Iterator[tuple[OllamaDouble, OllamaClient]]:
    double = OllamaDouble(tmp_path / "models")
    with serve(double) as served:
        yield double, OllamaClient(served.url, timeout=10)


def _pull(client: OllamaClient, model: str, insecure: bool = True) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    client.pull(model, insecure=insecure, progress=lines.append)
    return lines


def test_a_pull_speaks_the_registry_protocol_and_stores_the_model_as_ollama_does(registry, ollama):
    host, log = registry
    double, client = ollama
    lines = _pull(client, f"{host}/library/tiny:1")
    statuses = [line["status"] for line in lines]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    assert all(line["total"] >= line.get("completed", 0) for line in lines if "total" in line)

    manifest = json.loads(model_registry.MANIFESTS["library/tiny:1"])
    requests_made = [(method, path) for method, path, _ in log]
    assert requests_made[0] == ("GET", "/v2/library/tiny/manifests/1")
    assert log[0][2]["accept"] == MANIFEST_TYPE
    assert log[0][2]["user-agent"].startswith("ollama/0.12.6")
    for layer in [*manifest["layers"], manifest["config"]]:
        digest = layer["digest"]
        assert ("HEAD", f"/v2/library/tiny/blobs/{digest}") in requests_made
        assert ("GET", f"/v2/library/tiny/blobs/{digest}") in requests_made
        direct = f"/lab-blobs/{digest.replace(':', '-')}"
        ranged = [headers for method, path, headers in log if path == direct]
        assert len(ranged) == 1 and ranged[0]["range"] == f"bytes=0-{layer['size'] - 1}"
        blob = double.models / "blobs" / digest.replace(":", "-")
        assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == digest

    stored = double.models / "manifests" / host / "library" / "tiny" / "1"
    assert json.loads(stored.read_bytes()) == manifest
    assert stored.read_bytes().startswith(b'{"schemaVersion":2,"mediaType":')  # compact, as json.Marshal
    (listed,) = client.tags()
    assert listed["name"] == listed["model"] == f"{host}/library/tiny:1"
    assert listed["size"] == model_registry.model_size("library/tiny:1")
    assert listed["digest"] == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert listed["details"]["family"] == "llama" and listed["details"]["format"] == "gguf"
    assert not list((double.models / "blobs").glob("*-partial*"))


def test_the_models_survive_a_restart_on_the_same_folder(registry, tmp_path):
    host, _ = registry
    folder = tmp_path / "models"
    with serve(OllamaDouble(folder)) as served:
        _pull(OllamaClient(served.url), f"{host}/library/tiny:1")
    (folder / "blobs" / "sha256-dead-partial").write_bytes(b"half")
    (folder / "blobs" / ("sha256-" + "1" * 64)).write_bytes(b"nobody's")
    restarted = OllamaDouble(folder)
    restarted.prune()  # what Ollama does at start
    with serve(restarted) as served:
        assert [m["name"] for m in OllamaClient(served.url).tags()] == [f"{host}/library/tiny:1"]
    assert sorted(p.name for p in (folder / "blobs").iterdir()) == sorted(
        item["digest"].replace(":", "-")
        for item in [*json.loads(model_registry.MANIFESTS["library/tiny:1"])["layers"],
                     json.loads(model_registry.MANIFESTS["library/tiny:1"])["config"]]
    )


def test_a_present_blob_is_not_downloaded_again(registry, ollama):
    host, log = registry
    _, client = ollama
    _pull(client, f"{host}/library/tiny:1")
    log.clear()
    lines = _pull(client, f"{host}/library/tiny:latest")  # the same blobs under another tag
    assert [method for method, _, _ in log] == ["GET"]  # the manifest only
    cached = [line for line in lines if line["status"].startswith("pulling ") and "digest" in line]
    assert cached and all(line["total"] == line["completed"] for line in cached)


def test_names_are_listed_shortest_and_found_without_case(registry, ollama):
    host, _ = registry
    double, client = ollama
    _pull(client, f"{host}/library/tiny:1")
    assert client.delete(f"{host.upper()}/LIBRARY/Tiny:1") is True
    assert client.tags() == []
    assert not (double.models / "manifests" / host).exists()  # empty folders pruned
    assert not any((double.models / "blobs").iterdir())


@pytest.mark.parametrize(("model", "error"), [
    ("library/nope:1", "pull model manifest: file does not exist"),
    ("library/broken:1",
     "digest mismatch, file must be downloaded again: want sha256:" + "0" * 64 + ", got sha256:"),
])
def test_registry_failures_arrive_after_http_200_as_a_last_error_line(registry, ollama, model, error):
    host, _ = registry
    double, client = ollama
    body = {"model": f"{host}/{model}", "insecure": True}
    response = requests.post(client.base_url + "/api/pull", json=body, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines[0] == {"status": "pulling manifest"}
    assert lines[-1]["error"].startswith(error)
    with pytest.raises(OllamaError) as raised:
        client.pull(f"{host}/{model}", insecure=True)
    assert str(raised.value).startswith(error)
    assert client.tags() == []
    blobs = double.models / "blobs"
    kept = [path.name for path in blobs.iterdir()] if blobs.is_dir() else []
    assert not [name for name in kept if "partial" in name or name == "sha256-" + "0" * 64], kept


def test_without_insecure_the_registry_is_asked_over_https(registry, ollama):
    host, _ = registry
    _, client = ollama
    with pytest.raises(OllamaError) as raised:
        client.pull(f"{host}/library/tiny:1")
    url = f"https://{host}/v2/library/tiny/manifests/1"
    assert str(raised.value).startswith(f'pull model manifest: Get "{url}": ')


def test_an_unreachable_registry(ollama):
    _, client = ollama
    with pytest.raises(OllamaError) as raised:
        client.pull("127.0.0.1:1/library/tiny:1", insecure=True)
    assert str(raised.value) == ('pull model manifest: Get "http://127.0.0.1:1/v2/library/tiny/manifests/1": '
                                 "dial tcp: connect: connection refused")


def test_a_blob_get_without_a_location_header_fails_as_in_ollama(registry, ollama, monkeypatch):
    """Stock registry:2 answers the blob GET with the bytes and no Location: Ollama 0.12 fails."""
    host, _ = registry
    double, client = ollama
    original = double._fetch

    def no_location(method, url, headers, follow_same_host=False):
        status, answer, body = original(method, url, headers, follow_same_host)
        answer.pop("location", None)
        return status, answer, body

    monkeypatch.setattr(double, "_fetch", no_location)
    with pytest.raises(OllamaError, match=r"^http: no Location header in response$"):
        client.pull(f"{host}/library/tiny:1", insecure=True)


def test_http_errors_before_the_stream(ollama):
    _, client = ollama
    url = client.base_url
    assert (requests.post(url + "/api/pull", timeout=5).status_code,
            requests.post(url + "/api/pull", timeout=5).json()) == (400, {"error": "missing request body"})
    bad = requests.post(url + "/api/pull", json={"model": "a/b/c/d"}, timeout=5)
    assert (bad.status_code, bad.json()) == (400, {"error": "invalid model name"})
    with pytest.raises(OllamaError, match="^invalid model name$"):
        client.pull("")
    quiet = requests.post(url + "/api/pull", json={"model": "127.0.0.1:1/library/x:1", "insecure": True,
                                                   "stream": False}, timeout=10)
    assert quiet.status_code == 500 and quiet.json()["error"].startswith("pull model manifest: Get ")
    gone = requests.delete(url + "/api/delete", json={"model": "llama3.2"}, timeout=5)
    assert (gone.status_code, gone.json()) == (404, {"error": "model 'llama3.2' not found"})
    assert client.delete("llama3.2") is False
    invalid = requests.delete(url + "/api/delete", json={"model": "a b"}, timeout=5)
    assert (invalid.status_code, invalid.json()) == (400, {"error": 'name "a b" is invalid'})
    assert requests.head(url + "/api/tags", timeout=5).status_code == 200
    assert requests.get(url + "/", timeout=5).text == "Ollama is running"


def test_a_stream_false_pull_answers_the_last_status(registry, ollama):
    host, _ = registry
    _, client = ollama
    body = {"model": f"{host}/library/small:1", "insecure": True, "stream": False}
    answer = requests.post(client.base_url + "/api/pull", json=body, timeout=10)
    assert (answer.status_code, answer.json()) == (200, {"status": "success"})


def test_the_registry_size_of_a_model_before_it_is_pulled(registry):
    host, _ = registry
    assert manifest_size(parse_model_name(f"{host}/library/tiny:1"), insecure=True) == \
        model_registry.model_size("library/tiny:1")
    assert manifest_size(parse_model_name(f"{host}/library/nope:1"), insecure=True) is None
    assert manifest_size(parse_model_name("127.0.0.1:1/library/tiny:1"), insecure=True, timeout=1) is None


def test_the_registry_wants_the_manifest_accept_header(registry):
    host, _ = registry
    bare = requests.get(f"http://{host}/v2/library/tiny/manifests/1", timeout=5)
    assert bare.status_code == 404
    asked = requests.get(f"http://{host}/v2/library/tiny/manifests/1", headers={"Accept": MANIFEST_TYPE},
                         timeout=5)
    assert asked.status_code == 200 and asked.headers["Content-Type"] == MANIFEST_TYPE
