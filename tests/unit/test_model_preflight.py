"""The preflight's `models` row: HOMELAB_OLLAMA_MODELS against the GPU's VRAM (without a GPU: the host's
memory) and the free space at the cold-storage path, from the sizes in Ollama's store or its registry."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deploys.library.preflight import PASS, WARN, Observed, check_models, checks
from deploys.library.settings import load_settings

FACTS = Path(__file__).resolve().parents[1] / "facts"
BASE = {"domain": "home.example.com", "tailscale_allowed_ips": "100.64.0.0/10", "tailscale_ip": "100.64.0.10",
        "pihole_password": "pihole-password", "npm_admin_email": "admin@home.example.com",
        "npm_admin_password": "npm-password", "open_webui_admin_email": "admin@home.example.com",
        "open_webui_admin_password": "webui-password", "cold_storage_path": "/srv/cold"}
GIB = 2**30
RTX_4090 = {"gpus": [{"name": "NVIDIA GeForce RTX 4090", "memory_total_mib": 24564}]}
STORE = json.loads((FACTS / "ollama.OllamaManifests" / "two-models.json").read_text())["fact"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("HOMELAB_"):
            monkeypatch.delenv(key)


def observed(models: str, gpu=None, free_gb: float = 200.0, sizes=None, store=None, memory_mib=None,
             **changes) -> Observed:
    settings = load_settings({**BASE, "ollama_models": models, **changes}, env_file=None)
    return Observed(host="server", settings=settings, services=list(settings.services),
                    gpu=gpu or {"gpus": []},
                    disk={"path_checked": "/srv/cold", "mount_point": "/srv", "free_gb": free_gb,
                          "total_gb": 500.0},
                    ollama_store=store, model_sizes=sizes or {}, memory_mib=memory_mib)


def test_no_row_without_models_or_without_ollama_here():
    settings = load_settings(BASE, env_file=None)
    assert check_models(Observed(host="server", settings=settings, services=list(settings.services))) is None
    elsewhere = observed("llama3.2")
    elsewhere.services = ["nginx-proxy-manager", "pihole"]  # Ollama runs on another host
    assert check_models(elsewhere) is None


def test_models_that_fit_the_gpu_and_the_disk_pass():
    obs = observed("llama3.2,qwen2.5-coder:7b", gpu=RTX_4090, store=STORE,
                   sizes={"qwen2.5-coder:7b": int(4.7e9)})
    row = check_models(obs)
    assert row.result == PASS, row
    assert row.detail == ("llama3.2:latest (1.9 GiB, pulled), qwen2.5-coder:7b (4.4 GiB, to pull): fit the "
                          "largest GPU's 24.0 GiB of VRAM and the 200.0 GiB free")
    assert row in checks(obs)


def test_a_model_larger_than_the_vram_warns():
    row = check_models(observed("llama3.3:70b", gpu=RTX_4090, sizes={"llama3.3:70b": int(42.5e9)}))
    assert row.result == WARN
    assert row.detail.startswith("larger than the largest GPU's 24.0 GiB of VRAM: llama3.3:70b (39.6 GiB): "
                                 "Ollama runs the rest on the CPU (slow)")


def test_without_a_gpu_the_host_memory_is_the_limit():
    row = check_models(observed("qwen2.5:14b", memory_mib=8 * 1024, sizes={"qwen2.5:14b": int(9e9)}))
    assert row.result == WARN
    assert row.detail.startswith("larger than the host's 8.0 GiB of memory (no GPU): qwen2.5:14b (8.4 GiB): "
                                 "it cannot be loaded")


def test_models_still_to_pull_that_would_not_fit_on_the_disk_warn():
    row = check_models(observed("llama3.2,qwen2.5:7b", gpu=RTX_4090, free_gb=5.0,
                                sizes={"llama3.2:latest": 2 * GIB, "qwen2.5:7b": 4 * GIB}))
    assert row.result == WARN
    assert "the models still to pull need 6.0 GiB, 5.0 GiB is free at /srv/cold" in row.detail
    # one of them already in the store: only the other is still to pull
    row = check_models(observed("llama3.2,qwen2.5:7b", gpu=RTX_4090, free_gb=5.0, store=STORE,
                                sizes={"qwen2.5:7b": 4 * GIB}))
    assert row.result == PASS, row


def test_an_unknown_size_is_said_not_guessed():
    row = check_models(observed("llama3.2,registry.lan:5000/library/tiny:1", gpu=RTX_4090,
                                ollama_insecure_registries="registry.lan:5000",
                                sizes={"llama3.2:latest": 2 * GIB, "registry.lan:5000/library/tiny:1": None}))
    assert row.result == PASS
    assert row.detail.endswith("; size unknown for registry.lan:5000/library/tiny:1 (its registry's manifest "
                               "could not be read from this machine): not checked")
