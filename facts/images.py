"""Facts about container images: what the registry holds for a reference now, and which references
the engine already has, each asked of the Docker engine itself (its credentials, its certificates
under ``/etc/docker/certs.d`` and its mirrors apply, as they do to a pull)."""

from __future__ import annotations

import json
import shlex
from typing import Any

from pyinfra.api import FactBase

_MARK = "### image "
# one remote ask may wait on a registry far away; an engine that cannot reach it answers sooner
REGISTRY_TIMEOUT = 60


def _request(path: str) -> str:
    """Shell that sends one HTTP request to the engine's API (``docker system dial-stdio`` speaks to
    the engine's socket through the CLI, so no curl or python is needed on the host)."""
    return (
        f"printf 'GET %s HTTP/1.0\\r\\nHost: docker\\r\\n\\r\\n' {shlex.quote(path)} "
        f"| timeout {REGISTRY_TIMEOUT} docker system dial-stdio 2>&1; echo"
    )


def _responses(output: list[str]) -> dict[str, tuple[int | None, str]]:
    """{reference: (HTTP status, body)} from lines framed by ``### image <ref>`` marks."""
    answers: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output:
        if line.startswith(_MARK):
            current = answers.setdefault(line[len(_MARK):].strip(), [])
        elif current is not None:
            current.append(line.rstrip("\r"))
    parsed: dict[str, tuple[int | None, str]] = {}
    for ref, lines in answers.items():
        status: int | None = None
        words = lines[0].split() if lines else []
        if len(words) >= 2 and words[0].startswith("HTTP/") and words[1].isdigit():
            status = int(words[1])
        body = lines
        if "" in lines:
            body = lines[lines.index("") + 1:]
        parsed[ref] = (status, "\n".join(body).strip())
    return parsed


def _message(status: int | None, body: str) -> str:
    try:
        document = json.loads(body)
    except json.JSONDecodeError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        return document["message"]
    if status is None:
        text = " ".join(body.split())
        return f"the Docker engine did not answer ({text[:200] or 'no output'})"
    return f"the Docker engine answered {status}"


class RegistryDigests(FactBase[dict[str, dict[str, str]]]):
    """
    Returns, for each image reference, the digest its registry serves for it now (what a pull of
    the reference would bring), or the engine's reason why it cannot say. Nothing is pulled.

    .. code:: python

        {
            "ollama/ollama:0.12.6": {"digest": "sha256:0f2c…"},
            "ollama/ollama:0.99": {"error": "manifest unknown: manifest unknown"},
        }

    Asked through the engine's distribution endpoint, one request per reference, all at once (a
    registry that does not answer costs one timeout, not one per image). No ``docker`` gives ``{}``.
    """

    def command(self, refs: list[str]) -> str:
        asks = " ".join(
            f"( {_request('/distribution/' + ref + '/json')} ) > \"$dir/{index}\" &"
            for index, ref in enumerate(refs)
        )
        answers = "; ".join(
            f'echo {shlex.quote(_MARK + ref)}; cat "$dir/{index}"' for index, ref in enumerate(refs)
        )
        return (
            "command -v docker >/dev/null 2>&1 || exit 0; dir=$(mktemp -d) || exit 1; "
            f"{asks} wait; {answers}; rm -rf \"$dir\""
        )

    @staticmethod
    def default() -> dict[str, dict[str, str]]:
        return {}

    def process(self, output: list[str]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for ref, (status, body) in _responses(output).items():
            digest = None
            if status == 200:
                try:
                    digest = (json.loads(body).get("Descriptor") or {}).get("digest")
                except (json.JSONDecodeError, AttributeError):
                    digest = None
            found[ref] = {"digest": digest} if isinstance(digest, str) else {"error": _message(status, body)}
        return found


class LocalImages(FactBase[dict[str, dict[str, Any]]]):
    """
    Returns the images the engine holds for these references (references it does not hold are
    absent), with their ID and the registry digests they were pulled with.

    .. code:: python

        {"ollama/ollama:0.12.6": {"id": "sha256:9c1e…", "repo_digests": ["ollama/ollama@sha256:0f2c…"]}}

    One ``docker image inspect`` for all. No ``docker`` gives ``{}``.
    """

    _FORMAT = '{"id":{{json .Id}},"repo_digests":{{json .RepoDigests}}}'

    def command(self, refs: list[str]) -> str:
        checks = "; ".join(
            f"echo {shlex.quote(_MARK + ref)}; docker image inspect --format {shlex.quote(self._FORMAT)} "
            f"{shlex.quote(ref)} 2>/dev/null"
            for ref in refs
        )
        return f"command -v docker >/dev/null 2>&1 || exit 0; {checks}; true"

    @staticmethod
    def default() -> dict[str, dict[str, Any]]:
        return {}

    def process(self, output: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        current = None
        for line in output:
            if line.startswith(_MARK):
                current = line[len(_MARK):].strip()
            elif current and line.startswith("{"):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                found[current] = {"id": record.get("id"), "repo_digests": record.get("repo_digests") or []}
        return found
