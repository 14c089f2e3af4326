"""LAB STAND-IN for Ollama 0.12.6's model API: ``/api/tags``, ``/api/pull``, ``/api/delete``.

Imitates ``server/routes.go``, ``server/images.go`` and ``server/download.go`` of Ollama v0.12.6
(research notes: ``/work/research/ollama-comfyui.md``), with its status codes and error texts:

- models live as Ollama keeps them, under the models folder (``/root/.ollama/models`` in the
  container): ``manifests/<host>/<namespace>/<model>/<tag>`` (compact JSON) and
  ``blobs/sha256-<hex>``, so they survive a restart of the container;
- ``GET /api/tags`` lists every manifest (newest first): ``name`` = ``model`` = the shortest name,
  ``size`` = layers + config, ``digest`` = sha256 of the manifest file, ``details`` from the config
  blob (a model whose config blob cannot be read is left out, as Ollama does);
- ``POST /api/pull`` speaks the registry protocol as Ollama does: ``GET`` of the manifest with
  ``Accept: application/vnd.docker.distribution.manifest.v2+json``, ``HEAD`` of each missing blob for
  its ``Content-Length``, a ``GET`` of the blob that must answer with a ``Location`` header (followed
  only to the same host name; "http: no Location header in response" otherwise), then ``GET
  <Location>`` with a ``Range``; each blob's sha256 verified; the manifest written last. ``insecure``
  makes it plain HTTP. Streamed (NDJSON, chunked) unless ``"stream": false``: "pulling manifest"
  first, so every registry failure arrives as HTTP 200 and a last ``{"error": …}`` line;
- ``DELETE /api/delete``: 200 with an empty body, 404 ``model 'x' not found``.

At start, partial downloads and blobs no manifest names are removed (Ollama's PruneLayers).
Standard library only: it runs inside the stand-in container and in-process in the unit tests.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from lab.doubles import ServedDouble

VERSION = "0.12.6"
USER_AGENT = f"ollama/{VERSION} (lab stand-in)"
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
DEFAULT_HOST, DEFAULT_NAMESPACE, DEFAULT_TAG = "registry.ollama.ai", "library", "latest"
_HOST = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,79}$")
_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$")
PROGRESS_EVERY = 0.06  # a fresh download reports every 60 ms


class PullError(Exception):
    """A pull failed with Ollama's error text."""


class HttpAnswer(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def parse_name(text: str) -> tuple[str, str, str, str] | None:
    """(host, namespace, model, tag) as types/model/name.go reads it; None when not valid."""
    name = text.strip()
    if not name or "@" in name:
        return None
    name = name.split("://", 1)[-1]  # a scheme is dropped by ParseName
    rest, tag = name, DEFAULT_TAG
    colon, slash = name.rfind(":"), name.rfind("/")
    if colon > slash:
        rest, tag = name[:colon], name[colon + 1:]
    parts = rest.split("/")
    host, namespace = DEFAULT_HOST, DEFAULT_NAMESPACE
    if len(parts) == 3:
        host, namespace, model = parts
    elif len(parts) == 2:
        namespace, model = parts
    elif len(parts) == 1:
        (model,) = parts
    else:
        return None
    ok = (_HOST.match(host) and _NAMESPACE.match(namespace) and _PART.match(model) and _PART.match(tag))
    return (host, namespace, model, tag) if ok else None


def shortest(host: str, namespace: str, model: str, tag: str) -> str:
    if host.lower() == DEFAULT_HOST:
        return f"{model}:{tag}" if namespace.lower() == DEFAULT_NAMESPACE else f"{namespace}/{model}:{tag}"
    return f"{host}/{namespace}/{model}:{tag}"


def _compact(manifest: dict[str, Any]) -> bytes:
    """The manifest as Ollama writes it (json.Marshal of its struct: this field order, no spaces)."""
    def layer(item: dict[str, Any]) -> dict[str, Any]:
        out = {"mediaType": item.get("mediaType", ""), "digest": item.get("digest", ""),
               "size": int(item.get("size") or 0)}
        if item.get("from"):
            out["from"] = item["from"]
        return out
    ordered = {"schemaVersion": manifest.get("schemaVersion", 2), "mediaType": manifest.get("mediaType", ""),
               "config": layer(manifest.get("config") or {}),
               "layers": [layer(item) for item in manifest.get("layers") or []]}
    return json.dumps(ordered, separators=(",", ":")).encode()


class OllamaDouble:
    """The model store and the three endpoints, on a models folder."""

    def __init__(self, models: Path) -> None:
        self.models = Path(models)
        self.lock = threading.Lock()
        self.registry_requests: list[tuple[str, str, dict[str, str]]] = []  # method, url, headers sent

    # -- the store ----------------------------------------------------------------------------
    @property
    def manifests(self) -> Path:
        return self.models / "manifests"

    @property
    def blobs(self) -> Path:
        return self.models / "blobs"

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest.replace(":", "-")

    def manifest_path(self, name: tuple[str, str, str, str]) -> Path:
        return self.manifests.joinpath(*name)

    def _existing(self, name: tuple[str, str, str, str]) -> Path | None:
        """The manifest of ``name``, matched without case as Ollama's getExistingName does."""
        exact = self.manifest_path(name)
        if exact.is_file():
            return exact
        wanted = "/".join(name).lower()
        for path in self.manifests.glob("*/*/*/*"):
            if path.is_file() and "/".join(path.relative_to(self.manifests).parts).lower() == wanted:
                return path
        return None

    def _all_manifests(self) -> list[tuple[Path, dict[str, Any]]]:
        found = []
        for path in self.manifests.glob("*/*/*/*"):
            try:
                found.append((path, json.loads(path.read_bytes())))
            except (OSError, ValueError):
                continue
        return found

    def prune(self) -> None:
        """What Ollama does at start: partial files and blobs no manifest names are removed."""
        if not self.blobs.is_dir():
            return
        used = {self.blob_path(item["digest"]).name for _, manifest in self._all_manifests()
                for item in [*(manifest.get("layers") or []), manifest.get("config") or {}]
                if item.get("digest")}
        for blob in self.blobs.iterdir():
            if "-partial" in blob.name or blob.name not in used:
                blob.unlink(missing_ok=True)

    def tags(self) -> dict[str, Any]:
        models = []
        for path, manifest in self._all_manifests():
            host, namespace, model, tag = path.relative_to(self.manifests).parts
            config = manifest.get("config") or {}
            try:
                details = json.loads(self.blob_path(config.get("digest", "")).read_bytes())
            except (OSError, ValueError):
                continue  # Ollama leaves out a model whose config blob it cannot read
            size = sum(int(item.get("size") or 0) for item in [*(manifest.get("layers") or []), config])
            mtime = path.stat().st_mtime
            shown = shortest(host, namespace, model, tag)
            models.append((mtime, {
                "name": shown, "model": shown,
                "modified_at": datetime.fromtimestamp(mtime).astimezone().isoformat(),
                "size": size,
                "digest": hashlib.sha256(path.read_bytes()).hexdigest(),
                "details": {
                    "parent_model": "", "format": details.get("model_format", ""),
                    "family": details.get("model_family", ""),
                    "families": details.get("model_families"),
                    "parameter_size": details.get("model_type", ""),
                    "quantization_level": details.get("file_type", ""),
                },
            }))
        return {"models": [entry for _, entry in sorted(models, key=lambda item: -item[0])]}

    # -- pull -----------------------------------------------------------------------------------
    def pull_request(self, raw: bytes) -> tuple[tuple[str, str, str, str], bool, bool]:
        """(name, insecure, stream) of a pull request; ``HttpAnswer`` for what Ollama refuses at once."""
        body = _json_body(raw)
        if not isinstance(body, dict):
            raise HttpAnswer(400, {"error": "json: cannot unmarshal into Go value of type api.PullRequest"})
        name = parse_name(str(body.get("model") or body.get("name") or ""))
        if name is None:
            raise HttpAnswer(400, {"error": "invalid model name"})
        return name, bool(body.get("insecure")), body.get("stream") is not False

    def pull(self, name: tuple[str, str, str, str], insecure: bool) -> Iterator[dict[str, Any]]:
        """The progress objects of a pull; ``PullError`` with Ollama's text when it fails."""
        yield {"status": "pulling manifest"}
        host, namespace, model, tag = name
        base = f"{'http' if insecure else 'https'}://{host}/v2/{namespace}/{model}"
        try:
            status, headers, body = self._fetch("GET", f"{base}/manifests/{tag}", {"Accept": MANIFEST_TYPE})
        except OSError as error:
            raise PullError(f'pull model manifest: Get "{base}/manifests/{tag}": {_reason(error)}') from None
        if status == 404:
            raise PullError("pull model manifest: file does not exist")
        if status >= 400:
            raise PullError(f"pull model manifest: {status}: {body.decode(errors='replace').strip()}")
        try:
            manifest = json.loads(body)
            layers = [*manifest.get("layers", []), manifest["config"]]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise PullError(f"pull model manifest: {error}") from None
        self.blobs.mkdir(parents=True, exist_ok=True)
        fresh: list[dict[str, Any]] = []
        for layer in layers:
            yield from self._download(base, layer, insecure, fresh)
        yield {"status": "verifying sha256 digest"}
        for layer in fresh:
            path = self.blob_path(layer["digest"])
            got = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
            if got != layer["digest"]:
                path.unlink(missing_ok=True)
                raise PullError(f"digest mismatch, file must be downloaded again: want {layer['digest']}, "
                                f"got {got}")
        yield {"status": "writing manifest"}
        with self.lock:
            old = self._existing(name)
            before = json.loads(old.read_bytes()) if old is not None else None
            target = old or self.manifest_path(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_compact(manifest))
            if before is not None:
                kept = {item["digest"] for item in layers}
                unused = [item["digest"] for item in [*before.get("layers", []), before.get("config") or {}]
                          if item.get("digest") and item["digest"] not in kept]
                if unused:
                    yield {"status": "removing unused layers"}
                    self.prune()
        yield {"status": "success"}

    def _download(self, base: str, layer: dict[str, Any], insecure: bool,
                  fresh: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        digest = str(layer.get("digest", ""))
        short = f"pulling {digest[7:19]}"
        path = self.blob_path(digest)
        if path.is_file():
            size = path.stat().st_size
            yield {"status": short, "digest": digest, "total": size, "completed": size}
            return
        url = f"{base}/blobs/{digest}"
        try:
            status, headers, _ = self._fetch("HEAD", url, {})
        except OSError as error:
            raise PullError(f'Head "{url}": {_reason(error)}') from None
        if status == 404:
            raise PullError("file does not exist")
        if status >= 400:
            raise PullError(f"{status}: HEAD {url}")
        total = int(headers.get("content-length") or 0)
        try:
            status, headers, _ = self._fetch("GET", url, {}, follow_same_host=True)
        except OSError as error:
            raise PullError(f'Get "{url}": {_reason(error)}') from None
        if status not in (200, 307):
            raise PullError(f"unexpected status code {status}")
        location = headers.get("location")
        if not location:
            raise PullError("http: no Location header in response")
        direct = urljoin(url, location)
        partial = path.with_name(path.name + "-partial")
        try:
            status, _, data = self._fetch("GET", direct, {"Range": f"bytes=0-{max(total - 1, 0)}"})
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise PullError(f'Get "{direct}": {_reason(error)}') from None
        if status not in (200, 206):
            raise PullError(f"unexpected status code {status}")
        written, last = 0, 0.0
        with partial.open("wb") as out:
            for start in range(0, len(data), 1 << 16):
                out.write(data[start:start + (1 << 16)])
                written = min(len(data), start + (1 << 16))
                if time.monotonic() - last >= PROGRESS_EVERY:
                    last = time.monotonic()
                    yield {"status": short, "digest": digest, "total": total, "completed": written}
        partial.replace(path)
        fresh.append(layer)
        yield {"status": short, "digest": digest, "total": total, "completed": written}

    def _fetch(self, method: str, url: str, headers: dict[str, str],
               follow_same_host: bool = False) -> tuple[int, dict[str, str], bytes]:
        """One registry request with Ollama's User-Agent; redirects are followed only to the same host
        name (download.go's CheckRedirect), and only when asked."""
        for _ in range(11):
            parts = urlsplit(url)
            sent = {"User-Agent": USER_AGENT, **headers}
            self.registry_requests.append((method, url, sent))
            kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            connection = kind(parts.hostname or "", parts.port, timeout=30)
            try:
                target = parts.path + (f"?{parts.query}" if parts.query else "")
                connection.request(method, target, headers=sent)
                response = connection.getresponse()
                body = response.read() if method != "HEAD" else b""
                answer = {key.lower(): value for key, value in response.getheaders()}
            finally:
                connection.close()
            location = answer.get("location")
            if (follow_same_host and response.status in (301, 302, 303, 307, 308) and location
                    and urlsplit(urljoin(url, location)).hostname == parts.hostname):
                url = urljoin(url, location)
                continue
            return response.status, answer, body
        raise OSError("stopped after 10 redirects")

    # -- delete ---------------------------------------------------------------------------------
    def delete(self, raw: bytes) -> None:
        body = _json_body(raw)
        given = str((body or {}).get("model") or (body or {}).get("name") or "")
        name = parse_name(given)
        if name is None:
            raise HttpAnswer(400, {"error": f'name "{given}" is invalid'})
        with self.lock:
            path = self._existing(name)
            if path is None:
                raise HttpAnswer(404, {"error": f"model '{given}' not found"})
            manifest = json.loads(path.read_bytes())
            path.unlink()
            folder = path.parent
            while folder != self.manifests and not any(folder.iterdir()):
                folder.rmdir()
                folder = folder.parent
            for item in [*(manifest.get("layers") or []), manifest.get("config") or {}]:
                if item.get("digest"):
                    self.blob_path(item["digest"]).unlink(missing_ok=True)


def _json_body(raw: bytes) -> Any:
    """A request's JSON body; Ollama's 400 answers for none and for bad JSON."""
    if not raw:
        raise HttpAnswer(400, {"error": "missing request body"})
    try:
        return json.loads(raw)
    except ValueError as error:
        raise HttpAnswer(400, {"error": str(error)}) from None


def _reason(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "dial tcp: connect: connection refused"
    return f"dial tcp: {error}"


def _handler(double: OllamaDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, body: Any, head_only: bool = False) -> None:
            if body is None:
                payload, ctype = b"", "text/plain; charset=utf-8"
            elif isinstance(body, str):
                payload, ctype = body.encode(), "text/plain; charset=utf-8"
            else:
                payload, ctype = json.dumps(body).encode(), "application/json; charset=utf-8"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if not head_only:
                self.wfile.write(payload)

        def _route(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            raw = self._body() if method in ("POST", "DELETE") else b""
            try:
                if path == "/" and method in ("GET", "HEAD"):
                    return self._send(200, "Ollama is running", method == "HEAD")
                if path == "/api/version" and method == "GET":
                    return self._send(200, {"version": f"{VERSION}-lab-standin"})
                if path == "/api/tags" and method in ("GET", "HEAD"):
                    return self._send(200, double.tags(), method == "HEAD")
                if path == "/api/pull" and method == "POST":
                    return self._pull(raw)
                if path == "/api/delete" and method == "DELETE":
                    double.delete(raw)
                    return self._send(200, None)
                return self._send(404, "404 page not found")
            except HttpAnswer as answer:
                return self._send(answer.status, answer.body)

        def _pull(self, raw: bytes) -> None:
            name, insecure, stream = double.pull_request(raw)
            progress = double.pull(name, insecure)
            if not stream:
                last: dict[str, Any] = {}
                try:
                    for line in progress:
                        last = line
                except PullError as error:
                    raise HttpAnswer(500, {"error": str(error)}) from None
                return self._send(200, last)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for line in progress:
                    self._chunk(json.dumps(line).encode() + b"\n")
            except PullError as error:  # HTTP 200 is sent already: the error is the last line
                self._chunk(json.dumps({"error": str(error)}).encode() + b"\n")
            self.wfile.write(b"0\r\n\r\n")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def do_GET(self) -> None:  # noqa: N802 - stdlib names
            self._route("GET")

        def do_HEAD(self) -> None:  # noqa: N802
            self._route("HEAD")

        def do_POST(self) -> None:  # noqa: N802
            self._route("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._route("DELETE")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


def serve(double: OllamaDouble, host: str = "127.0.0.1", port: int = 0) -> ServedDouble:
    return ServedDouble(None, host, port, handler=_handler(double))


def main(models: str | None = None, host: str = "0.0.0.0", port: int = 11434) -> ServedDouble:  # noqa: S104
    """The stand-in's Ollama on its models folder ($OLLAMA_MODELS, else /root/.ollama/models)."""
    folder = Path(models or os.environ.get("OLLAMA_MODELS") or "/root/.ollama/models")
    folder.mkdir(parents=True, exist_ok=True)
    double = OllamaDouble(folder)
    double.prune()
    return serve(double, host, port)
