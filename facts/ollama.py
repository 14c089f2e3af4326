"""Facts about Ollama's model store on the host (read from its files: Ollama need not run)."""

from __future__ import annotations

import json
import shlex
from typing import Any

from pyinfra.api import FactBase

_FILE = "### pyinfra-manifest "


class OllamaManifests(FactBase[dict[str, int] | None]):
    """
    Returns the models in an Ollama models folder (``OLLAMA_MODELS``; on the host, the folder bind-mounted
    at ``/root/.ollama/models``) with their size in bytes, read from the manifests Ollama writes
    (``manifests/<host>/<namespace>/<model>/<tag>``), in one command:

    .. code:: python

        {"registry.ollama.ai/library/llama3.2:latest": 2019393189,
         "registry.lan:5000/library/tiny:1": 98504}

    Names are full (``host/namespace/model:tag``, as the folders hold them). The size is the
    manifest's layers and config, as ``/api/tags`` shows it. ``None`` when the folder
    has no ``manifests`` folder (nothing pulled yet, or not deployed).
    """

    def command(self, path: str) -> str:
        folder = shlex.quote(path.rstrip("/") + "/manifests")
        return (
            f"cd {folder} 2>/dev/null || exit 0; echo '{_FILE}.'; "
            f"for f in */*/*/*; do [ -f \"$f\" ] || continue; echo \"{_FILE}$f\"; cat \"$f\"; echo; done"
        )

    @staticmethod
    def default() -> None:
        return None

    def process(self, output: list[str]) -> dict[str, int] | None:
        if not output:
            return None
        found: dict[str, int] = {}
        sections: list[tuple[str, list[str]]] = []
        for line in output:
            if line.startswith(_FILE):
                sections.append((line[len(_FILE):].strip(), []))
            elif sections:
                sections[-1][1].append(line)
        for path, lines in sections:
            parts = path.split("/")
            if len(parts) != 4:
                continue
            try:
                manifest: dict[str, Any] = json.loads("\n".join(lines))
                items = [*(manifest.get("layers") or []), manifest.get("config") or {}]
                size = sum(int(item.get("size") or 0) for item in items)
            except (ValueError, TypeError, AttributeError):
                continue  # a damaged manifest: Ollama does not list it either
            host, namespace, model, tag = parts
            found[f"{host}/{namespace}/{model}:{tag}"] = size
        return found
