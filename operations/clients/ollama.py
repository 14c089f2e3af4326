"""A client for Ollama's HTTP API (0.12): the models it holds (``/api/tags``), pulling one
(``/api/pull``, streamed) and deleting one (``/api/delete``), and Ollama's model name grammar.

Follows Ollama 0.12.6 (``server/routes.go``, ``types/model/name.go``):

- a name is ``[host/][namespace/]model[:tag]``; the defaults are ``registry.ollama.ai``, ``library``
  and ``latest``; ``/api/tags`` shows the shortest form (``llama3.2:latest``,
  ``user/model:q4``, ``registry.lab:5000/library/tiny:1``); names compare without case;
- a streamed pull answers HTTP 200 and then reports a failure as a last ``{"error": …}`` line, so
  every line is read for one; a refusal before the stream starts is an HTTP 4xx/5xx with
  ``{"error": …}``;
- ``insecure: true`` makes Ollama talk plain HTTP to the registry (a private one without TLS).

The size of a model before it is pulled comes from the registry's manifest (Ollama has no API for
it): :func:`manifest_size`, best effort, ``None`` when the registry does not answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

from operations.clients import ServiceUnreachable
from operations.progress import poll_until_ready

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"

# each part starts with a letter, a digit or `_` (types/model/name.go isValidPart)
_HOST = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,79}$")
_MODEL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$")
_TAG = _MODEL

Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class ModelName:
    host: str
    namespace: str
    model: str
    tag: str

    @property
    def shown(self) -> str:
        """As ``/api/tags`` lists it: the host and namespace left out where they are the defaults."""
        if self.host.lower() == DEFAULT_HOST:
            if self.namespace.lower() == DEFAULT_NAMESPACE:
                return f"{self.model}:{self.tag}"
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def key(self) -> str:
        """What two names that mean the same model share (Ollama compares names without case)."""
        return self.shown.lower()

    def manifest_url(self, insecure: bool) -> str:
        scheme = "http" if insecure else "https"
        return f"{scheme}://{self.host}/v2/{self.namespace}/{self.model}/manifests/{self.tag}"


def parse_model_name(text: str) -> ModelName:
    """``text`` as Ollama reads a model name; ``ValueError`` saying what is wrong otherwise."""
    name = text.strip()
    if not name:
        raise ValueError("an empty model name")
    if "@" in name:
        raise ValueError(f"{name!r}: a digest (@sha256:…) is not supported; name a tag (model:tag)")
    if "://" in name:
        raise ValueError(f"{name!r}: a model name has no scheme (write host/namespace/model:tag)")
    rest, tag = name, DEFAULT_TAG
    colon, slash = name.rfind(":"), name.rfind("/")
    if colon > slash:
        rest, tag = name[:colon], name[colon + 1:]
    parts = rest.split("/")
    if len(parts) > 3:
        raise ValueError(f"{name!r} has {len(parts)} parts; expected [host/][namespace/]model[:tag]")
    host, namespace = DEFAULT_HOST, DEFAULT_NAMESPACE
    if len(parts) == 3:
        host, namespace, model = parts
    elif len(parts) == 2:
        namespace, model = parts
    else:
        (model,) = parts
    if len(parts) == 2 and ("." in namespace or ":" in namespace):
        raise ValueError(f"{name!r}: {namespace!r} reads as a registry host, which needs a namespace "
                         f"too (write {namespace}/library/{model}:{tag})")
    for part, pattern, what in ((host, _HOST, "registry host"), (namespace, _NAMESPACE, "namespace"),
                                (model, _MODEL, "model"), (tag, _TAG, "tag")):
        if not pattern.match(part):
            allowed = {"registry host": "letters, digits, - _ . :", "namespace": "letters, digits, - _"}.get(
                what, "letters, digits, - _ .")
            raise ValueError(f"{name!r}: the {what} {part!r} is not valid (it starts with a letter, a digit "
                             f"or _ and holds {allowed} only)")
    return ModelName(host, namespace, model, tag)


class OllamaError(Exception):
    """Ollama refused or failed a request; the message is Ollama's own error text."""


class OllamaUnreachable(OllamaError, ServiceUnreachable):
    """No answer: nothing listens at the base URL, the connection dropped, or it timed out."""


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or f"HTTP {response.status_code}"
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return str(body)[:300]


class OllamaClient:
    """One Ollama server at ``base_url`` (``http://host:11434``)."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, pull_timeout: float = 900.0,
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # the longest silence allowed inside a pull's stream (verifying a large blob says nothing)
        self.pull_timeout = pull_timeout
        self.session = session or requests.Session()

    def __repr__(self) -> str:
        return f"OllamaClient({self.base_url!r})"

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        try:
            return self.session.request(method, self.base_url + path, **kwargs)
        except requests.RequestException as error:
            raise OllamaUnreachable(
                f"{method} {path}: no answer from Ollama at {self.base_url} ({type(error).__name__})"
            ) from None

    def wait_ready(
        self, timeout: float = 60.0, interval: float = 1.0, *, waiting: Callable[[str], None] | None = None
    ) -> None:
        """Poll ``GET /api/version`` until Ollama answers; ``OllamaUnreachable`` after ``timeout`` s.
        ``waiting`` sees what the last poll found on every round (default: a line on pyinfra's output
        about every 10 s, ``operations.progress.Waiting``)."""
        def probe() -> str | None:
            answer = self._send("GET", "/api/version", timeout=5)
            return None if answer.ok else f"it answers {answer.status_code}"

        poll_until_ready(
            probe, OllamaUnreachable,
            lambda last: OllamaUnreachable(
                f"Ollama at {self.base_url} did not answer within {timeout:.0f}s (last: {last})"),
            "Ollama's API", timeout, interval, waiting,
        )

    def tags(self) -> list[dict[str, Any]]:
        """The models Ollama holds, as ``/api/tags`` lists them."""
        response = self._send("GET", "/api/tags")
        if not response.ok:
            raise OllamaError(f"GET /api/tags -> {response.status_code}: {_error_text(response)}")
        try:
            return list(response.json().get("models") or [])
        except (ValueError, AttributeError):
            text = response.text[:200]
            raise OllamaError(f"GET /api/tags: the answer is not Ollama's model list: {text}") from None

    def pull(self, model: str, *, insecure: bool = False, progress: Progress | None = None) -> None:
        """Pull ``model`` (streamed); ``progress`` sees every status line. ``OllamaError`` with Ollama's
        own text for a refusal (HTTP 4xx/5xx) or an ``{"error": …}`` line in the stream."""
        body: dict[str, Any] = {"model": model, "stream": True}
        if insecure:
            body["insecure"] = True
        response = self._send("POST", "/api/pull", json=body, stream=True,
                              timeout=(self.timeout, self.pull_timeout))
        with response:
            if not response.ok:
                raise OllamaError(_error_text(response))
            last = None
            for line in _lines(response):
                if "error" in line:
                    raise OllamaError(str(line["error"]))
                last = line.get("status")
                if progress is not None:
                    progress(line)
        if last != "success":
            raise OllamaError(f"the pull stopped before it succeeded (last status: {last or 'none'})")

    def delete(self, model: str) -> bool:
        """Delete ``model``; ``False`` when Ollama has no such model (404)."""
        response = self._send("DELETE", "/api/delete", json={"model": model})
        if response.status_code == 404:
            return False
        if not response.ok:
            raise OllamaError(_error_text(response))
        return True


def _lines(response: requests.Response) -> Iterator[dict[str, Any]]:
    try:
        for raw in response.iter_lines():
            if not raw.strip():
                continue
            try:
                yield json.loads(raw)
            except ValueError:
                raise OllamaError(f"not a JSON line in the pull's stream: {raw[:120]!r}") from None
    except requests.RequestException as error:
        broke = type(error).__name__
        raise OllamaError(f"the connection to Ollama broke during the pull ({broke})") from None


def manifest_size(name: ModelName, insecure: bool = False, *, timeout: float = 5.0,
                  session: requests.Session | None = None) -> int | None:
    """The model's download size in bytes from its registry manifest (the sum of its layers and its
    config, which ``/api/tags`` shows as ``size`` once pulled), or ``None`` when it cannot be read."""
    getter = session or requests
    try:
        response = getter.get(name.manifest_url(insecure), headers={"Accept": MANIFEST_TYPE}, timeout=timeout)
        if not response.ok:
            return None
        manifest = response.json()
        layers = [*manifest.get("layers", []), manifest.get("config") or {}]
        return sum(int(layer.get("size") or 0) for layer in layers)
    except (requests.RequestException, ValueError, TypeError, AttributeError):
        return None


def shown_size(size: int | None) -> str:
    """Bytes as a person reads them (``2.0 GB``; Ollama prints decimal units)."""
    if size is None:
        return "size unknown"
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} B"
