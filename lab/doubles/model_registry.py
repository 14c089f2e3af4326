"""LAB STAND-IN for a model source: a tiny Ollama registry and plain HTTP files, served by the lab's
world container (lab/world.py, port 5000) and in-process by the unit tests.

The registry answers as Ollama 0.12.6 needs it (research notes, section 4):

- ``GET /v2/<namespace>/<model>/manifests/<tag>`` with ``Accept:
  application/vnd.docker.distribution.manifest.v2+json`` (without that header: 404, as a registry
  that would otherwise answer another schema); 404 for an unknown model or tag;
- ``HEAD /v2/…/blobs/sha256:<hex>`` with ``Content-Length``;
- ``GET /v2/…/blobs/sha256:<hex>`` answers 200 with a ``Location`` header (and no body): Ollama
  reads the blob's direct URL from it and fails without one (stock ``registry:2`` does not send it);
- ``GET /lab-blobs/sha256-<hex>`` serves the bytes, honouring ``Range``.

Models (all tiny, made from fixed bytes so a test knows their digests): ``library/tiny:1`` (also
``:latest``), ``library/small:1``, and ``library/broken:1`` whose manifest names a digest its blob does
not have (a pull of it fails "digest mismatch"). Files: ``/files/tiny-checkpoint.safetensors``
(:data:`CHECKPOINT`, for ComfyUI).
"""

from __future__ import annotations

import hashlib
import json
import re
from http.server import BaseHTTPRequestHandler
from typing import Any

from lab.doubles import ServedDouble
from lab.doubles.ollama_double import MANIFEST_TYPE

PORT = 5000
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
MODEL_TYPE = "application/vnd.ollama.image.model"
TEMPLATE_TYPE = "application/vnd.ollama.image.template"


def _bytes(seed: str, size: int) -> bytes:
    """``size`` fixed bytes from ``seed`` (a "GGUF" header, then sha256 blocks)."""
    out = bytearray(b"GGUF")
    block = seed.encode()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _config(family: str, size: str) -> bytes:
    return json.dumps({"model_format": "gguf", "model_family": family, "model_families": [family],
                       "model_type": size, "file_type": "Q4_0", "architecture": "amd64", "os": "linux",
                       "rootfs": {"type": "layers", "diff_ids": []}}, separators=(",", ":")).encode()


BLOBS: dict[str, bytes] = {}
MANIFESTS: dict[str, bytes] = {}  # "<namespace>/<model>:<tag>" -> manifest JSON


def _model(key: str, layers: list[tuple[str, bytes]], config: bytes, claimed: dict[str, str] | None = None):
    entries = []
    for media, data in [*layers, (CONFIG_TYPE, config)]:
        digest = (claimed or {}).get(media) or _digest(data)
        BLOBS[digest] = data
        entries.append({"mediaType": media, "digest": digest, "size": len(data)})
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "config": entries[-1], "layers": entries[:-1]}
    MANIFESTS[key] = json.dumps(manifest, indent=2).encode()


_TINY = [(MODEL_TYPE, _bytes("tiny", 96 * 1024)), (TEMPLATE_TYPE, b"{{ .Prompt }}")]
_model("library/tiny:1", _TINY, _config("llama", "1M"))
_model("library/tiny:latest", _TINY, _config("llama", "1M"))
_model("library/small:1", [(MODEL_TYPE, _bytes("small", 160 * 1024))], _config("qwen2", "2M"))
_model("library/broken:1", [(MODEL_TYPE, _bytes("broken", 32 * 1024))], _config("llama", "1M"),
       claimed={MODEL_TYPE: "sha256:" + "0" * 64})

CHECKPOINT_NAME = "tiny-checkpoint.safetensors"
CHECKPOINT = _bytes("checkpoint", 256 * 1024)
FILES = {CHECKPOINT_NAME: CHECKPOINT}


def model_size(key: str) -> int:
    """What /api/tags shows as ``size`` once ``key`` is pulled: its layers and its config."""
    manifest = json.loads(MANIFESTS[key])
    return sum(item["size"] for item in [*manifest["layers"], manifest["config"]])


def sha256_of(name: str) -> str:
    return hashlib.sha256(FILES[name]).hexdigest()


_MANIFEST = re.compile(r"^/v2/(?P<ns>[^/]+)/(?P<model>[^/]+)/manifests/(?P<tag>[^/]+)$")
_BLOB = re.compile(r"^/v2/[^/]+/[^/]+/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
_DIRECT = re.compile(r"^/lab-blobs/(?P<digest>sha256-[0-9a-f]{64})$")


def _handler(log: list[tuple[str, str, dict[str, str]]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                  length: int | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, code: str) -> None:
            error = {"code": code, "message": code.lower().replace("_", " ")}
            body = json.dumps({"errors": [error]}).encode()
            self._send(status, body, {"Content-Type": "application/json"})

        def _answer(self) -> None:
            path = self.path.split("?", 1)[0]
            log.append((self.command, path, {k.lower(): v for k, v in self.headers.items()}))
            if path == "/v2/":
                return self._send(200, b"{}", {"Content-Type": "application/json"})
            match = _MANIFEST.match(path)
            if match:
                key = f"{match['ns']}/{match['model']}:{match['tag']}"
                if key not in MANIFESTS or MANIFEST_TYPE not in (self.headers.get("Accept") or ""):
                    return self._error(404, "MANIFEST_UNKNOWN")
                data = MANIFESTS[key]
                return self._send(200, data, {"Content-Type": MANIFEST_TYPE,
                                              "Docker-Content-Digest": _digest(data)})
            match = _BLOB.match(path)
            if match:
                data = BLOBS.get(match["digest"])
                if data is None:
                    return self._error(404, "BLOB_UNKNOWN")
                if self.command == "HEAD":
                    return self._send(200, headers={"Content-Type": "application/octet-stream"},
                                      length=len(data))
                where = f"http://{self.headers.get('Host')}/lab-blobs/{match['digest'].replace(':', '-')}"
                return self._send(200, headers={"Location": where})
            match = _DIRECT.match(path)
            if match:
                data = BLOBS.get(match["digest"].replace("-", ":", 1))
                if data is None:
                    return self._error(404, "BLOB_UNKNOWN")
                return self._ranged(data)
            if path.startswith("/files/") and path[len("/files/"):] in FILES:
                return self._ranged(FILES[path[len("/files/"):]])
            return self._send(404, b"404 page not found\n", {"Content-Type": "text/plain"})

        def _ranged(self, data: bytes) -> None:
            wanted = re.match(r"^bytes=(\d+)-(\d*)$", self.headers.get("Range") or "")
            if not wanted:
                return self._send(200, data, {"Content-Type": "application/octet-stream"})
            start = int(wanted[1])
            end = min(int(wanted[2]) if wanted[2] else len(data) - 1, len(data) - 1)
            part = data[start:end + 1]
            return self._send(206, part, {"Content-Type": "application/octet-stream",
                                          "Content-Range": f"bytes {start}-{end}/{len(data)}"})

        do_GET = do_HEAD = _answer

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


def serve(host: str = "127.0.0.1", port: int = 0,
          log: list[tuple[str, str, dict[str, str]]] | None = None) -> ServedDouble:
    """The registry and the files on a threading HTTP server; ``log`` collects (method, path, headers)."""
    return ServedDouble(None, host, port, handler=_handler(log if log is not None else []))
