"""The models step planned against a `@fake` host: ComfyUI's files downloaded into its models folder
under the configured cold storage, only those missing or with another sum, the sums of all of them read
in one command; nothing asked of Ollama when no model is configured."""

from __future__ import annotations

import json
import logging
import shlex
from pathlib import Path

from harness import DEBIAN_12, plan

from deploys.library import tunnel
from lab.doubles import model_registry
from lab.doubles.ollama_double import OllamaDouble, serve
from operations.downloads import DOWNLOAD_SCRIPT

SUM = "31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b"
OTHER = "64d43e5546e8b759297c917d94957099132119851534f42308cd7b83868748c0"
URL = "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/resolve/main/sd_xl_base_1.0.safetensors"
LORA = "https://example.com/download?id=42"
MODELS = "/srv/cold/ai/comfyui/models"
CHECKPOINT = f"{MODELS}/checkpoints/sd_xl_base_1.0.safetensors"
STYLE = f"{MODELS}/loras/styles/pixel-art.safetensors"
SETTINGS = {"cold_storage_path": "/srv/cold",
            "comfyui_models": f"checkpoints {URL} {SUM}\nloras/styles {LORA} {OTHER} pixel-art.safetensors"}
COMFY_OP = "Models | ComfyUI models (downloaded, SHA-256 checked)"
OLLAMA_OP = "Models | Ollama models"


def host(*sums: str) -> dict:
    return {"ls -pdL *-release": DEBIAN_12, "uname -m": "x86_64", "sha256sum <": list(sums)}


def download(url: str, sha256: str, path: str) -> str:
    return f"sh -c {shlex.quote(DOWNLOAD_SCRIPT)} download {shlex.quote(url)} {sha256} {shlex.quote(path)}"


def test_missing_files_are_downloaded_where_comfyui_mounts_its_models():
    ops = plan("deploys/models.py", host(f"missing {CHECKPOINT}", f"missing {STYLE}"), SETTINGS)
    assert ops[COMFY_OP] == [download(URL, SUM, CHECKPOINT), download(LORA, OTHER, STYLE)]


def test_a_file_present_with_its_sum_is_never_downloaded_again():
    ops = plan("deploys/models.py", host(f"{SUM} {CHECKPOINT}", f"{SUM} {STYLE}"), SETTINGS)
    assert ops[COMFY_OP] == [download(LORA, OTHER, STYLE)]  # the second one holds another file
    ops = plan("deploys/models.py", host(f"{SUM} {CHECKPOINT}", f"{OTHER} {STYLE}"), SETTINGS)
    assert ops[COMFY_OP] == []


def test_the_download_keeps_nothing_it_has_not_checked():
    """A hidden temporary file beside the target, removed on any exit; renamed only after the check."""
    assert 'tmp=$(mktemp "$dir/.$(basename "$dest").part.XXXXXX")' in DOWNLOAD_SCRIPT
    assert "trap 'rm -f \"$tmp\"' EXIT" in DOWNLOAD_SCRIPT
    check = DOWNLOAD_SCRIPT.index('[ "$got" = "$want" ]')
    assert check < DOWNLOAD_SCRIPT.index('mv -f "$tmp" "$dest"')
    assert "checksum mismatch for $url: expected sha256 $want, got $got" in DOWNLOAD_SCRIPT


def test_no_model_configured_changes_nothing_and_asks_ollama_nothing():
    ops = plan("deploys/models.py", host())
    assert ops[OLLAMA_OP] == [] and ops[COMFY_OP] == []


def test_services_not_placed_here_get_no_models():
    ops = plan("deploys/models.py", host(f"missing {CHECKPOINT}", f"missing {STYLE}"),
               {**SETTINGS, "services": "nginx-proxy-manager,pihole", "ollama_models": "llama3.2"})
    assert ops["Models | ComfyUI models: ComfyUI is not placed on this host"] == []
    assert ops["Models | Ollama models: Ollama is not placed on this host"] == []


def test_models_wait_for_an_ollama_that_is_not_running_yet():
    """Ollama's container is not on the Docker network yet (it starts in this run): the plan cannot
    read its models and leaves one step that reads them when the run gets there."""
    ops = plan("deploys/models.py", host(), {"ollama_models": "llama3.2"})
    assert ops[OLLAMA_OP] == ["FunctionCommand"]


def test_the_preflight_reads_ollamas_store_and_the_memory(capsys):
    """deploys/validate.py: the models row from the manifests in Ollama's store (no registry asked for a
    model already there) and the host's memory (no GPU)."""
    store = json.loads((Path(__file__).resolve().parents[1] / "facts" / "ollama.OllamaManifests"
                        / "two-models.json").read_text())
    responses = {"ls -pdL *-release": DEBIAN_12, "uname -m": "x86_64",
                 "pyinfra-manifest": store["output"], "vmstat -s": ["      1536000 K total memory"]}
    assert plan("deploys/validate.py", responses, {"cold_storage_path": "/srv/cold",
                                                   "ollama_models": "llama3.2"}) == {}
    table = capsys.readouterr().err
    assert "models" in table and "llama3.2:latest (1.9 GiB, pulled)" in table, table
    assert "larger than the host's 1.5 GiB of memory (no GPU): llama3.2:latest (1.9 GiB)" in table, table


def test_the_models_step_reads_ollama_through_its_tunnel_and_plans_the_missing_pulls(
        tmp_path, monkeypatch, caplog):
    """deploys/models.py with Ollama answering (the stand-in, in-process, where the SSH tunnel to its
    container would lead): one read of /api/tags, a pull planned for the missing model with its size
    from the registry (asked from here), nothing pulled while planning."""
    double = OllamaDouble(tmp_path / "models")
    with model_registry.serve() as registry, serve(double) as ollama:
        asked = []

        def container_url(host, container, label, port):
            asked.append((container, port))
            return ollama.url

        monkeypatch.setattr(tunnel, "container_url", container_url)
        source = f"127.0.0.1:{registry.port}"
        model = f"{source}/library/tiny:1"
        with caplog.at_level(logging.INFO, logger="pyinfra"):
            ops = plan("deploys/models.py", host(),
                       {"ollama_models": model, "ollama_insecure_registries": source})
    assert ops[OLLAMA_OP] == ["FunctionCommand"]
    assert asked == [("ollama", 11434)]
    assert f"Ollama models: pull {model} (98.5 KB)" in [record.getMessage().split("] ", 1)[-1]
                                                       for record in caplog.records]
    assert double.tags() == {"models": []}
