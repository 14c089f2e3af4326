"""Facts about Docker Compose projects, read from the engine's containers and their labels."""

from __future__ import annotations

import json
import shlex
from collections import Counter
from typing import Any

import yaml
from pyinfra.api import FactBase

# the file beside compose.yaml that pins the image a service runs (Docker Compose reads it with
# compose.yaml); its `x-homelab-pin` says which image setting the pin belongs to
PIN_FILE = "compose.override.yaml"
PREVIOUS_PIN_FILE = "compose.override.previous.yaml"
PIN_KEY = "x-homelab-pin"

# One JSON object per container. docker inspect (not docker ps) because ps joins labels with
# commas (label values hold commas) and has no separate health field.
_INSPECT_FORMAT = (
    '{"name":{{json .Name}},"labels":{{json .Config.Labels}},"state":{{json .State.Status}},'
    '"health":{{if .State.Health}}{{json .State.Health.Status}}{{else}}null{{end}},'
    '"image":{{json .Config.Image}}}'
)
_LABEL = "com.docker.compose."


def _container(raw: dict[str, Any]) -> dict[str, Any]:
    labels = raw.get("labels") or {}
    return {
        "name": raw["name"].lstrip("/"),
        "service": labels.get(f"{_LABEL}service"),
        "state": raw["state"],
        "health": raw.get("health"),
        "config_hash": labels.get(f"{_LABEL}config-hash"),
        "image": raw["image"],
    }


def _status(containers: list[dict[str, Any]]) -> str:
    """The summary ``docker compose ls`` prints, e.g. ``exited(1), running(2)``."""
    counts = Counter(container["state"] for container in containers)
    return ", ".join(f"{state}({count})" for state, count in sorted(counts.items()))


def _parse_lines(output: list[str]) -> list[dict[str, Any]]:
    records = []
    for line in output:
        line = line.strip()
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


class ComposeProjects(FactBase[dict[str, dict[str, Any]]]):
    """
    Returns every Docker Compose project the engine has containers for (running or not), read
    from the containers' compose labels in one command.

    .. code:: python

        {
            "demo": {
                "status": "running(2)",
                "config_files": ["/opt/demo/compose.yaml"],
                "working_dir": "/opt/demo",
                "containers": [
                    {
                        "name": "demo-web-1",
                        "service": "web",
                        "state": "running",      # created, running, restarting, exited, …
                        "health": "healthy",     # healthy, unhealthy, starting, or None
                        "config_hash": "dd9fc2d0…",
                        "image": "local/busybox:1",
                    },
                ],
            },
        }

    One-off containers (``docker compose run``) are left out. No ``docker``, or an engine that
    is not running, gives ``{}`` without failing the host.
    """

    def command(self) -> str:
        return (
            "command -v docker >/dev/null 2>&1 || exit 0; "
            "ids=$(docker ps --all --quiet --no-trunc --filter label=com.docker.compose.project "
            "2>/dev/null) || exit 0; "
            '[ -z "$ids" ] || '
            f"docker inspect --format '{_INSPECT_FORMAT}' $ids 2>/dev/null || true"
        )

    @staticmethod
    def default() -> dict[str, dict[str, Any]]:
        return {}

    def process(self, output: list[str]) -> dict[str, dict[str, Any]]:
        projects: dict[str, dict[str, Any]] = {}
        for raw in _parse_lines(output):
            labels = raw.get("labels") or {}
            name = labels.get(f"{_LABEL}project")
            if not name or labels.get(f"{_LABEL}oneoff") == "True":
                continue
            project = projects.setdefault(
                name,
                {
                    "status": "",
                    "config_files": [
                        path for path in labels.get(f"{_LABEL}project.config_files", "").split(",") if path
                    ],
                    "working_dir": labels.get(f"{_LABEL}project.working_dir"),
                    "containers": [],
                },
            )
            project["containers"].append(_container(raw))
        for project in projects.values():
            project["containers"].sort(key=lambda container: container["name"])
            project["status"] = _status(project["containers"])
        return projects


class ComposeFiles(FactBase[dict[str, Any]]):
    """
    Returns the files of a compose project directory, in one command: the mode and SHA-1 of
    ``compose.yaml``, ``.env`` and every file under ``config/`` (as ``config/<path>``), and the image
    pin in ``compose.override.yaml`` (which image setting it pins, and the exact image it runs). What
    runs is :class:`ComposeProjects`'s, read once for every project.

    .. code:: python

        {
            "files": {
                "compose.yaml": {"mode": 644, "sha1": "5661b8…"},
                ".env": {"mode": 600, "sha1": "54a4…"},
            },
            "pin": {"image": "ollama/ollama:0.12.6", "pinned": "ollama/ollama@sha256:0f2c…"},
        }

    A missing directory or file is simply absent from ``files``; no pin file, or one without an
    ``x-homelab-pin`` mapping, gives ``"pin": None``.
    """

    def command(self, directory: str) -> str:
        return (
            f"cd {shlex.quote(directory)} 2>/dev/null || exit 0; for f in compose.yaml .env "
            "$(find config -type f 2>/dev/null | LC_ALL=C sort); do "
            '[ -f "$f" ] && echo "file $f $(stat -c %a "$f") $(sha1sum < "$f" | cut -c1-40)"; '
            f"done; [ -f {PIN_FILE} ] && sed 's/^/pin /' {PIN_FILE}; true"
        )

    @staticmethod
    def default() -> dict[str, Any]:
        return {"files": {}, "pin": None}

    def process(self, output: list[str]) -> dict[str, Any]:
        files: dict[str, dict[str, Any]] = {}
        pin_lines: list[str] = []
        for line in output:
            if line.startswith("pin ") or line == "pin":
                pin_lines.append(line[4:])
            else:
                words = line.split()
                if len(words) == 4 and words[0] == "file" and words[2].isdigit():
                    files[words[1]] = {"mode": int(words[2]), "sha1": words[3]}
        return {"files": files, "pin": parse_pin("\n".join(pin_lines))}


def parse_pin(text: str) -> dict[str, str] | None:
    """``{"image", "pinned"}`` from a pin file's text; ``None`` when it holds no valid pin."""
    try:
        document = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        return None
    pin = document.get(PIN_KEY) if isinstance(document, dict) else None
    if not isinstance(pin, dict):
        return None
    image, pinned = pin.get("image"), pin.get("pinned")
    if not (isinstance(image, str) and isinstance(pinned, str) and image and pinned):
        return None
    return {"image": image, "pinned": pinned}


class ImagePins(FactBase[dict[str, dict[str, str] | None]]):
    """
    Returns the image pin of each compose project directory (as :class:`ComposeFiles` reads
    it), in one command: ``{directory: {"image": …, "pinned": …} | None}``.

    .. code:: python

        {"/opt/homelab/ollama": {"image": "ollama/ollama:0.12.6", "pinned": "ollama/ollama@sha256:0f2c…"},
         "/opt/homelab/pihole": None}
    """

    def command(self, directories: list[str]) -> str:
        return "; ".join(
            f"echo {shlex.quote('### ' + directory)}; "
            f"cat {shlex.quote(directory.rstrip('/') + '/' + PIN_FILE)} 2>/dev/null"
            for directory in directories
        ) + "; true"

    @staticmethod
    def default() -> dict[str, dict[str, str] | None]:
        return {}

    def process(self, output: list[str]) -> dict[str, dict[str, str] | None]:
        texts: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in output:
            if line.startswith("### /"):
                current = texts.setdefault(line[4:].strip(), [])
            elif current is not None:
                current.append(line)
        return {directory: parse_pin("\n".join(lines)) for directory, lines in texts.items()}
