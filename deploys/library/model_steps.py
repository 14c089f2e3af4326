"""Model steps: the Ollama models (HOMELAB_OLLAMA_MODELS) pulled through Ollama's API, and the files
ComfyUI loads (HOMELAB_COMFYUI_MODELS) downloaded into its models folder, on the hosts where those
services run, after they are up and healthy (the service steps come first).

Ollama's API is reached as Pi-hole's is: an SSH tunnel to the container's address on the Docker
network (``tunnel.py``); it is asked once per host while planning, and a host where Ollama does not
answer yet (it starts in the same run) is planned blind and read again when the run gets there.
Every host runs the same two operations in the same order; where the service is not placed, they
change nothing.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from pyinfra import host
from pyinfra.api import deploy

from deploys.library import tunnel
from deploys.library.catalog import CATALOG, Service
from deploys.library.compose_files import data_dirs
from deploys.library.context import HostContext
from deploys.library.run import current_run
from deploys.library.settings import HomelabSettings
from operations import downloads, ollama
from operations.clients.ollama import OllamaClient, manifest_size, parse_model_name

# where the images keep their models (the catalog bind-mounts a cold-storage folder there)
OLLAMA_MODELS_MOUNT = "/root/.ollama/models"
COMFYUI_MODELS_MOUNT = "/root/ComfyUI/models"
OLLAMA_READY_TIMEOUT = 60


def models_folder(settings: HomelabSettings, service: str, mount: str) -> PurePosixPath:
    """The host folder the catalog mounts at ``mount`` in ``service``'s container."""
    for path, volume in data_dirs(settings, service):
        if volume.target == mount:
            return path
    raise LookupError(f"{service} mounts nothing at {mount}")


def ollama_models_folder(settings: HomelabSettings) -> PurePosixPath:
    return models_folder(settings, Service.OLLAMA, OLLAMA_MODELS_MOUNT)


def comfyui_files(settings: HomelabSettings) -> list[dict[str, str]]:
    """HOMELAB_COMFYUI_MODELS as ``downloads.verified_files`` takes them (absolute paths on the host)."""
    folder = models_folder(settings, Service.COMFYUI, COMFYUI_MODELS_MOUNT)
    return [{"url": item.url, "sha256": item.sha256, "path": str(folder / item.path)}
            for item in settings.comfyui_models]


def registry_size(settings: HomelabSettings, model: str) -> int | None:
    """A model's download size from its registry's manifest, asked once per run from this machine
    (``None`` when the registry does not answer here)."""
    sizes = current_run().model_sizes
    if model not in sizes:
        sizes[model] = manifest_size(parse_model_name(model), settings.ollama_insecure(model))
    return sizes[model]


def _ollama_factory(ctx: HostContext):
    client: dict[str, OllamaClient] = {}

    def make() -> OllamaClient:
        # one client while planning, another when the run applies: this run may have made the container
        # again (a new image, a changed compose file), and with it its address on the Docker network
        phase = "run" if host.state.is_executing else "plan"
        if phase not in client:
            spec = CATALOG[Service.OLLAMA]
            made = OllamaClient(tunnel.container_url(host, spec.name, "Ollama", spec.upstream_port))
            made.wait_ready(timeout=OLLAMA_READY_TIMEOUT if host.state.is_executing else 5)
            client[phase] = made
        return client[phase]

    return tunnel.answering_once(make, "Ollama")


@deploy("Models")
def ollama_models(ctx: HostContext):
    settings = ctx.settings
    placed = Service.OLLAMA in ctx.services
    wanted = settings.ollama_models if placed else []
    ollama.models(
        name="Ollama models" if placed else "Ollama models: Ollama is not placed on this host",
        client_factory=_ollama_factory(ctx),
        models=wanted,
        prune=settings.ollama_prune and placed,
        insecure=settings.ollama_insecure,
        size_of=lambda model: registry_size(settings, model),
    )


@deploy("Models")
def comfyui_models(ctx: HostContext):
    placed = Service.COMFYUI in ctx.services
    downloads.verified_files(
        name="ComfyUI models (downloaded, SHA-256 checked)" if placed
        else "ComfyUI models: ComfyUI is not placed on this host",
        files=comfyui_files(ctx.settings) if placed else [],
    )


def models(ctx: HostContext, services: list[str]) -> None:
    """The model steps of ``services`` (those among Ollama and ComfyUI), in this order."""
    if Service.OLLAMA in services:
        ollama_models(ctx)
    if Service.COMFYUI in services:
        comfyui_models(ctx)
