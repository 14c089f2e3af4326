"""The models end to end on the first lab host, from the lab's model source: the world container
(lab/world.py) serves a tiny Ollama registry and a ComfyUI checkpoint on port 5000 at its lab address
(the lab's containers reach the world by its address; the name world.lab.test resolves only through
Pi-hole). The Ollama stand-in pulls over plain HTTP (HOMELAB_OLLAMA_INSECURE_REGISTRIES) and keeps the
model as Ollama does under the models folder.

Proven: `--dry` lists the model (with its size when this machine reads the registry) and pulls
nothing; the first run pulls the model and downloads the checkpoint; a second run changes nothing; the
model is still there after the container restarts and after it is made again, and is not pulled again;
a checksum mismatch and a model the registry does not have fail the run with one line each and leave
nothing behind; tier 3 checks both.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from labkit import DEBUG_LOG, ROOT, assert_clean, run_pyinfra_cli, ssh, verify

from lab.data import LAB_DATA  # noqa: E402
from lab.doubles import model_registry  # noqa: E402

SERVER = "deploys/server.py"
COLD = LAB_DATA["cold_storage_path"]
STORE = f"{COLD}/ai/ollama/models"
CHECKPOINTS = f"{COLD}/ai/comfyui/models/checkpoints"
CHECKPOINT_SUM = model_registry.sha256_of(model_registry.CHECKPOINT_NAME)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
OLLAMA_OP = "Models | Ollama models"
COMFY_OP = "Models | ComfyUI models (downloaded, SHA-256 checked)"


def _world_address() -> str:
    return json.loads((ROOT / ".lab" / "hosts.json").read_text())["world"]["address"]


def _source() -> dict[str, str]:
    address = _world_address()
    registry = f"{address}:{model_registry.PORT}"
    return {
        "registry": registry,
        "model": f"{registry}/library/tiny:1",
        "url": f"http://{registry}/files/{model_registry.CHECKPOINT_NAME}",
    }


def _env(comfyui: str | None = None, models: str | None = None) -> dict[str, str]:
    source = _source()
    return {
        "HOMELAB_OLLAMA_MODELS": models or source["model"],
        "HOMELAB_OLLAMA_INSECURE_REGISTRIES": source["registry"],
        "HOMELAB_COMFYUI_MODELS": comfyui or f"checkpoints {source['url']} {CHECKPOINT_SUM}",
    }


def _output(result) -> str:
    return ANSI.sub("", result.stdout + result.stderr)


def _ollama_list(host) -> list[str]:
    lines = ssh(host, "docker exec ollama ollama list").stdout.splitlines()
    assert lines and lines[0].split()[0] == "NAME", lines
    return [line.split()[0] for line in lines[1:] if line.strip()]


def _wait_healthy(host) -> None:
    health = "docker inspect -f '{{.State.Health.Status}}' ollama"
    ssh(host, f'for i in $(seq 90); do [ "$({health})" = healthy ] && exit 0; sleep 1; done; exit 1')


@pytest.fixture(scope="module")
def models_host(lab_hosts):
    """The first lab host deployed with no model, its Ollama stand-in made from the current image and
    empty, no checkpoint; then `--dry`, the first and the second run with the models configured."""
    host = lab_hosts[0]
    name = host["name"]
    ssh(host, f"docker rm -f ollama; rm -rf {STORE}/manifests {STORE}/blobs {CHECKPOINTS}", check=False)
    run_pyinfra_cli(SERVER, limit=name, timeout=1500)
    assert _ollama_list(host) == []
    env = _env()
    dry = run_pyinfra_cli(SERVER, "--dry", limit=name, env=env)
    after_dry = ssh(host, f"ls -A {STORE} {CHECKPOINTS} 2>/dev/null; true").stdout
    first = run_pyinfra_cli(SERVER, limit=name, env=env, timeout=1500)
    second = run_pyinfra_cli(SERVER, limit=name, env=env)
    return {"host": host, "name": name, "env": env, "dry": dry, "after_dry": after_dry, "first": first,
            "second": second}


def test_dry_run_lists_the_model_and_the_checkpoint_and_changes_nothing(models_host):
    dry, source = models_host["dry"], _source()
    planned = dry.planned_changes()
    assert planned.get(OLLAMA_OP) == [models_host["name"]], planned
    assert planned.get(COMFY_OP) == [models_host["name"]], planned
    said = _output(dry)
    wanted = f"Ollama models: pull {source['model']}"
    line = next((text for text in said.splitlines() if wanted in text), None)
    assert line is not None, dry.explain()
    # the size, when this machine reads the world's registry (it does where the lab network is routed here)
    size = model_registry.model_size("library/tiny:1")
    assert line.rstrip().endswith(f"pull {source['model']} ({size / 1000:.1f} KB)") or line.rstrip().endswith(
        f"pull {source['model']}"), line
    assert f"download {source['url']} -> {CHECKPOINTS}/{model_registry.CHECKPOINT_NAME} (missing)" in said
    assert "manifests" not in models_host["after_dry"] and model_registry.CHECKPOINT_NAME not in \
        models_host["after_dry"], models_host["after_dry"]


def test_the_first_run_pulls_the_model_and_downloads_the_checkpoint(models_host):
    host, source = models_host["host"], _source()
    changed = models_host["first"].changed_operations()
    assert changed.get(OLLAMA_OP) == [models_host["name"]], changed
    assert changed.get(COMFY_OP) == [models_host["name"]], changed
    assert _ollama_list(host) == [source["model"]]
    # stored as Ollama stores models: the manifest by registry, namespace, model and tag, the blobs by digest
    manifest = json.loads(ssh(host, f"cat '{STORE}/manifests/{source['registry']}/library/tiny/1'").stdout)
    assert manifest == json.loads(model_registry.MANIFESTS["library/tiny:1"])
    for layer in [*manifest["layers"], manifest["config"]]:
        blob = f"{STORE}/blobs/{layer['digest'].replace(':', '-')}"
        digest = ssh(host, f"sha256sum {blob}").stdout.split()[0]
        assert f"sha256:{digest}" == layer["digest"]
    digest = ssh(host, f"sha256sum {CHECKPOINTS}/{model_registry.CHECKPOINT_NAME}").stdout.split()[0]
    assert digest == CHECKPOINT_SUM == hashlib.sha256(model_registry.CHECKPOINT).hexdigest()
    assert ssh(host, f"ls -A {CHECKPOINTS}").stdout.split() == [model_registry.CHECKPOINT_NAME]
    progress = [line for line in _output(models_host["first"]).splitlines()
                if f"ollama: {source['model']}: " in line]
    assert progress and progress[-1].rstrip().endswith("success"), models_host["first"].explain()


def test_a_second_run_changes_nothing(models_host):
    second = models_host["second"]
    assert second.changed == 0, second.changed_operations()


def test_the_model_survives_a_restart_and_a_new_container_and_is_not_pulled_again(models_host):
    host, name, env, source = models_host["host"], models_host["name"], models_host["env"], _source()
    ssh(host, "docker restart ollama")
    _wait_healthy(host)
    assert _ollama_list(host) == [source["model"]]
    again = run_pyinfra_cli(SERVER, limit=name, env=env)
    assert again.changed == 0, again.changed_operations()
    ssh(host, "docker rm -f ollama")  # the next run makes it again, on the same models folder
    remade = run_pyinfra_cli(SERVER, limit=name, env=env)
    assert OLLAMA_OP not in remade.changed_operations(), remade.changed_operations()
    assert "Compose services | ollama: compose project" in remade.changed_operations()
    assert _ollama_list(host) == [source["model"]]


def test_a_checksum_mismatch_fails_the_run_naming_the_url_and_both_sums_and_keeps_nothing(models_host):
    host, name, source = models_host["host"], models_host["name"], _source()
    wrong = "0" * 64
    env = _env(comfyui=f"checkpoints {source['url']} {wrong} wrong-sum.safetensors")
    DEBUG_LOG.unlink(missing_ok=True)
    failed = run_pyinfra_cli(SERVER, limit=name, env=env, check=False)
    assert failed.returncode != 0, failed.explain()
    said = _output(failed)
    assert (f"checksum mismatch for {source['url']}: expected sha256 {wrong}, got {CHECKPOINT_SUM} "
            "(the download was not kept)") in said, failed.explain()
    assert_clean(failed)
    assert ssh(host, f"ls -A {CHECKPOINTS}").stdout.split() == [model_registry.CHECKPOINT_NAME]


def test_a_model_the_registry_does_not_have_fails_with_ollamas_words(models_host):
    host, name, source = models_host["host"], models_host["name"], _source()
    missing = f"{source['registry']}/library/nope:1"
    DEBUG_LOG.unlink(missing_ok=True)
    failed = run_pyinfra_cli(SERVER, limit=name, env=_env(models=f"{source['model']},{missing}"), check=False)
    assert failed.returncode != 0, failed.explain()
    assert f"ollama: pull {missing} failed: pull model manifest: file does not exist" in _output(failed)
    assert_clean(failed)
    assert _ollama_list(host) == [source["model"]]


def test_tier_3_finds_the_model_and_the_checkpoint(models_host, tmp_path):
    _, failed, _, output = verify(models_host["name"], tmp_path, env=models_host["env"])
    ours = [test for test in failed if test.startswith(("test_configured_ollama_models_are_listed_by_ollama",
                                                        "test_comfyui_files_present_with_their_sha256"))]
    assert not ours, output
    # run, not skipped (pytest's -ra lists every skip with its reason)
    for reason in ("no HOMELAB_OLLAMA_MODELS", "no HOMELAB_COMFYUI_MODELS", "ollama is not running"):
        assert reason not in output, output
